import CallsWire

/// A STUN or TURN server named by URI (RFC 7064 `stun:`/`stuns:`, RFC 7065 `turn:`/`turns:`) or by
/// `host[:port]`.
public struct ServerURI: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable {
        case stun, stuns, turn, turns
        public var isSecure: Bool { self == .stuns || self == .turns }
        public var isTURN: Bool { self == .turn || self == .turns }
    }
    public let scheme: Scheme
    public let host: String
    public let port: UInt16
    /// The `?transport=` parameter of a TURN URI, if any.
    public let transport: ProbeTransportKind?

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(scheme.rawValue):\(h):\(port)" + (transport.map { "?transport=\($0.rawValue)" } ?? "")
    }

    /// The transport this URI implies: `turns:`/`stuns:` mean TLS, else the parameter, else UDP.
    public var impliedTransport: ProbeTransportKind {
        scheme.isSecure ? .tls : (transport ?? .udp)
    }

    /// Parses `text`; a bare `host[:port]` takes `defaultScheme`.
    /// - Throws: a message naming what is wrong and an example of the right form.
    public init(parsing text: String, defaultScheme: Scheme) throws(URIError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var scheme = defaultScheme
        if let colon = rest.firstIndex(of: ":"), let s = Scheme(rawValue: rest[..<colon].lowercased()) {
            scheme = s
            rest = rest[rest.index(after: colon)...]
            if rest.hasPrefix("//") { rest = rest.dropFirst(2) }  // tolerate stun://host
        } else if rest.contains("://") {
            throw URIError("\"\(text)\" has an unknown scheme; use stun:, stuns:, turn: or turns: (for example turn:turn.example.com:3478?transport=tcp)")
        }
        var transport: ProbeTransportKind?
        if let q = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: q)...]
            rest = rest[..<q]
            for pair in query.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, kv[0].lowercased() == "transport" else {
                    throw URIError("\"\(text)\": unknown parameter \"\(pair)\"; only ?transport=udp or ?transport=tcp is allowed")
                }
                guard let t = ProbeTransportKind(rawValue: kv[1].lowercased()), t != .tls else {
                    throw URIError("\"\(text)\": transport must be udp or tcp, not \"\(kv[1])\" (use turns: for TLS)")
                }
                transport = t
            }
        }
        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw URIError("\"\(text)\": an IPv6 address needs a closing ]")
            }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw URIError("\"\(text)\": unexpected \"\(after)\" after the address")
            }
        } else if rest.filter({ $0 == ":" }).count > 1 {
            host = String(rest)  // a bare IPv6 address without port
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
        }
        host = host.trimmingCharacters(in: .whitespaces)
        if host.isEmpty { throw URIError("\"\(text)\" names no host; for example stun.example.com:3478") }
        if host.contains(where: { $0 == "/" || $0 == "@" || $0 == " " }) {
            throw URIError("\"\(text)\": \"\(host)\" is not a host name or address")
        }
        var port: UInt16 = scheme.isSecure ? 5349 : 3478
        if let portText {
            guard let p = UInt16(portText), p > 0 else {
                throw URIError("\"\(text)\": port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = p
        }
        if !scheme.isTURN && transport != nil {
            throw URIError("\"\(text)\": ?transport= belongs to turn: URIs; use --transport for STUN")
        }
        self.scheme = scheme
        self.host = host
        self.port = port
        self.transport = transport
    }
}

public struct URIError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Set where Element == Character {
    static let whitespaces: Set<Character> = [" ", "\t", "\n", "\r"]
}
