import Crypto

/// A STUN HMAC key (RFC 8489 §9).
///
/// Equality compares in constant time, because keys are secrets.
public struct STUNKey: Sendable, Equatable, CustomStringConvertible {
    /// Hash for the long-term key derivation (RFC 8489 §9.2.2, selected by PASSWORD-ALGORITHM).
    public enum LongTermAlgorithm: Sendable, Hashable {
        /// MD5, 16-byte key; the default when no PASSWORD-ALGORITHM is present (and RFC 5389's only one).
        case md5
        /// SHA-256, 32-byte key.
        case sha256
    }

    /// The key bytes fed to HMAC.
    public let bytes: [UInt8]

    /// Wraps raw key bytes (e.g. a long-term key cached from an earlier exchange).
    public init(bytes: some Sequence<UInt8>) { self.bytes = Array(bytes) }

    /// Short-term credential key (RFC 8489 §9.1.1): `OpaqueString(password)`.
    ///
    /// The string's UTF-8 bytes are used as-is; no PRECIS/SASLprep mapping is applied. ICE passwords
    /// (RFC 8445: ice-chars) and TURN-REST passwords (base64) are ASCII, where that makes no difference.
    public static func shortTerm(password: String) -> STUNKey { STUNKey(bytes: password.utf8) }

    /// Long-term credential key (RFC 8489 §9.2.2): `H(username ":" realm ":" password)`, with H = MD5
    /// (16 bytes) or SHA-256 (32 bytes). Strings are used as UTF-8 without OpaqueString processing; pass
    /// already-prepared strings for non-ASCII passwords (see the RFC 5769 §2.4 vector).
    public static func longTerm(
        username: String, realm: String, password: String, algorithm: LongTermAlgorithm = .md5
    ) -> STUNKey {
        let input = Array("\(username):\(realm):\(password)".utf8)
        switch algorithm {
        case .md5: return STUNKey(bytes: Insecure.MD5.hash(data: input))
        case .sha256: return STUNKey(bytes: SHA256.hash(data: input))
        }
    }

    /// USERHASH value (RFC 8489 §14.4): `SHA-256(username ":" realm)`, 32 bytes.
    public static func userhash(username: String, realm: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("\(username):\(realm)".utf8)))
    }

    public static func == (lhs: STUNKey, rhs: STUNKey) -> Bool { constantTimeEqual(lhs.bytes[...], rhs.bytes[...]) }

    /// Never prints the key itself.
    public var description: String { "STUNKey(\(bytes.count) bytes)" }
}

/// Which integrity attributes to append when encoding (RFC 8489 §14.5, §14.6).
public struct STUNIntegrity: Sendable {
    /// The HMAC key.
    public var key: STUNKey
    /// Append MESSAGE-INTEGRITY (HMAC-SHA1).
    public var messageIntegrity: Bool
    /// Append MESSAGE-INTEGRITY-SHA256 with this many MAC bytes (16–32, multiple of 4), or `nil` for none.
    public var sha256Length: Int?

    /// Creates a configuration. At least one of the two attributes should be requested.
    public init(key: STUNKey, messageIntegrity: Bool = true, sha256Length: Int? = nil) {
        self.key = key
        self.messageIntegrity = messageIntegrity
        self.sha256Length = sha256Length
    }

    /// MESSAGE-INTEGRITY only: what ICE (RFC 8445 §7.1.2) and RFC 5389 servers expect.
    public static func sha1(_ key: STUNKey) -> STUNIntegrity { STUNIntegrity(key: key) }
    /// MESSAGE-INTEGRITY-SHA256 only (32-byte MAC).
    public static func sha256(_ key: STUNKey) -> STUNIntegrity {
        STUNIntegrity(key: key, messageIntegrity: false, sha256Length: 32)
    }
    /// Both, in the RFC 8489 order: MESSAGE-INTEGRITY, then MESSAGE-INTEGRITY-SHA256.
    public static func both(_ key: STUNKey) -> STUNIntegrity {
        STUNIntegrity(key: key, messageIntegrity: true, sha256Length: 32)
    }
}

/// Compares without an early exit so timing does not reveal how many leading MAC bytes were right.
func constantTimeEqual(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for (x, y) in zip(a, b) { diff |= x ^ y }
    return diff == 0
}

/// HMAC over a STUN message prefix whose length field is replaced (RFC 8489 §14.5: "the length field
/// of the STUN message header is adjusted to point to the end of the MESSAGE-INTEGRITY attribute").
/// `prefix` is the message from its first byte up to (excluding) the integrity attribute.
/// Calls `body` with the MAC bytes.
@inline(__always)
func stunHMAC<H: HashFunction, R>(
    _: H.Type, key: STUNKey, prefix: UnsafeRawBufferPointer, patchedLength: UInt16,
    _ body: (UnsafeRawBufferPointer) -> R
) -> R {
    let lengthField = patchedLength.bigEndian
    return withUnsafeBytes(of: lengthField) { lengthBytes in
        hmac(H.self, key: key.bytes) { h in
            // Header bytes 0–1 (type), the patched length, then everything from byte 4 on as it is.
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: prefix[0..<2]))
            h.update(bufferPointer: lengthBytes)
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: prefix[4...]))
        } result: { body($0) }
    }
}

/// HMAC (RFC 2104) on top of swift-crypto's hash functions.
///
/// swift-crypto's `HMAC<H>` is not inlinable, so from another module it runs unspecialized (generic
/// metadata lookups per call) and allocates a `SymmetricKey` and two pad arrays per message; an ICE
/// server MACs every check twice (verify + respond). This version is specialised in this module and
/// keeps the pads on the stack: K0 = key (or H(key) if longer than a block) padded with zeros,
/// HMAC = H((K0 ^ opad) ‖ H((K0 ^ ipad) ‖ message)).
@inline(__always)
func hmac<H: HashFunction, R>(
    _: H.Type, key: [UInt8], message: (inout H) -> Void, result: (UnsafeRawBufferPointer) -> R
) -> R {
    let block = H.blockByteCount
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: block) { pad in
        pad.initialize(repeating: 0)
        if key.count > block {
            let digest = H.hash(data: key)
            digest.withUnsafeBytes { d in
                for i in 0..<min(d.count, block) { pad[i] = d[i] }
            }
        } else {
            for i in 0..<key.count { pad[i] = key[i] }
        }
        for i in 0..<block { pad[i] ^= 0x36 }
        var inner = H()
        inner.update(bufferPointer: UnsafeRawBufferPointer(pad))
        message(&inner)
        let innerDigest = inner.finalize()
        for i in 0..<block { pad[i] ^= 0x36 ^ 0x5C }
        var outer = H()
        outer.update(bufferPointer: UnsafeRawBufferPointer(pad))
        innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize().withUnsafeBytes { result($0) }
    }
}
