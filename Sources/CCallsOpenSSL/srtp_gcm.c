// The low-level SHA-1 API is deprecated in OpenSSL 3 but is the allocation-free way to reuse HMAC key states.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "CCallsOpenSSL.h"
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

int CCallsOpenSSL_srtp_kdf_aes128(const unsigned char *master_key, const unsigned char *master_salt,
                                  int master_salt_length, unsigned char label, unsigned char *out, int out_length) {
    if (master_salt_length != 12 && master_salt_length != 14) return 0;
    if (out_length <= 0 || out_length > 64) return 0;
    // The PRF input block: the 112-bit salt (a 96-bit one with two zero bytes appended), the label XORed into its
    // byte 7 (key_id = label || r with r = index DIV kdr = 0), then a 16-bit block counter starting at zero.
    unsigned char block[16] = {0};
    memcpy(block, master_salt, (size_t)master_salt_length);
    block[7] ^= label;
    unsigned char zeros[64] = {0};
    int ok = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return 0;
    int written = 0, final_length = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, master_key, block) == 1 &&
        EVP_EncryptUpdate(ctx, out, &written, zeros, out_length) == 1 && written == out_length &&
        EVP_EncryptFinal_ex(ctx, out + written, &final_length) == 1) {
        ok = 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

EVP_CIPHER_CTX *CCallsOpenSSL_gcm_context_new(const unsigned char *key, int encrypt) {
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    if (!cipher) return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL && EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, encrypt) == 1;
    EVP_CIPHER_free(cipher);  // the context keeps its own reference
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int CCallsOpenSSL_gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *iv, unsigned char *data, int aad_length,
                           int length) {
    int n = 0;
    if (aad_length < 0 || length < aad_length) return -1;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1) return -1;
    if (aad_length > 0 && EVP_EncryptUpdate(ctx, NULL, &n, data, aad_length) != 1) return -1;
    if (length > aad_length &&
        (EVP_EncryptUpdate(ctx, data + aad_length, &n, data + aad_length, length - aad_length) != 1 ||
         n != length - aad_length))
        return -1;
    if (EVP_EncryptFinal_ex(ctx, data + length, &n) != 1 || n != 0) return -1;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, data + length) != 1) return -1;
    return length + 16;
}

int CCallsOpenSSL_gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *iv, unsigned char *data, int aad_length,
                           int length) {
    int n = 0;
    int cipher_end = length - 16;
    if (aad_length < 0 || cipher_end < aad_length) return -1;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1) return -1;
    if (aad_length > 0 && EVP_DecryptUpdate(ctx, NULL, &n, data, aad_length) != 1) return -1;
    if (cipher_end > aad_length &&
        (EVP_DecryptUpdate(ctx, data + aad_length, &n, data + aad_length, cipher_end - aad_length) != 1 ||
         n != cipher_end - aad_length))
        return -1;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, data + cipher_end) != 1) return -1;
    if (EVP_DecryptFinal_ex(ctx, data + cipher_end, &n) != 1) return -1;
    return cipher_end;
}

EVP_CIPHER_CTX *CCallsOpenSSL_ctr_context_new(const unsigned char *key) {
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
    if (!cipher) return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, cipher, NULL, key, NULL) == 1;
    EVP_CIPHER_free(cipher);
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

typedef struct {
    SHA_CTX inner;  // after absorbing key XOR ipad
    SHA_CTX outer;  // after absorbing key XOR opad
} CCallsOpenSSL_hmac_sha1;

void *CCallsOpenSSL_hmac_sha1_new(const unsigned char *key, int key_length) {
    if (key_length < 0 || key_length > 64) return NULL;
    CCallsOpenSSL_hmac_sha1 *h = malloc(sizeof *h);
    if (!h) return NULL;
    unsigned char pad[64];
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < key_length; i++) pad[i] ^= key[i];
    SHA1_Init(&h->inner);
    SHA1_Update(&h->inner, pad, sizeof pad);
    memset(pad, 0x5c, sizeof pad);
    for (int i = 0; i < key_length; i++) pad[i] ^= key[i];
    SHA1_Init(&h->outer);
    SHA1_Update(&h->outer, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
    return h;
}

void CCallsOpenSSL_hmac_sha1_free(void *hmac) {
    if (!hmac) return;
    OPENSSL_cleanse(hmac, sizeof(CCallsOpenSSL_hmac_sha1));
    free(hmac);
}

int CCallsOpenSSL_srtp_cm_seal(EVP_CIPHER_CTX *ctx, const void *hmac, const unsigned char *iv, unsigned char *data,
                               int aad_length, int length, unsigned int roc, int tag_length) {
    const CCallsOpenSSL_hmac_sha1 *h = hmac;
    int n = 0;
    if (aad_length < 0 || length < aad_length || tag_length < 1 || tag_length > 20) return -1;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1) return -1;
    if (length > aad_length &&
        (EVP_EncryptUpdate(ctx, data + aad_length, &n, data + aad_length, length - aad_length) != 1 ||
         n != length - aad_length))
        return -1;
    unsigned char roc_bytes[4] = {(unsigned char)(roc >> 24), (unsigned char)(roc >> 16), (unsigned char)(roc >> 8),
                                  (unsigned char)roc};
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA_CTX c = h->inner;
    SHA1_Update(&c, data, (size_t)length);
    SHA1_Update(&c, roc_bytes, sizeof roc_bytes);
    SHA1_Final(digest, &c);
    c = h->outer;
    SHA1_Update(&c, digest, sizeof digest);
    SHA1_Final(digest, &c);
    memcpy(data + length, digest, (size_t)tag_length);
    return length + tag_length;
}

int CCallsOpenSSL_srtp_cm_open(EVP_CIPHER_CTX *ctx, const void *hmac, const unsigned char *iv, unsigned char *data,
                               int aad_length, int length, unsigned int roc, int tag_length) {
    const CCallsOpenSSL_hmac_sha1 *h = hmac;
    int n = 0;
    int end = length - tag_length;
    if (aad_length < 0 || tag_length < 1 || tag_length > 20 || end < aad_length) return -1;
    unsigned char roc_bytes[4] = {(unsigned char)(roc >> 24), (unsigned char)(roc >> 16), (unsigned char)(roc >> 8),
                                  (unsigned char)roc};
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA_CTX c = h->inner;
    SHA1_Update(&c, data, (size_t)end);
    SHA1_Update(&c, roc_bytes, sizeof roc_bytes);
    SHA1_Final(digest, &c);
    c = h->outer;
    SHA1_Update(&c, digest, sizeof digest);
    SHA1_Final(digest, &c);
    if (CRYPTO_memcmp(digest, data + end, (size_t)tag_length) != 0) return -1;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1) return -1;
    if (end > aad_length &&
        (EVP_EncryptUpdate(ctx, data + aad_length, &n, data + aad_length, end - aad_length) != 1 ||
         n != end - aad_length))
        return -1;
    return end;
}
