/// One STUN attribute, decoded into a typed value.
///
/// Decoding is lossless for the model: an attribute whose type this module does not know, *or* whose
/// value is malformed for its type (wrong length, unknown address family, invalid UTF-8 text, …), is
/// kept as ``raw(type:value:)`` with its exact value bytes. So a decoder never throws because of one
/// odd attribute, typed accessors simply do not see it, and re-encoding reproduces it.
/// Padding bytes are not part of the model (RFC 8489 §14: their content must be ignored).
public enum STUNAttribute: Hashable, Sendable {
    /// MAPPED-ADDRESS (RFC 8489 §14.1), not XOR-ed; sent by RFC 3489-era servers and by coturn alongside
    /// XOR-MAPPED-ADDRESS.
    case mappedAddress(STUNAddress)
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the reflexive transport address, XOR-ed on the wire.
    case xorMappedAddress(STUNAddress)
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3). May appear several times in CreatePermission.
    case xorPeerAddress(STUNAddress)
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5). Up to two (one per family) in an Allocate success.
    case xorRelayedAddress(STUNAddress)
    /// ALTERNATE-SERVER (RFC 8489 §14.15), with 300 Try Alternate.
    case alternateServer(STUNAddress)
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    case responseOrigin(STUNAddress)
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    case otherAddress(STUNAddress)
    /// SOURCE-ADDRESS (RFC 3489, legacy).
    case sourceAddress(STUNAddress)
    /// CHANGED-ADDRESS (RFC 3489, legacy).
    case changedAddress(STUNAddress)
    /// CHANGE-REQUEST (RFC 5780 §7.2).
    case changeRequest(STUNChangeRequest)
    /// USERNAME (RFC 8489 §14.3), UTF-8.
    case username(String)
    /// USERHASH (RFC 8489 §14.4), 32 bytes.
    case userhash([UInt8])
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5): the 20-byte HMAC-SHA1 as found on the wire.
    case messageIntegrity([UInt8])
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): 16–32 bytes (multiple of 4) of HMAC-SHA256.
    case messageIntegritySHA256([UInt8])
    /// FINGERPRINT (RFC 8489 §14.7): CRC-32 of the preceding message XOR 0x5354554E.
    case fingerprint(UInt32)
    /// ERROR-CODE (RFC 8489 §14.8).
    case errorCode(STUNErrorCode)
    /// REALM (RFC 8489 §14.9).
    case realm(String)
    /// NONCE (RFC 8489 §14.10).
    case nonce(String)
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
    case passwordAlgorithms([STUNPasswordAlgorithm])
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    case passwordAlgorithm(STUNPasswordAlgorithm)
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).
    case unknownAttributes([STUNAttributeType])
    /// SOFTWARE (RFC 8489 §14.14).
    case software(String)
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16).
    case alternateDomain(String)
    /// CHANNEL-NUMBER (RFC 8656 §18.1); the 16 RFFU bits are not modelled.
    case channelNumber(UInt16)
    /// LIFETIME in seconds (RFC 8656 §18.2).
    case lifetime(UInt32)
    /// DATA (RFC 8656 §18.4).
    case data([UInt8])
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    case requestedAddressFamily(STUNAddress.Family)
    /// EVEN-PORT (RFC 8656 §18.7): `true` when the R bit asks to reserve the next port too.
    case evenPort(reserveNextPort: Bool)
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8): IANA protocol number, 17 = UDP, 6 = TCP.
    case requestedTransport(UInt8)
    /// DONT-FRAGMENT (RFC 8656 §18.9), no value.
    case dontFragment
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    case reservationToken(UInt64)
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    case additionalAddressFamily(STUNAddress.Family)
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12).
    case addressErrorCode(STUNAddressErrorCode)
    /// ICMP (RFC 8656 §18.13).
    case icmp(STUNICMP)
    /// PRIORITY (RFC 8445 §16.1).
    case priority(UInt32)
    /// USE-CANDIDATE (RFC 8445 §16.1), no value.
    case useCandidate
    /// ICE-CONTROLLED tie-breaker (RFC 8445 §16.1).
    case iceControlled(UInt64)
    /// ICE-CONTROLLING tie-breaker (RFC 8445 §16.1).
    case iceControlling(UInt64)
    /// PADDING (RFC 5780 §7.4): its bytes are kept so re-encoding keeps the size.
    case padding([UInt8])
    /// RESPONSE-PORT (RFC 5780 §7.5).
    case responsePort(UInt16)
    /// CACHE-TIMEOUT in seconds (RFC 5780 §7.6).
    case cacheTimeout(UInt32)
    /// CONNECTION-ID (RFC 6062 §6.2.1).
    case connectionID(UInt32)
    /// Any other attribute, or a known one whose value did not parse; `value` excludes padding.
    case raw(type: STUNAttributeType, value: [UInt8])

    /// The wire type of this attribute.
    public var type: STUNAttributeType {
        switch self {
        case .mappedAddress: .mappedAddress
        case .xorMappedAddress: .xorMappedAddress
        case .xorPeerAddress: .xorPeerAddress
        case .xorRelayedAddress: .xorRelayedAddress
        case .alternateServer: .alternateServer
        case .responseOrigin: .responseOrigin
        case .otherAddress: .otherAddress
        case .sourceAddress: .sourceAddress
        case .changedAddress: .changedAddress
        case .changeRequest: .changeRequest
        case .username: .username
        case .userhash: .userhash
        case .messageIntegrity: .messageIntegrity
        case .messageIntegritySHA256: .messageIntegritySHA256
        case .fingerprint: .fingerprint
        case .errorCode: .errorCode
        case .realm: .realm
        case .nonce: .nonce
        case .passwordAlgorithms: .passwordAlgorithms
        case .passwordAlgorithm: .passwordAlgorithm
        case .unknownAttributes: .unknownAttributes
        case .software: .software
        case .alternateDomain: .alternateDomain
        case .channelNumber: .channelNumber
        case .lifetime: .lifetime
        case .data: .data
        case .requestedAddressFamily: .requestedAddressFamily
        case .evenPort: .evenPort
        case .requestedTransport: .requestedTransport
        case .dontFragment: .dontFragment
        case .reservationToken: .reservationToken
        case .additionalAddressFamily: .additionalAddressFamily
        case .addressErrorCode: .addressErrorCode
        case .icmp: .icmp
        case .priority: .priority
        case .useCandidate: .useCandidate
        case .iceControlled: .iceControlled
        case .iceControlling: .iceControlling
        case .padding: .padding
        case .responsePort: .responsePort
        case .cacheTimeout: .cacheTimeout
        case .connectionID: .connectionID
        case .raw(let type, _): type
        }
    }
}

