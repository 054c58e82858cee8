/// An ICE candidate line (RFC 8839 §5.1, RFC 6544 §4.5 for `tcptype`), the value of `a=candidate:`.
///
/// `foundation component transport priority address port typ type [raddr a] [rport p] [tcptype t] *(name value)`
public struct SDPCandidate: Hashable, Sendable, CustomStringConvertible {
    public enum Transport: String, Hashable, Sendable {
        case udp
        case tcp
    }

    public var foundation: String
    public var component: Int
    public var transport: Transport
    public var priority: UInt32
    public var address: String
    public var port: Int
    /// `host`, `srflx`, `prflx`, `relay`.
    public var type: String
    /// RFC 6544: `active`, `passive` or `so` (TCP only).
    public var tcpType: String?

    public init(
        foundation: String, component: Int = 1, transport: Transport, priority: UInt32, address: String, port: Int,
        type: String = "host", tcpType: String? = nil
    ) {
        self.foundation = foundation
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = address
        self.port = port
        self.type = type
        self.tcpType = tcpType
    }

    /// Parses the value of an `a=candidate:` attribute (with or without a leading `candidate:`). Returns nil for a
    /// line that does not follow the grammar or names a transport other than UDP/TCP.
    public init?(sdp value: String) {
        var text = Substring(value)
        if text.hasPrefix("candidate:") { text = text.dropFirst("candidate:".count) }
        let f = text.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 8, f[6] == "typ", let component = Int(f[1]), let priority = UInt32(f[3]),
            let port = Int(f[5]), (0...65535).contains(port),
            let transport = Transport(rawValue: f[2].lowercased())
        else { return nil }
        self.foundation = String(f[0])
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = String(f[4])
        self.port = port
        self.type = String(f[7])
        self.tcpType = nil
        var i = 8
        while i + 1 < f.count {
            if f[i] == "tcptype" { tcpType = String(f[i + 1]) }
            i += 2
        }
    }

    /// The text after `a=candidate:`, e.g. `1 1 udp 2130706431 192.0.2.1 8443 typ host`.
    public var sdpValue: String {
        var s = "\(foundation) \(component) \(transport.rawValue) \(priority) \(address) \(port) typ \(type)"
        if let tcpType { s += " tcptype \(tcpType)" }
        return s
    }

    public var description: String { "candidate:" + sdpValue }

    /// RFC 8445 §5.1.2.1: priority = 2^24 × type preference + 2^8 × local preference + (256 − component).
    public static func priority(typePreference: UInt32, localPreference: UInt32, component: Int = 1) -> UInt32 {
        (typePreference << 24) | ((localPreference & 0xFFFF) << 8) | UInt32(256 - max(1, min(component, 256)))
    }
}
