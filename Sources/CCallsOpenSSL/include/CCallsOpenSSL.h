#ifndef CCALLS_OPENSSL_H
#define CCALLS_OPENSSL_H

// The system OpenSSL (Debian: libssl-dev), plus wrappers for the function-like macros Swift cannot
// import. Each wrapper is named CCallsOpenSSL_<macro> and defined in shim.c, so edits are rebuilt.
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

long CCallsOpenSSL_BIO_get_mem_data(BIO *bio, char **data);
int CCallsOpenSSL_BIO_reset(BIO *bio);
void CCallsOpenSSL_BIO_set_mem_eof_return(BIO *bio, int value);
long CCallsOpenSSL_DTLSv1_get_timeout(SSL *ssl, long *seconds, long *microseconds);
long CCallsOpenSSL_DTLSv1_handle_timeout(SSL *ssl);
long CCallsOpenSSL_SSL_set_mtu(SSL *ssl, long mtu);
long CCallsOpenSSL_DTLS_set_link_mtu(SSL *ssl, long mtu);
long CCallsOpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
long CCallsOpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long CCallsOpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
unsigned long CCallsOpenSSL_SSL_OP_NO_QUERY_MTU(void);
/// SSL_OP_NO_RENEGOTIATION (an SSL_OP_BIT expression): WebRTC peers never renegotiate.
unsigned long CCallsOpenSSL_SSL_OP_NO_RENEGOTIATION(void);
/// SSL_OP_NO_TICKET (an SSL_OP_BIT expression): no session tickets, since DTLS-SRTP never resumes sessions.
unsigned long CCallsOpenSSL_SSL_OP_NO_TICKET(void);
/// SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF): every DTLS association is a full handshake.
long CCallsOpenSSL_SSL_CTX_disable_session_cache(SSL_CTX *ctx);
/// SSL_MODE_RELEASE_BUFFERS: record buffers are freed while idle (an SFU holds thousands of idle DTLS states).
long CCallsOpenSSL_SSL_CTX_release_buffers(SSL_CTX *ctx);
/// The OpenSSL version string of the library actually linked at run time.
const char *CCallsOpenSSL_version_string(void);

// SRTP AEAD_AES_128_GCM (RFC 7714) over EVP, in srtp_gcm.c. One EVP_CIPHER_CTX per direction, keyed once; each
// packet only sets the IV, so no cipher is fetched and nothing is allocated per packet.

/// The RFC 3711 §4.3 AES-CM PRF with a 128-bit master key (kdr 0): writes `out_length` bytes of the key for
/// `label` (0x00 RTP key, 0x02 RTP salt, 0x03/0x05 RTCP). `master_salt` is 14 bytes, or 12 for GCM (RFC 7714
/// errata 4938: multiplied by 2^16, i.e. two zero bytes appended). Returns 1 on success, 0 on failure.
int CCallsOpenSSL_srtp_kdf_aes128(const unsigned char *master_key, const unsigned char *master_salt,
                                  int master_salt_length, unsigned char label, unsigned char *out, int out_length);
/// A new AES-128-GCM context keyed with `key` (16 bytes) for encryption (`encrypt` 1) or decryption (0); NULL on
/// failure. Free it with EVP_CIPHER_CTX_free.
EVP_CIPHER_CTX *CCallsOpenSSL_gcm_context_new(const unsigned char *key, int encrypt);
/// Seals in place: `data[0..<aad_length]` is authenticated only, `data[aad_length..<length]` is encrypted, and the
/// 16-byte tag is written at `data + length`. `iv` is 12 bytes. Returns `length + 16`, or -1 on failure.
int CCallsOpenSSL_gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *iv, unsigned char *data, int aad_length,
                           int length);
/// Opens in place what `CCallsOpenSSL_gcm_seal` produced (`length` includes the tag). Returns the plain length
/// (`length - 16`), or -1 when the tag does not verify.
int CCallsOpenSSL_gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *iv, unsigned char *data, int aad_length,
                           int length);

// SRTP AES_CM_128_HMAC_SHA1_80 (RFC 3711) over EVP AES-128-CTR and a precomputed HMAC-SHA1 key (no allocation per
// packet), in srtp_gcm.c.

/// A new AES-128-CTR encryption context keyed with `key` (16 bytes); NULL on failure. Free with EVP_CIPHER_CTX_free.
EVP_CIPHER_CTX *CCallsOpenSSL_ctr_context_new(const unsigned char *key);
/// HMAC-SHA1 inner and outer states for `key`, computed once; NULL on failure. Free with CCallsOpenSSL_hmac_sha1_free.
void *CCallsOpenSSL_hmac_sha1_new(const unsigned char *key, int key_length);
void CCallsOpenSSL_hmac_sha1_free(void *hmac);
/// Protects in place: `data[aad_length..<length]` is encrypted with the AES-CTR keystream from `iv` (16 bytes), then
/// the first `tag_length` bytes of HMAC-SHA1(data[0..<length] || ROC, big-endian) are appended at `data + length`.
/// Returns `length + tag_length`, or -1 on failure.
int CCallsOpenSSL_srtp_cm_seal(EVP_CIPHER_CTX *ctx, const void *hmac, const unsigned char *iv, unsigned char *data,
                               int aad_length, int length, unsigned int roc, int tag_length);
/// Opens in place what `CCallsOpenSSL_srtp_cm_seal` produced (`length` includes the tag): checks the tag (constant
/// time), then decrypts. Returns the plain length (`length - tag_length`), or -1 when the tag does not verify.
int CCallsOpenSSL_srtp_cm_open(EVP_CIPHER_CTX *ctx, const void *hmac, const unsigned char *iv, unsigned char *data,
                               int aad_length, int length, unsigned int roc, int tag_length);

#endif
