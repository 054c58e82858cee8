#include "CCallsSRTP.h"

void CCallsSRTP_policy_set_aes_cm_128_hmac_sha1_80(srtp_crypto_policy_t *policy) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(policy);
}

int CCallsSRTP_max_trailer_len(void) { return SRTP_MAX_TRAILER_LEN; }
