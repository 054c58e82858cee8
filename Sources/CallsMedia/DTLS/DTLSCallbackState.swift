internal import CCallsOpenSSL

/// Per-endpoint values that OpenSSL's C callbacks (certificate verification, retransmit timer) need.
///
/// The endpoint stores a retained reference in the `SSL`'s application-data slot (ex_data index 0, what
/// `SSL_set_app_data` uses) and releases it after `SSL_free`; the callbacks only run inside OpenSSL calls the
/// endpoint makes, on the endpoint's thread.
final class DTLSCallbackState {
    let expectedFingerprint: DTLSFingerprint
    let initialTimeoutMicroseconds: UInt32
    /// The fingerprint of a peer certificate the verify callback rejected, for a precise error message.
    var rejectedFingerprint: DTLSFingerprint?

    /// RFC 6347 §4.2.4.1: back off by doubling up to 60 s.
    static let maximumTimeoutMicroseconds: UInt32 = 60_000_000

    init(expectedFingerprint: DTLSFingerprint, initialTimeout: Duration) {
        self.expectedFingerprint = expectedFingerprint
        let micros =
            initialTimeout.components.seconds * 1_000_000 + initialTimeout.components.attoseconds / 1_000_000_000_000
        initialTimeoutMicroseconds = UInt32(clamping: max(1_000, min(micros, Int64(Self.maximumTimeoutMicroseconds))))
    }

    /// The state attached to `ssl` (an `SSL *`), if any.
    static func of(ssl: OpaquePointer) -> DTLSCallbackState? {
        guard let raw = SSL_get_ex_data(ssl, 0) else { return nil }
        return Unmanaged<DTLSCallbackState>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The certificate verification callback: true when the peer's leaf certificate has the expected fingerprint.
    static func verifyPeerCertificate(_ storeContext: OpaquePointer) -> Bool {
        guard let certificate = X509_STORE_CTX_get0_cert(storeContext),
            let ssl = X509_STORE_CTX_get_ex_data(storeContext, SSL_get_ex_data_X509_STORE_CTX_idx()),
            let state = of(ssl: OpaquePointer(ssl))
        else { return false }
        let expected = state.expectedFingerprint
        let actual = DTLSFingerprint.of(certificate: certificate, algorithm: expected.algorithm)
        guard actual == expected else {
            state.rejectedFingerprint = actual
            X509_STORE_CTX_set_error(storeContext, X509_V_ERR_CERT_REJECTED)  // sent as bad_certificate
            return false
        }
        X509_STORE_CTX_set_error(storeContext, X509_V_OK)
        return true
    }

    /// The retransmit timer callback: the first timeout, then doubling up to the maximum.
    static func nextTimeout(ssl: OpaquePointer?, previousMicroseconds: UInt32) -> UInt32 {
        guard previousMicroseconds > 0 else {
            guard let ssl, let state = of(ssl: ssl) else { return 1_000_000 }
            return state.initialTimeoutMicroseconds
        }
        return min(previousMicroseconds &* 2, maximumTimeoutMicroseconds)
    }
}

@available(*, unavailable)
extension DTLSCallbackState: Sendable {}
