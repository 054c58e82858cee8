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
/// The OpenSSL version string of the library actually linked at run time.
const char *CCallsOpenSSL_version_string(void);

#endif
