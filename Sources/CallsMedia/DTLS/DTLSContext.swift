internal import CCallsOpenSSL

/// The shared OpenSSL DTLS 1.2 configuration (`SSL_CTX`) for endpoints presenting one identity.
///
/// Create one per identity and reuse it for every `DTLSEndpoint`: building an `SSL_CTX` costs far more than
/// `SSL_new`. Peer authentication is by SDP fingerprint (see `DTLSEndpoint`), so no trust store is loaded.
// Sendable because the SSL_CTX is fully configured in init and never mutated afterwards (session caching is off,
// so not even OpenSSL writes to it per connection); OpenSSL documents concurrent SSL_new on such a context as
// safe, and its reference count is atomic.
public final class DTLSContext: @unchecked Sendable {
    let pointer: OpaquePointer  // SSL_CTX *
    public let identity: DTLSIdentity

    /// ECDHE with ECDSA first (our certificate is P-256); the RSA suites accept a peer with an RSA certificate.
    /// AEAD suites only: every WebRTC browser offers AES-GCM, and `DTLSRecordFilter` relies on AEAD overheads.
    private static let cipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    public init(identity: DTLSIdentity) throws(DTLSError) {
        self.identity = identity
        OpenSSLErrorQueue.clear()
        guard let context = SSL_CTX_new(DTLS_method()) else {
            throw .drained(.internalError, "SSL_CTX_new(DTLS_method()) failed")
        }
        pointer = context  // from here on deinit frees it, also when init throws below
        guard CCallsOpenSSL_SSL_CTX_set_min_proto_version(context, DTLS1_2_VERSION) == 1,
            CCallsOpenSSL_SSL_CTX_set_max_proto_version(context, DTLS1_2_VERSION) == 1
        else { throw .drained(.internalError, "cannot pin the protocol to DTLS 1.2") }
        guard SSL_CTX_use_certificate(context, identity.certificate.pointer) == 1,
            SSL_CTX_use_PrivateKey(context, identity.privateKey.pointer) == 1,
            SSL_CTX_check_private_key(context) == 1
        else { throw .drained(.invalidConfiguration, "OpenSSL rejected the identity's key or certificate") }
        guard SSL_CTX_set_cipher_list(context, Self.cipherList) == 1,
            CCallsOpenSSL_SSL_CTX_set1_groups_list(context, "X25519:P-256:P-384") == 1
        else { throw .drained(.internalError, "cannot set cipher suites or groups") }
        // No MTU discovery on a memory BIO (the endpoint sets it); no renegotiation (WebRTC never does it, and
        // refusing it closes a class of DoS and state-confusion bugs); no session tickets or cache, because every
        // WebRTC association is a fresh full handshake (a ticket would only add a message to the last flight).
        let options =
            CCallsOpenSSL_SSL_OP_NO_QUERY_MTU() | CCallsOpenSSL_SSL_OP_NO_RENEGOTIATION()
            | CCallsOpenSSL_SSL_OP_NO_TICKET()
        SSL_CTX_set_options(context, UInt64(options))
        _ = CCallsOpenSSL_SSL_CTX_disable_session_cache(context)
        // After the handshake a session's DTLS state is idle (SRTP carries the media): its record buffers are freed
        // between uses instead of staying allocated per session.
        _ = CCallsOpenSSL_SSL_CTX_release_buffers(context)
        // Both roles demand the peer's certificate; the server asks for it with a CertificateRequest.
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        // Replaces chain building (a self-signed WebRTC certificate never chains to anything) with the
        // fingerprint comparison, so a mismatch aborts the handshake with a bad_certificate alert that the peer
        // sees too. DTLSEndpoint checks the fingerprint again once the handshake completes.
        SSL_CTX_set_cert_verify_callback(
            context,
            { storeContext, _ in
                guard let storeContext else { return 0 }
                return DTLSCallbackState.verifyPeerCertificate(storeContext) ? 1 : 0
            },
            nil)
    }

    deinit {
        SSL_CTX_free(pointer)
    }
}
