#include "CCallsOpenSSL.h"

long CCallsOpenSSL_BIO_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
int CCallsOpenSSL_BIO_reset(BIO *bio) { return (int)BIO_reset(bio); }
void CCallsOpenSSL_BIO_set_mem_eof_return(BIO *bio, int value) { BIO_set_mem_eof_return(bio, value); }

long CCallsOpenSSL_DTLSv1_get_timeout(SSL *ssl, long *seconds, long *microseconds) {
    struct timeval tv = {0, 0};
    long ok = DTLSv1_get_timeout(ssl, &tv);
    *seconds = (long)tv.tv_sec;
    *microseconds = (long)tv.tv_usec;
    return ok;
}

long CCallsOpenSSL_DTLSv1_handle_timeout(SSL *ssl) { return DTLSv1_handle_timeout(ssl); }
long CCallsOpenSSL_SSL_set_mtu(SSL *ssl, long mtu) { return SSL_set_mtu(ssl, mtu); }
long CCallsOpenSSL_DTLS_set_link_mtu(SSL *ssl, long mtu) { return DTLS_set_link_mtu(ssl, mtu); }
long CCallsOpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
long CCallsOpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
long CCallsOpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return SSL_CTX_set1_groups_list(ctx, list);
}
unsigned long CCallsOpenSSL_SSL_OP_NO_QUERY_MTU(void) { return (unsigned long)SSL_OP_NO_QUERY_MTU; }
unsigned long CCallsOpenSSL_SSL_OP_NO_RENEGOTIATION(void) { return (unsigned long)SSL_OP_NO_RENEGOTIATION; }
unsigned long CCallsOpenSSL_SSL_OP_NO_TICKET(void) { return (unsigned long)SSL_OP_NO_TICKET; }
long CCallsOpenSSL_SSL_CTX_disable_session_cache(SSL_CTX *ctx) {
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}
long CCallsOpenSSL_SSL_CTX_release_buffers(SSL_CTX *ctx) { return SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); }
const char *CCallsOpenSSL_version_string(void) { return OpenSSL_version(OPENSSL_VERSION); }
