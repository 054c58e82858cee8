/// A 16-bit STUN attribute type (RFC 8489 §14, §18.3; RFC 8656 §18; RFC 8445 §16.1; RFC 5780 §7).
public struct STUNAttributeType: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The attribute type code.
    public let rawValue: UInt16

    /// Wraps a type code.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// RFC 8489 §14: types 0x0000–0x7FFF are comprehension-required; an agent that does not
    /// understand one must reject the message (420 + UNKNOWN-ATTRIBUTES for requests).
    public var isComprehensionRequired: Bool { rawValue < 0x8000 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// MAPPED-ADDRESS, RFC 8489 §14.1.
    public static let mappedAddress = Self(rawValue: 0x0001)
    /// CHANGE-REQUEST, RFC 5780 §7.2.
    public static let changeRequest = Self(rawValue: 0x0003)
    /// SOURCE-ADDRESS, RFC 3489 (legacy: accept, don't send).
    public static let sourceAddress = Self(rawValue: 0x0004)
    /// CHANGED-ADDRESS, RFC 3489 (legacy: accept, don't send).
    public static let changedAddress = Self(rawValue: 0x0005)
    /// USERNAME, RFC 8489 §14.3.
    public static let username = Self(rawValue: 0x0006)
    /// MESSAGE-INTEGRITY, RFC 8489 §14.5.
    public static let messageIntegrity = Self(rawValue: 0x0008)
    /// ERROR-CODE, RFC 8489 §14.8.
    public static let errorCode = Self(rawValue: 0x0009)
    /// UNKNOWN-ATTRIBUTES, RFC 8489 §14.9.
    public static let unknownAttributes = Self(rawValue: 0x000A)
    /// CHANNEL-NUMBER, RFC 8656 §18.1.
    public static let channelNumber = Self(rawValue: 0x000C)
    /// LIFETIME, RFC 8656 §18.2.
    public static let lifetime = Self(rawValue: 0x000D)
    /// XOR-PEER-ADDRESS, RFC 8656 §18.3.
    public static let xorPeerAddress = Self(rawValue: 0x0012)
    /// DATA, RFC 8656 §18.4.
    public static let data = Self(rawValue: 0x0013)
    /// REALM, RFC 8489 §14.9.
    public static let realm = Self(rawValue: 0x0014)
    /// NONCE, RFC 8489 §14.10.
    public static let nonce = Self(rawValue: 0x0015)
    /// XOR-RELAYED-ADDRESS, RFC 8656 §18.5.
    public static let xorRelayedAddress = Self(rawValue: 0x0016)
    /// REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.6.
    public static let requestedAddressFamily = Self(rawValue: 0x0017)
    /// EVEN-PORT, RFC 8656 §18.7.
    public static let evenPort = Self(rawValue: 0x0018)
    /// REQUESTED-TRANSPORT, RFC 8656 §18.8.
    public static let requestedTransport = Self(rawValue: 0x0019)
    /// DONT-FRAGMENT, RFC 8656 §18.9.
    public static let dontFragment = Self(rawValue: 0x001A)
    /// MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6.
    public static let messageIntegritySHA256 = Self(rawValue: 0x001C)
    /// PASSWORD-ALGORITHM, RFC 8489 §14.12.
    public static let passwordAlgorithm = Self(rawValue: 0x001D)
    /// USERHASH, RFC 8489 §14.4.
    public static let userhash = Self(rawValue: 0x001E)
    /// XOR-MAPPED-ADDRESS, RFC 8489 §14.2.
    public static let xorMappedAddress = Self(rawValue: 0x0020)
    /// RESERVATION-TOKEN, RFC 8656 §18.10.
    public static let reservationToken = Self(rawValue: 0x0022)
    /// PRIORITY, RFC 8445 §16.1.
    public static let priority = Self(rawValue: 0x0024)
    /// USE-CANDIDATE, RFC 8445 §16.1.
    public static let useCandidate = Self(rawValue: 0x0025)
    /// PADDING, RFC 5780 §7.4.
    public static let padding = Self(rawValue: 0x0026)
    /// RESPONSE-PORT, RFC 5780 §7.5.
    public static let responsePort = Self(rawValue: 0x0027)
    /// CONNECTION-ID, RFC 6062 §6.2.1.
    public static let connectionID = Self(rawValue: 0x002A)
    /// ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §18.11.
    public static let additionalAddressFamily = Self(rawValue: 0x8000)
    /// ADDRESS-ERROR-CODE, RFC 8656 §18.12.
    public static let addressErrorCode = Self(rawValue: 0x8001)
    /// PASSWORD-ALGORITHMS, RFC 8489 §14.11.
    public static let passwordAlgorithms = Self(rawValue: 0x8002)
    /// ALTERNATE-DOMAIN, RFC 8489 §14.16.
    public static let alternateDomain = Self(rawValue: 0x8003)
    /// ICMP, RFC 8656 §18.13.
    public static let icmp = Self(rawValue: 0x8004)
    /// SOFTWARE, RFC 8489 §14.14.
    public static let software = Self(rawValue: 0x8022)
    /// ALTERNATE-SERVER, RFC 8489 §14.15.
    public static let alternateServer = Self(rawValue: 0x8023)
    /// CACHE-TIMEOUT, RFC 5780 §7.6.
    public static let cacheTimeout = Self(rawValue: 0x8027)
    /// FINGERPRINT, RFC 8489 §14.7.
    public static let fingerprint = Self(rawValue: 0x8028)
    /// ICE-CONTROLLED, RFC 8445 §16.1.
    public static let iceControlled = Self(rawValue: 0x8029)
    /// ICE-CONTROLLING, RFC 8445 §16.1.
    public static let iceControlling = Self(rawValue: 0x802A)
    /// RESPONSE-ORIGIN, RFC 5780 §7.3.
    public static let responseOrigin = Self(rawValue: 0x802B)
    /// OTHER-ADDRESS, RFC 5780 §7.4.
    public static let otherAddress = Self(rawValue: 0x802C)

    /// Whether this module decodes the type into a typed ``STUNAttribute`` case (used for 420 handling).
    public var isKnown: Bool { Self.names[rawValue] != nil }

    public var description: String {
        if let name = Self.names[rawValue] { return name }
        return "0x" + hex(rawValue, digits: 4)
    }

    private static let names: [UInt16: String] = [
        0x0001: "MAPPED-ADDRESS", 0x0003: "CHANGE-REQUEST", 0x0004: "SOURCE-ADDRESS",
        0x0005: "CHANGED-ADDRESS", 0x0006: "USERNAME", 0x0008: "MESSAGE-INTEGRITY", 0x0009: "ERROR-CODE",
        0x000A: "UNKNOWN-ATTRIBUTES", 0x000C: "CHANNEL-NUMBER", 0x000D: "LIFETIME",
        0x0012: "XOR-PEER-ADDRESS", 0x0013: "DATA", 0x0014: "REALM", 0x0015: "NONCE",
        0x0016: "XOR-RELAYED-ADDRESS", 0x0017: "REQUESTED-ADDRESS-FAMILY", 0x0018: "EVEN-PORT",
        0x0019: "REQUESTED-TRANSPORT", 0x001A: "DONT-FRAGMENT", 0x001C: "MESSAGE-INTEGRITY-SHA256",
        0x001D: "PASSWORD-ALGORITHM", 0x001E: "USERHASH", 0x0020: "XOR-MAPPED-ADDRESS",
        0x0022: "RESERVATION-TOKEN", 0x0024: "PRIORITY", 0x0025: "USE-CANDIDATE", 0x0026: "PADDING",
        0x0027: "RESPONSE-PORT", 0x002A: "CONNECTION-ID", 0x8000: "ADDITIONAL-ADDRESS-FAMILY",
        0x8001: "ADDRESS-ERROR-CODE", 0x8002: "PASSWORD-ALGORITHMS", 0x8003: "ALTERNATE-DOMAIN",
        0x8004: "ICMP", 0x8022: "SOFTWARE", 0x8023: "ALTERNATE-SERVER", 0x8027: "CACHE-TIMEOUT",
        0x8028: "FINGERPRINT", 0x8029: "ICE-CONTROLLED", 0x802A: "ICE-CONTROLLING",
        0x802B: "RESPONSE-ORIGIN", 0x802C: "OTHER-ADDRESS",
    ]
}
