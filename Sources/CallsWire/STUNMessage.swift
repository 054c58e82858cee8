import NIOCore

/// A STUN message (RFC 8489 §5–§6), as a value.
///
/// ```swift
/// let request = STUNMessage(method: .binding, messageClass: .request, attributes: [
///     .username("remote:local"), .priority(0x6e0001ff), .iceControlling(tieBreaker), .useCandidate,
/// ])
/// let bytes = try request.encoded(integrity: .sha1(.shortTerm(password: pwd)), fingerprint: true)
///
/// let reply = try STUNMessage(decoding: datagram)
/// guard reply.verifyFingerprint(), reply.verifyIntegrity(key: key) else { ... }
/// print(reply.xorMappedAddress)
/// ```
///
/// A decoded message remembers the exact bytes it came from (as a `ByteBuffer` slice, no copy), so
/// ``verify(key:)`` checks MESSAGE-INTEGRITY and FINGERPRINT against what was actually received,
/// padding bytes included. Changing any stored property drops those bytes; a message built in code is
/// verified against its own canonical encoding. Equality and hashing ignore the remembered bytes.
public struct STUNMessage: Sendable, Hashable, CustomStringConvertible {
    /// The method (Binding, Allocate, …).
    public var method: STUNMethod { didSet { wire = nil } }
    /// Request, indication, success or error response.
    public var messageClass: STUNMessageClass { didSet { wire = nil } }
    /// The 96-bit transaction ID.
    public var transactionID: STUNTransactionID { didSet { wire = nil } }
    /// All attributes in wire order, including MESSAGE-INTEGRITY/FINGERPRINT when decoded and any
    /// attributes that follow them (which the typed accessors ignore, RFC 8489 §14.5).
    public var attributes: [STUNAttribute] { didSet { wire = nil } }

    /// The bytes this message was decoded from, if it was decoded and not modified since.
    var wire: ByteBuffer?

    /// Creates a message.
    /// - Parameters:
    ///   - method: The STUN method.
    ///   - messageClass: The message class.
    ///   - transactionID: Defaults to a fresh cryptographically random ID.
    ///   - attributes: Attributes in the order they will be encoded; integrity and fingerprint are added
    ///     by ``encoded(integrity:fingerprint:paddingByte:)``, not listed here.
    public init(
        method: STUNMethod, messageClass: STUNMessageClass, transactionID: STUNTransactionID = .random(),
        attributes: [STUNAttribute] = []
    ) {
        self.method = method
        self.messageClass = messageClass
        self.transactionID = transactionID
        self.attributes = attributes
        self.wire = nil
    }

    /// The exact bytes this message was decoded from, or `nil` for a built or modified message.
    public var originalBytes: ByteBuffer? { wire }

    public static func == (lhs: STUNMessage, rhs: STUNMessage) -> Bool {
        lhs.method == rhs.method && lhs.messageClass == rhs.messageClass && lhs.transactionID == rhs.transactionID
            && lhs.attributes == rhs.attributes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(messageClass)
        hasher.combine(transactionID)
        hasher.combine(attributes)
    }

    public var description: String {
        let list = attributes.map { "\($0.type)" }.joined(separator: ", ")
        return "STUN \(method) \(messageClass) tid=\(transactionID) [\(list)]"
    }
}

// MARK: - Attributes that count (RFC 8489 §14.5–§14.7)

extension STUNMessage {
    /// The attributes a receiver must act on: everything up to MESSAGE-INTEGRITY, then only
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT; after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT;
    /// nothing after FINGERPRINT. RFC 8489 §14.5: "agents MUST ignore all other attributes that
    /// follow MESSAGE-INTEGRITY" (§14.6 likewise for MESSAGE-INTEGRITY-SHA256).
    public var effectiveAttributes: [STUNAttribute] {
        var out = [STUNAttribute]()
        out.reserveCapacity(attributes.count)
        var gate = IntegrityGate()
        for a in attributes where gate.admit(a.type) { out.append(a) }
        return out
    }

    /// Types of attributes that ``effectiveAttributes`` drops because they follow an integrity
    /// attribute or FINGERPRINT. Non-empty means a sender (or a middlebox) appended data that is not
    /// covered by the MAC.
    public var ignoredAttributeTypes: [STUNAttributeType] {
        var gate = IntegrityGate()
        return attributes.compactMap { gate.admit($0.type) ? nil : $0.type }
    }

