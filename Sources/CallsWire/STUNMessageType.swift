/// A STUN method: the 12-bit "what" of a message, independent of its class (RFC 8489 §5).
///
/// A struct rather than an enum so that methods this module does not know (future extensions,
/// fuzzed input) still round-trip.
public struct STUNMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 12-bit method number (0x000–0xFFF).
    public let rawValue: UInt16

    /// Creates a method; bits above the low 12 are dropped because the header has no room for them.
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    /// Binding (RFC 8489 §18.2).
    public static let binding = STUNMethod(rawValue: 0x001)
    /// Allocate (RFC 8656 §17).
    public static let allocate = STUNMethod(rawValue: 0x003)
    /// Refresh (RFC 8656 §17).
    public static let refresh = STUNMethod(rawValue: 0x004)
    /// Send, indication only (RFC 8656 §17).
    public static let send = STUNMethod(rawValue: 0x006)
    /// Data, indication only (RFC 8656 §17).
    public static let data = STUNMethod(rawValue: 0x007)
    /// CreatePermission (RFC 8656 §17).
    public static let createPermission = STUNMethod(rawValue: 0x008)
    /// ChannelBind (RFC 8656 §17).
    public static let channelBind = STUNMethod(rawValue: 0x009)
    /// Connect (RFC 6062 §6.1).
    public static let connect = STUNMethod(rawValue: 0x00A)
    /// ConnectionBind (RFC 6062 §6.1).
    public static let connectionBind = STUNMethod(rawValue: 0x00B)
    /// ConnectionAttempt (RFC 6062 §6.1).
    public static let connectionAttempt = STUNMethod(rawValue: 0x00C)

    public var description: String {
        switch rawValue {
        case 0x001: "Binding"
        case 0x003: "Allocate"
        case 0x004: "Refresh"
        case 0x006: "Send"
        case 0x007: "Data"
        case 0x008: "CreatePermission"
        case 0x009: "ChannelBind"
        case 0x00A: "Connect"
        case 0x00B: "ConnectionBind"
        case 0x00C: "ConnectionAttempt"
        default: "Method(0x\(hex(rawValue, digits: 3)))"
        }
    }
}

/// The class of a STUN message (RFC 8489 §5): two bits, C1 and C0, spread through the type field.
public enum STUNMessageClass: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// C1C0 = 0b00.
    case request = 0
    /// C1C0 = 0b01.
    case indication = 1
    /// C1C0 = 0b10.
    case successResponse = 2
    /// C1C0 = 0b11.
    case errorResponse = 3

    public var description: String {
        switch self {
        case .request: "request"
        case .indication: "indication"
        case .successResponse: "success response"
        case .errorResponse: "error response"
        }
    }
}

/// Packing and unpacking of the 14-bit message type.
///
/// RFC 8489 §5, Figure 3: the type is `M11..M7 | C1 | M6..M4 | C0 | M3..M0` in its low 14 bits,
/// which is why Binding success is 0x0101 and not 0x0201.
enum STUNMessageType {
    static func encode(method: STUNMethod, messageClass: STUNMessageClass) -> UInt16 {
        let m = method.rawValue
        let c = UInt16(messageClass.rawValue)
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 0x1) << 4) | ((c & 0x2) << 7)
    }

    /// Splits a type field whose top two bits the caller has already checked to be zero.
    static func decode(_ type: UInt16) -> (STUNMethod, STUNMessageClass) {
        let m = (type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80)
        let c = ((type >> 4) & 0x1) | ((type >> 7) & 0x2)
        // `c` is two bits, so the initializer cannot fail; fall back defensively anyway.
        return (STUNMethod(rawValue: m), STUNMessageClass(rawValue: UInt8(c)) ?? .request)
    }
}

/// The 96-bit STUN transaction ID (RFC 8489 §5, §6).
///
/// Stored as two integers so the value is allocation-free, hashable and cheap to copy.
public struct STUNTransactionID: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0–7 of the ID, big-endian.
    public var high: UInt64
    /// Bytes 8–11 of the ID, big-endian.
    public var low: UInt32

    /// Creates an ID from its two big-endian halves.
    public init(high: UInt64, low: UInt32) {
        self.high = high
        self.low = low
    }

    /// Creates an ID from exactly 12 bytes; returns `nil` for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        var h: UInt64 = 0
        var l: UInt32 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = (h << 8) | UInt64(b) } else { l = (l << 8) | UInt32(b) }
        }
        self.init(high: h, low: l)
    }

    /// Creates an ID from 24 hexadecimal digits; returns `nil` if the string is anything else.
    public init?(hex: String) {
        guard let bytes = parseHex(hex), bytes.count == 12 else { return nil }
        self.init(bytes: bytes)
    }

    /// A new ID from the system's cryptographically secure generator.
    ///
    /// RFC 8489 §6: the ID "MUST be uniformly and randomly chosen ... and SHOULD be cryptographically
    /// random", because it is what stops off-path attackers from forging responses.
    public static func random() -> STUNTransactionID {
        var rng = SystemRandomNumberGenerator()
        return random(using: &rng)
    }

    /// A new ID from the given generator (use a seeded one in tests only).
    public static func random(using generator: inout some RandomNumberGenerator) -> STUNTransactionID {
        STUNTransactionID(high: generator.next(), low: UInt32(truncatingIfNeeded: generator.next() as UInt64))
    }

    /// The 12 bytes in wire order.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(12)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt32(shift))) }
        return out
    }

    /// 24 lowercase hex digits.
    public var description: String { hex(high, digits: 16) + hex(low, digits: 8) }
}

/// Lowercase, zero-padded hex of an unsigned integer.
func hex(_ value: some BinaryInteger, digits: Int) -> String {
    let s = String(value, radix: 16)
    return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
}

/// Parses a hex string (whitespace ignored); `nil` on odd length or a non-hex character.
func parseHex(_ text: String) -> [UInt8]? {
    var out = [UInt8]()
    var pending: UInt8? = nil
    for c in text.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c &- UInt8(ascii: "A") &+ 10
        case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"): continue
        default: return nil
        }
        if let p = pending {
            out.append((p << 4) | v)
            pending = nil
        } else {
            pending = v
        }
    }
    return pending == nil ? out : nil
}
