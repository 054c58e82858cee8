#include "CCallsOpenSSL.h"
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