    /// Comprehension-required attributes (type < 0x8000) this module does not know. A server answers a
    /// request containing any with 420 and UNKNOWN-ATTRIBUTES listing them (RFC 8489 §6.3.1).
    public var unknownComprehensionRequiredAttributes: [STUNAttributeType] {
        var gate = IntegrityGate()
        var out = [STUNAttributeType]()
        for a in attributes where gate.admit(a.type) {
            if a.type.isComprehensionRequired, !a.type.isKnown { out.append(a.type) }
        }
        return out
    }

    /// The first effective attribute for which `extract` returns a value.
    @inlinable
    public func first<T>(_ extract: (STUNAttribute) -> T?) -> T? {
        var gate = IntegrityGate()
        for a in attributes where gate.admit(a.type) {
            if let v = extract(a) { return v }
        }
        return nil
    }

    /// Every effective attribute value `extract` accepts, in order.
    public func all<T>(_ extract: (STUNAttribute) -> T?) -> [T] {
        var gate = IntegrityGate()
        var out = [T]()
        for a in attributes where gate.admit(a.type) {
            if let v = extract(a) { out.append(v) }
        }
        return out
    }

    /// XOR-MAPPED-ADDRESS: the reflexive address the server saw.
    public var xorMappedAddress: STUNAddress? { first { if case .xorMappedAddress(let a) = $0 { a } else { nil } } }
    /// MAPPED-ADDRESS (not XOR-ed; compare with ``xorMappedAddress`` to detect ALGs rewriting payloads).
    public var mappedAddress: STUNAddress? { first { if case .mappedAddress(let a) = $0 { a } else { nil } } }
    /// XOR-MAPPED-ADDRESS if present, else MAPPED-ADDRESS (RFC 3489 servers).
    public var reflexiveAddress: STUNAddress? { xorMappedAddress ?? mappedAddress }
    /// All XOR-RELAYED-ADDRESS values (one per family in a dual allocation).
    public var xorRelayedAddresses: [STUNAddress] { all { if case .xorRelayedAddress(let a) = $0 { a } else { nil } } }
    /// The first XOR-RELAYED-ADDRESS.
    public var xorRelayedAddress: STUNAddress? { first { if case .xorRelayedAddress(let a) = $0 { a } else { nil } } }
    /// All XOR-PEER-ADDRESS values.
    public var xorPeerAddresses: [STUNAddress] { all { if case .xorPeerAddress(let a) = $0 { a } else { nil } } }
    /// ALTERNATE-SERVER.
    public var alternateServer: STUNAddress? { first { if case .alternateServer(let a) = $0 { a } else { nil } } }
    /// RESPONSE-ORIGIN (RFC 5780).
    public var responseOrigin: STUNAddress? { first { if case .responseOrigin(let a) = $0 { a } else { nil } } }
    /// OTHER-ADDRESS (RFC 5780); its absence means the server cannot run NAT behaviour tests.
    public var otherAddress: STUNAddress? { first { if case .otherAddress(let a) = $0 { a } else { nil } } }
    /// CHANGED-ADDRESS (RFC 3489): what classic servers (Debian's stund, many public ones) send instead of
    /// OTHER-ADDRESS; the same meaning for NAT behaviour tests.
    public var changedAddress: STUNAddress? { first { if case .changedAddress(let a) = $0 { a } else { nil } } }
    /// ERROR-CODE.
    public var errorCode: STUNErrorCode? { first { if case .errorCode(let e) = $0 { e } else { nil } } }
    /// USERNAME.
    public var username: String? { first { if case .username(let s) = $0 { s } else { nil } } }
    /// USERHASH.
    public var userhash: [UInt8]? { first { if case .userhash(let v) = $0 { v } else { nil } } }
    /// REALM.
    public var realm: String? { first { if case .realm(let s) = $0 { s } else { nil } } }
    /// NONCE.
    public var nonce: String? { first { if case .nonce(let s) = $0 { s } else { nil } } }
    /// SOFTWARE, without the NUL padding some servers put inside the value (stund sends "Vovida.org 0.97\0").
    public var software: String? {
        first { if case .software(let s) = $0 { String(s.prefix { $0 != "\0" }) } else { nil } }
    }
    /// ALTERNATE-DOMAIN.
    public var alternateDomain: String? { first { if case .alternateDomain(let s) = $0 { s } else { nil } } }
    /// PASSWORD-ALGORITHMS offered by a server.
    public var passwordAlgorithms: [STUNPasswordAlgorithm]? {
        first { if case .passwordAlgorithms(let v) = $0 { v } else { nil } }
    }
    /// PASSWORD-ALGORITHM chosen by a client.
    public var passwordAlgorithm: STUNPasswordAlgorithm? {
        first { if case .passwordAlgorithm(let v) = $0 { v } else { nil } }
    }
    /// UNKNOWN-ATTRIBUTES listed by a 420 response.
    public var unknownAttributes: [STUNAttributeType]? {
        first { if case .unknownAttributes(let v) = $0 { v } else { nil } }
    }
    /// PRIORITY (ICE).
    public var priority: UInt32? { first { if case .priority(let v) = $0 { v } else { nil } } }
    /// ICE-CONTROLLING tie-breaker.
    public var iceControlling: UInt64? { first { if case .iceControlling(let v) = $0 { v } else { nil } } }
    /// ICE-CONTROLLED tie-breaker.
    public var iceControlled: UInt64? { first { if case .iceControlled(let v) = $0 { v } else { nil } } }
    /// Whether USE-CANDIDATE is present.
    public var useCandidate: Bool { first { if case .useCandidate = $0 { true } else { nil } } ?? false }
    /// Whether DONT-FRAGMENT is present.
    public var dontFragment: Bool { first { if case .dontFragment = $0 { true } else { nil } } ?? false }
    /// LIFETIME in seconds.
    public var lifetime: UInt32? { first { if case .lifetime(let v) = $0 { v } else { nil } } }
    /// CHANNEL-NUMBER.
    public var channelNumber: UInt16? { first { if case .channelNumber(let v) = $0 { v } else { nil } } }
    /// DATA.
    public var data: [UInt8]? { first { if case .data(let v) = $0 { v } else { nil } } }
    /// REQUESTED-TRANSPORT protocol number.
    public var requestedTransport: UInt8? { first { if case .requestedTransport(let v) = $0 { v } else { nil } } }
    /// CHANGE-REQUEST flags.
    public var changeRequest: STUNChangeRequest? { first { if case .changeRequest(let v) = $0 { v } else { nil } } }
    /// RESPONSE-PORT.
    public var responsePort: UInt16? { first { if case .responsePort(let v) = $0 { v } else { nil } } }
    /// RESERVATION-TOKEN.
    public var reservationToken: UInt64? { first { if case .reservationToken(let v) = $0 { v } else { nil } } }
    /// ICMP.
    public var icmp: STUNICMP? { first { if case .icmp(let v) = $0 { v } else { nil } } }
    /// MESSAGE-INTEGRITY value as received.
    public var messageIntegrity: [UInt8]? { first { if case .messageIntegrity(let v) = $0 { v } else { nil } } }
    /// MESSAGE-INTEGRITY-SHA256 value as received.
    public var messageIntegritySHA256: [UInt8]? {
        first { if case .messageIntegritySHA256(let v) = $0 { v } else { nil } }
    }
    /// FINGERPRINT value as received.
    public var fingerprint: UInt32? { first { if case .fingerprint(let v) = $0 { v } else { nil } } }
}