/// The value of ERROR-CODE (RFC 8489 §14.8): a three-digit code and a reason phrase.
public struct STUNErrorCode: Hashable, Sendable, CustomStringConvertible {
    /// The numeric code, `class * 100 + number` (e.g. 401). Encodable range 0–799.
    public var code: UInt16
    /// The reason phrase. Trailing NUL bytes seen on the wire (coturn pads with them) are stripped.
    public var reason: String

    /// Creates an error code; with no reason, the RFC's recommended phrase (if any) is used.
    public init(code: UInt16, reason: String? = nil) {
        self.code = code
        self.reason = reason ?? STUNErrorCode.defaultReason(for: code)
    }

    /// The hundreds digit (3–6 in valid messages).
    public var errorClass: UInt8 { UInt8(truncatingIfNeeded: code / 100) }
    /// The code modulo 100.
    public var number: UInt8 { UInt8(truncatingIfNeeded: code % 100) }

    public var description: String { reason.isEmpty ? "\(code)" : "\(code) \(reason)" }

    /// 300 Try Alternate.
    public static let tryAlternate: UInt16 = 300
    /// 400 Bad Request.
    public static let badRequest: UInt16 = 400
    /// 401 Unauthenticated.
    public static let unauthenticated: UInt16 = 401
    /// 403 Forbidden.
    public static let forbidden: UInt16 = 403
    /// 405 Mobility Forbidden.
    public static let mobilityForbidden: UInt16 = 405
    /// 420 Unknown Attribute.
    public static let unknownAttribute: UInt16 = 420
    /// 437 Allocation Mismatch.
    public static let allocationMismatch: UInt16 = 437
    /// 438 Stale Nonce.
    public static let staleNonce: UInt16 = 438
    /// 440 Address Family not Supported.
    public static let addressFamilyNotSupported: UInt16 = 440
    /// 441 Wrong Credentials.
    public static let wrongCredentials: UInt16 = 441
    /// 442 Unsupported Transport Protocol.
    public static let unsupportedTransportProtocol: UInt16 = 442
    /// 443 Peer Address Family Mismatch.
    public static let peerAddressFamilyMismatch: UInt16 = 443
    /// 446 Connection Already Exists (RFC 6062).
    public static let connectionAlreadyExists: UInt16 = 446
    /// 447 Connection Timeout or Failure (RFC 6062).
    public static let connectionTimeoutOrFailure: UInt16 = 447
    /// 486 Allocation Quota Reached.
    public static let allocationQuotaReached: UInt16 = 486
    /// 487 Role Conflict (ICE).
    public static let roleConflict: UInt16 = 487
    /// 500 Server Error.
    public static let serverError: UInt16 = 500
    /// 508 Insufficient Capacity.
    public static let insufficientCapacity: UInt16 = 508

