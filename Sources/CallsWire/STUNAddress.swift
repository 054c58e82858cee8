/// An IP address and port as carried by STUN address attributes (RFC 8489 §14.1, §14.2).
///
/// Deliberately independent of NIO's `SocketAddress` so that CallsWire needs no sockets (and no
/// NIOPosix); converting is a one-liner at the socket layer via ``ipString`` and ``port``.
/// The address is stored in two integers, so the value never allocates.
public struct STUNAddress: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The address family as encoded in STUN (RFC 8489 §14.1: 0x01 IPv4, 0x02 IPv6).
    public enum Family: UInt8, Hashable, Sendable, CustomStringConvertible {
        /// IPv4, 32-bit address.
        case ipv4 = 0x01
        /// IPv6, 128-bit address.
        case ipv6 = 0x02

        public var description: String { self == .ipv4 ? "IPv4" : "IPv6" }
    }

    /// The address family.
    public let family: Family
    /// The transport port.
    public var port: UInt16
    /// For IPv6: bytes 0–7 of the address; for IPv4: zero.
    public let high: UInt64
    /// For IPv6: bytes 8–15; for IPv4: the address in the low 32 bits.
    public let low: UInt64

    /// Creates an IPv4 address from its 32-bit big-endian value (`0xC0000201` is 192.0.2.1).
    public init(ipv4: UInt32, port: UInt16) {
        self.family = .ipv4
        self.port = port
        self.high = 0
        self.low = UInt64(ipv4)
    }

    /// Creates an IPv6 address from its two big-endian 64-bit halves.
    public init(ipv6High: UInt64, low: UInt64, port: UInt16) {
        self.family = .ipv6
        self.port = port
        self.high = ipv6High
        self.low = low
    }

    /// Creates an address from raw address bytes: 4 for IPv4, 16 for IPv6.
    /// - Returns: `nil` if the byte count does not match `family`.
    public init?(family: Family, ipBytes: some Collection<UInt8>, port: UInt16) {
        switch (family, ipBytes.count) {
        case (.ipv4, 4):
            var v: UInt32 = 0
            for b in ipBytes { v = (v << 8) | UInt32(b) }
            self.init(ipv4: v, port: port)
        case (.ipv6, 16):
            var h: UInt64 = 0
            var l: UInt64 = 0
            for (i, b) in ipBytes.enumerated() {
                if i < 8 { h = (h << 8) | UInt64(b) } else { l = (l << 8) | UInt64(b) }
            }
            self.init(ipv6High: h, low: l, port: port)
        default:
            return nil
        }
    }

    /// Parses `"1.2.3.4:5"` or `"[2001:db8::1]:5"`. Zone identifiers (`%eth0`) are not accepted.
    public init?(_ description: String) {
        let utf8 = Array(description.utf8)
        if utf8.first == UInt8(ascii: "[") {
            guard let close = utf8.firstIndex(of: UInt8(ascii: "]")),
                close + 1 < utf8.count, utf8[close + 1] == UInt8(ascii: ":"),
                let port = parsePort(utf8[(close + 2)...]),
                let (h, l) = parseIPv6(utf8[1..<close])
            else { return nil }
            self.init(ipv6High: h, low: l, port: port)
        } else {
            guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")),
                let port = parsePort(utf8[(colon + 1)...]),
                let v4 = parseIPv4(utf8[..<colon])
            else { return nil }
            self.init(ipv4: v4, port: port)
        }
    }

    /// Parses a bare IP literal (`"192.0.2.1"`, `"::1"`, no brackets) and pairs it with `port`.
    public init?(ip: String, port: UInt16) {
        let utf8 = Array(ip.utf8)
        if let v4 = parseIPv4(utf8[...]) {
            self.init(ipv4: v4, port: port)
        } else if let (h, l) = parseIPv6(utf8[...]) {
            self.init(ipv6High: h, low: l, port: port)
        } else {
            return nil
        }
    }

    /// The IPv4 address as a 32-bit value, or `nil` for IPv6.
    public var ipv4: UInt32? { family == .ipv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// The raw address bytes in network order (4 or 16).
    public var ipBytes: [UInt8] {
        switch family {
        case .ipv4:
            let v = UInt32(truncatingIfNeeded: low)
            return [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8),
                    UInt8(truncatingIfNeeded: v)]
        case .ipv6:
            var out = [UInt8]()
            out.reserveCapacity(16)
            for word in [high, low] {
                for shift in stride(from: 56, through: 0, by: -8) {
                    out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
                }
            }
            return out
        }
    }

    /// The address without port: dotted quad, or RFC 5952 canonical IPv6 text.
    public var ipString: String {
        switch family {
        case .ipv4:
            return formatIPv4(UInt32(truncatingIfNeeded: low))
        case .ipv6:
            return formatIPv6(high: high, low: low)
        }
    }

    /// `1.2.3.4:5` or `[::1]:5`.
    public var description: String {
        family == .ipv4 ? "\(ipString):\(port)" : "[\(ipString)]:\(port)"
    }

    /// Loopback (127.0.0.0/8, ::1).
    public var isLoopback: Bool {
        switch family {
        case .ipv4: return (low >> 24) & 0xFF == 127
        case .ipv6: return high == 0 && low == 1
        }
    }

    /// Private-use space that is not reachable from the Internet: RFC 1918, RFC 6598 shared
    /// address space (100.64/10), link-local, and IPv6 unique-local (fc00::/7) and link-local (fe80::/10).
    /// A private XOR-RELAYED-ADDRESS from a TURN server usually means a missing `external-ip`.
    public var isPrivate: Bool {
        switch family {
        case .ipv4:
            let v = UInt32(truncatingIfNeeded: low)
            return v >> 24 == 10 || v >> 20 == 0xAC1 || v >> 16 == 0xC0A8 || v >> 22 == (100 << 2 | 1)
                || v >> 16 == 0xA9FE
        case .ipv6:
            return high >> 57 == 0x7E || high >> 54 == 0x3FA
        }
    }
}

