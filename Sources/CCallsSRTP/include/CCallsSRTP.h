#ifndef CCALLS_SRTP_H
#define CCALLS_SRTP_H

// The system libsrtp2 (Debian: libsrtp2-dev), plus wrappers for what Swift cannot import directly.
#include <srtp2/srtp.h>

/// srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 is a macro; this is a real function for it.
void CCallsSRTP_policy_set_aes_cm_128_hmac_sha1_80(srtp_crypto_policy_t *policy);
/// Bytes a protect call may append (SRTP_MAX_TRAILER_LEN), as a function so Swift sees it.
int CCallsSRTP_max_trailer_len(void);

#endif
