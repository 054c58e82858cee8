internal import CCallsOpenSSL

/// A certificate fingerprint as carried in SDP's `a=fingerprint` attribute (RFC 8122 §5), e.g.
/// `sha-256 AB:CD:...`. WebRTC authenticates DTLS peers by this value instead of a certificate chain.
public struct DTLSFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// A hash function allowed for fingerprints. SHA-1 is deliberately absent (RFC 8122 §5: SHOULD NOT).
    public enum Algorithm: String, Hashable, Sendable, CaseIterable {
        case sha256 = "sha-256"
        case sha384 = "sha-384"
        case sha512 = "sha-512"

        var digestLength: Int {
            switch self {
            case .sha256: 32
            case .sha384: 48
            case .sha512: 64
            }
        }

        /// The OpenSSL digest (`const EVP_MD *`); a static object, never freed.
        var evpMD: OpaquePointer? {
            switch self {
            case .sha256: EVP_sha256()
            case .sha384: EVP_sha384()
            case .sha512: EVP_sha512()
            }
        }
    }

    public let algorithm: Algorithm
    public let bytes: [UInt8]

    /// - Precondition: `bytes.count` is the algorithm's digest length.
    public init(algorithm: Algorithm, bytes: [UInt8]) {
        precondition(bytes.count == algorithm.digestLength, "fingerprint length does not match \(algorithm.rawValue)")
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Parses an SDP fingerprint value (`sha-256 AB:CD:...`, the part after `a=fingerprint:`). The hash name and
    /// the hex digits are case-insensitive. Returns nil for anything else, including unsupported hashes.
    public init?(sdp value: some StringProtocol) {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let algorithm = Algorithm(rawValue: parts[0].lowercased()) else { return nil }
        var bytes: [UInt8] = []
        for pair in parts[1].split(separator: ":", omittingEmptySubsequences: false) {
            guard pair.count == 2, let byte = UInt8(pair, radix: 16) else { return nil }
            bytes.append(byte)
        }
        guard bytes.count == algorithm.digestLength else { return nil }
        self.init(algorithm: algorithm, bytes: bytes)
    }

    /// The SDP form: `sha-256 AB:CD:...` (upper-case hex, as browsers write it).
    public var sdpValue: String {
        let hexDigits = Array("0123456789ABCDEF")
        let hex = bytes.map { String([hexDigits[Int($0 >> 4)], hexDigits[Int($0 & 0x0F)]]) }
        return algorithm.rawValue + " " + hex.joined(separator: ":")
    }

    public var description: String { sdpValue }

    /// The fingerprint of `certificate` (an `X509 *`) with `algorithm`, or nil when OpenSSL fails.
    static func of(certificate: OpaquePointer, algorithm: Algorithm) -> DTLSFingerprint? {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, algorithm.evpMD, &digest, &length) == 1,
            Int(length) == algorithm.digestLength
        else { return nil }
        return DTLSFingerprint(algorithm: algorithm, bytes: Array(digest.prefix(Int(length))))
    }
}