// MARK: - Text helpers (no Foundation, no inet_pton: bounded loops over UTF-8 bytes)

private func parsePort(_ s: ArraySlice<UInt8>) -> UInt16? {
    guard !s.isEmpty, s.count <= 5 else { return nil }
    var v: UInt32 = 0
    for c in s {
        guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
        v = v * 10 + UInt32(c - UInt8(ascii: "0"))
    }
    return v <= 0xFFFF ? UInt16(v) : nil
}

/// Strict dotted quad: exactly four decimal parts 0–255, no leading zeros (they mean octal to some parsers).
private func parseIPv4(_ s: ArraySlice<UInt8>) -> UInt32? {
    var result: UInt32 = 0
    var parts = 0
    var value: UInt32 = 0
    var digits = 0
    var firstDigit: UInt8 = 0
    func finishPart() -> Bool {
        guard digits > 0, digits <= 3, value <= 255, !(digits > 1 && firstDigit == UInt8(ascii: "0")) else {
            return false
        }
        result = (result << 8) | value
        parts += 1
        value = 0
        digits = 0
        return true
    }
    for c in s {
        if c == UInt8(ascii: ".") {
            guard finishPart(), parts < 4 else { return nil }
        } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
            if digits == 0 { firstDigit = c }
            digits += 1
            guard digits <= 3 else { return nil }
            value = value * 10 + UInt32(c - UInt8(ascii: "0"))
        } else {
            return nil
        }
    }
    guard finishPart(), parts == 4 else { return nil }
    return result
}

/// RFC 4291 §2.2 text forms: full, `::`-compressed, and with a trailing dotted quad.
private func parseIPv6(_ s: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
    guard s.count >= 2, s.count <= 45 else { return nil }
    var groups = [UInt16]()
    groups.reserveCapacity(8)
    var compressAt: Int? = nil
    var i = s.startIndex
    if s[i] == UInt8(ascii: ":") {
        guard s[i + 1] == UInt8(ascii: ":") else { return nil }
        compressAt = 0
        i += 2
    }
    while i < s.endIndex {
        // Find the end of this group.
        var j = i
        while j < s.endIndex, s[j] != UInt8(ascii: ":") { j += 1 }
        let token = s[i..<j]
        if token.contains(UInt8(ascii: ".")) {
            // Embedded IPv4 must be the last token and occupies two groups.
            guard j == s.endIndex, let v4 = parseIPv4(token) else { return nil }
            groups.append(UInt16(v4 >> 16))
            groups.append(UInt16(truncatingIfNeeded: v4))
            i = j
            break
        }
        guard !token.isEmpty, token.count <= 4 else { return nil }
        var v: UInt16 = 0
        for c in token {
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = (v << 4) | UInt16(d)
        }
        groups.append(v)
        guard groups.count <= 8 else { return nil }
        i = j
        if i < s.endIndex {
            // Skip ":" and detect "::".
            i += 1
            if i < s.endIndex, s[i] == UInt8(ascii: ":") {
                guard compressAt == nil else { return nil }
                compressAt = groups.count
                i += 1
            } else if i == s.endIndex {
                return nil  // trailing single colon
            }
        }
    }
    if let at = compressAt {
        guard groups.count < 8 else { return nil }
        groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: at)
    }
    guard groups.count == 8 else { return nil }
    var h: UInt64 = 0
    var l: UInt64 = 0
    for k in 0..<4 { h = (h << 16) | UInt64(groups[k]) }
    for k in 4..<8 { l = (l << 16) | UInt64(groups[k]) }
    return (h, l)
}

private func formatIPv4(_ v: UInt32) -> String {
    "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
}

/// RFC 5952 §4: lowercase, no leading zeros, the longest run (first on ties) of two or more zero
/// groups becomes `::`; IPv4-mapped addresses (::ffff:0:0/96) keep the dotted quad (§5).
private func formatIPv6(high: UInt64, low: UInt64) -> String {
    if high == 0, low >> 32 == 0xFFFF {
        return "::ffff:" + formatIPv4(UInt32(truncatingIfNeeded: low))
    }
    var groups = [UInt16](repeating: 0, count: 8)
    for k in 0..<4 {
        groups[k] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * k))
        groups[k + 4] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * k))
    }
    var bestStart = -1
    var bestLength = 0
    var k = 0
    while k < 8 {
        if groups[k] == 0 {
            var e = k
            while e < 8, groups[e] == 0 { e += 1 }
            if e - k > bestLength {
                bestStart = k
                bestLength = e - k
            }
            k = e
        } else {
            k += 1
        }
    }
    if bestLength < 2 { bestStart = -1 }
    var out = ""
    k = 0
    while k < 8 {
        if k == bestStart {
            out += "::"
            k += bestLength
            continue
        }
        if !out.isEmpty, !out.hasSuffix(":") { out += ":" }
        out += String(groups[k], radix: 16)
        k += 1
    }
    return out
}
