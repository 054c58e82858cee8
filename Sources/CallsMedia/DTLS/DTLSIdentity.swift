/// The DTLS identity of one media endpoint: an ECDSA P-256 key and a self-signed certificate, generated at start.
///
/// WebRTC does not use certificate authorities: each side announces its certificate's fingerprint in SDP
/// (`a=fingerprint:` + `fingerprint.sdpValue`) and the peer checks it after the DTLS handshake.
// Sendable because it is immutable after init: the key and certificate are never modified once signed, and
// OpenSSL permits concurrent read-only use of an EVP_PKEY / X509 (SSL_CTX_use_* only takes a reference).
public final class DTLSIdentity: @unchecked Sendable {
    let privateKey: OpenSSLPrivateKey
    let certificate: OpenSSLCertificate
    /// The certificate's SHA-256 fingerprint, for the local SDP.
    public let fingerprint: DTLSFingerprint

    /// Generates a fresh key and certificate (a few milliseconds).
    /// - Parameters:
    ///   - commonName: the certificate's subject and issuer CN. Peers ignore it; browsers use random names.
    ///   - validity: how long the certificate is valid. WebRTC peers do not check it; 30 days by default.
    public init(commonName: String = "callsctl", validity: Duration = .seconds(30 * 86_400)) throws(DTLSError) {
        privateKey = try OpenSSLPrivateKey.generateP256()
        certificate = try OpenSSLCertificate.selfSigned(key: privateKey, commonName: commonName, validity: validity)
        guard let fingerprint = DTLSFingerprint.of(certificate: certificate.pointer, algorithm: .sha256) else {
            throw .drained(.identityGeneration, "cannot compute the certificate fingerprint")
        }
        self.fingerprint = fingerprint
    }
}