    /// Reason phrases from RFC 8489 §14.8, RFC 8656 §19, RFC 6062 and RFC 8445.
    public static func defaultReason(for code: UInt16) -> String {
        switch code {
        case 300: "Try Alternate"
        case 400: "Bad Request"
        case 401: "Unauthenticated"
        case 403: "Forbidden"
        case 405: "Mobility Forbidden"
        case 420: "Unknown Attribute"
        case 437: "Allocation Mismatch"
        case 438: "Stale Nonce"
        case 440: "Address Family not Supported"
        case 441: "Wrong Credentials"
        case 442: "Unsupported Transport Protocol"
        case 443: "Peer Address Family Mismatch"
        case 446: "Connection Already Exists"
        case 447: "Connection Timeout or Failure"
        case 486: "Allocation Quota Reached"
        case 487: "Role Conflict"
        case 500: "Server Error"
        case 508: "Insufficient Capacity"
        default: ""
        }
    }
}

/// The value of ADDRESS-ERROR-CODE (RFC 8656 §18.12): which family of a dual allocation failed, and why.
public struct STUNAddressErrorCode: Hashable, Sendable {
    /// The address family the error applies to.
    public var family: STUNAddress.Family
    /// The error.
    public var error: STUNErrorCode

    /// Creates the value.
    public init(family: STUNAddress.Family, error: STUNErrorCode) {
        self.family = family
        self.error = error
    }
}

/// CHANGE-REQUEST flags (RFC 5780 §7.2), used by NAT-behaviour filtering tests.
public struct STUNChangeRequest: OptionSet, Hashable, Sendable {
    /// The 32-bit value; bits other than the two flags are kept so the value round-trips.
    public let rawValue: UInt32
    /// Wraps a raw value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// "A": ask the server to answer from its other IP address.
    public static let changeIP = STUNChangeRequest(rawValue: 0x4)
    /// "B": ask the server to answer from its other port.
    public static let changePort = STUNChangeRequest(rawValue: 0x2)
}

/// A password algorithm (RFC 8489 §14.11, §14.12, §18.5).
public struct STUNPasswordAlgorithm: Hashable, Sendable, CustomStringConvertible {
    /// The IANA algorithm number.
    public var number: UInt16
    /// Algorithm parameters (empty for MD5 and SHA-256).
    public var parameters: [UInt8]

    /// Creates an algorithm entry.
    public init(number: UInt16, parameters: [UInt8] = []) {
        self.number = number
        self.parameters = parameters
    }

    /// MD5 (0x0001): the RFC 5389 long-term key.
    public static let md5 = STUNPasswordAlgorithm(number: 0x0001)
    /// SHA-256 (0x0002).
    public static let sha256 = STUNPasswordAlgorithm(number: 0x0002)

    /// The key derivation this algorithm selects, or `nil` if this module does not implement it.
    public var keyDerivation: STUNKey.LongTermAlgorithm? {
        switch number {
        case 0x0001: .md5
        case 0x0002: .sha256
        default: nil
        }
    }

    public var description: String {
        switch number {
        case 0x0001: "MD5"
        case 0x0002: "SHA-256"
        default: "algorithm(\(number))"
        }
    }
}

/// The value of the ICMP attribute (RFC 8656 §18.13): an ICMP error a TURN server relays to the client.
public struct STUNICMP: Hashable, Sendable {
    /// ICMP (or ICMPv6) type.
    public var type: UInt8
    /// ICMP code.
    public var code: UInt8
    /// Error data, e.g. the next-hop MTU for "fragmentation needed"/"packet too big".
    public var errorData: UInt32

    /// Creates the value.
    public init(type: UInt8, code: UInt8, errorData: UInt32) {
        self.type = type
        self.code = code
        self.errorData = errorData
    }
}