/// The receive-side ordering rule of RFC 8489 §14.5–§14.7 as a tiny state machine.
@usableFromInline
struct IntegrityGate {
    @usableFromInline var phase: UInt8 = 0  // 0 open, 1 after MI, 2 after MI-SHA256, 3 after FINGERPRINT

    @usableFromInline init() {}

    @inlinable
    mutating func admit(_ type: STUNAttributeType) -> Bool {
        switch (phase, type.rawValue) {
        case (0, 0x0008), (0, 0x001C), (0, 0x8028), (1, 0x001C), (1, 0x8028), (2, 0x8028):
            phase = type.rawValue == 0x0008 ? 1 : (type.rawValue == 0x001C ? 2 : 3)
            return true
        case (0, _):
            return true
        default:
            return false
        }
    }
}

// MARK: - Building replies

extension STUNMessage {
    /// A response to this request: same method and transaction ID (RFC 8489 §6.3).
    /// - Parameters:
    ///   - messageClass: `.successResponse` (default) or `.errorResponse`.
    ///   - attributes: The response's attributes; integrity and fingerprint are added when encoding.
    public func response(
        _ messageClass: STUNMessageClass = .successResponse, attributes: [STUNAttribute] = []
    ) -> STUNMessage {
        STUNMessage(method: method, messageClass: messageClass, transactionID: transactionID, attributes: attributes)
    }

    /// An error response to this request carrying ERROR-CODE first, then `attributes`
    /// (e.g. UNKNOWN-ATTRIBUTES for 420, REALM and NONCE for 401/438).
    public func errorResponse(code: UInt16, reason: String? = nil, attributes: [STUNAttribute] = []) -> STUNMessage {
        response(.errorResponse, attributes: [.errorCode(STUNErrorCode(code: code, reason: reason))] + attributes)
    }
}
