import CallsWire
import Foundation

/// An `http://` or `https://` (or `ws://`, `wss://`) URL split into what a probe needs.
public struct ProbeURL: Sendable, Equatable, CustomStringConvertible {
    public let secure: Bool
    public let host: String
    public let port: UInt16
    /// Path and query, at least "/".
    public let path: String
    let websocket: Bool

    /// - Throws: ``URIError`` naming what is wrong, e.g. a missing scheme or a bad port.
    public init(parsing text: String) throws(URIError) {
        let lower = text.lowercased()
        let schemes: [(String, Bool, Bool, UInt16)] = [
            ("https://", true, false, 443), ("http://", false, false, 80), ("wss://", true, true, 443),
            ("ws://", false, true, 80),
        ]
        guard let (prefix, secure, ws, defaultPort) = schemes.first(where: { lower.hasPrefix($0.0) }) else {
            throw URIError("\"\(text)\" is not an http(s):// or ws(s):// URL; e.g. http://127.0.0.1:8045")
        }
        let rest = text.dropFirst(prefix.count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        var host = String(authority)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw URIError("\"\(text)\": unclosed [ in the host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = UInt16(after.dropFirst()), p > 0 else { throw URIError("\"\(text)\": bad port") }
                port = p
            } else if !after.isEmpty {
                throw URIError("\"\(text)\": unexpected text after the IPv6 address")
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = UInt16(host[host.index(after: colon)...]), p > 0 else {
                throw URIError("\"\(text)\": \"\(host[host.index(after: colon)...])\" is not a port (1-65535)")
            }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty, !host.contains("@") else { throw URIError("\"\(text)\" has no host") }
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
        websocket = ws
    }

    init(secure: Bool, host: String, port: UInt16, path: String, websocket: Bool) {
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
        self.websocket = websocket
    }

    /// The same server with another path.
    public func with(path: String) -> ProbeURL {
        ProbeURL(secure: secure, host: host, port: port, path: path, websocket: websocket)
    }

    /// The WebSocket URL of the same server (`ws://` or `wss://`).
    public func webSocket(path: String) -> ProbeURL {
        ProbeURL(secure: secure, host: host, port: port, path: path, websocket: true)
    }

    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = secure ? 443 : 80
        return port == defaultPort ? h : "\(h):\(port)"
    }

    public var description: String {
        let scheme = websocket ? (secure ? "wss" : "ws") : (secure ? "https" : "http")
        return "\(scheme)://\(hostHeader)\(path)"
    }
}

/// One HTTP response as a probe saw it.
public struct HTTPProbeResponse: Sendable {
    public let status: Int
    /// Header names in lower case.
    public let headers: [String: String]
    public let body: [UInt8]
    /// The TLS session's peer, for https.
    public let tls: TLSPeerInfo?
    public let elapsed: Duration

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The server's clock from the `Date` header (RFC 9110 IMF-fixdate).
    public var serverDate: Date? {
        guard let text = headers["date"] else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: text)
    }
}

/// Opens TCP (and TLS for https/wss) to a ``ProbeURL``.
enum ProbeConnection {
    static func open(_ url: ProbeURL, caFile: String?, until deadline: ContinuousClock.Instant) throws(ProbeNetworkError)
        -> (any ProbeStream, TLSPeerInfo?)
    {
        let addresses = try Resolver.resolve(host: url.host, port: url.port)
        var lastError = ProbeNetworkError(.resolve, "\(url.host) has no address")
        for address in addresses {
            do {
                let tcp = try TCPProbeStream(connectingTo: address, until: deadline)
                guard url.secure else { return (tcp, nil) }
                let tls = try TLSProbeStream(over: tcp, serverName: url.host, caFile: caFile, until: deadline)
                return (tls, tls.peer)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }
}

/// `GET` (or another method) with a deadline, for the doctor's API and site checks.
public enum HTTPProbe {
    /// - Throws: ``ProbeNetworkError`` when the server cannot be reached or answers no valid HTTP response in time.
    public static func request(
        _ url: ProbeURL, method: String = "GET", headers: [(String, String)] = [], caFile: String? = nil,
        timeout: Duration
    ) throws(ProbeNetworkError) -> HTTPProbeResponse {
        let start = ContinuousClock.now
        let deadline = start + timeout
        let (stream, tls) = try ProbeConnection.open(url, caFile: caFile, until: deadline)
        var request = "\(method) \(url.path) HTTP/1.1\r\nHost: \(url.hostHeader)\r\nConnection: close\r\n"
        request += "User-Agent: callsctl-doctor\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try stream.write(Array(request.utf8), until: deadline)
        var raw: [UInt8] = []
        var headerEnd: Int?
        var contentLength: Int?
        while true {
            if let end = headerEnd, let length = contentLength, raw.count - end >= length { break }
            let chunk: [UInt8]?
            do {
                chunk = try stream.read(until: deadline)
            } catch where error.kind == .closed {
                break
            }
            guard let chunk else {
                throw ProbeNetworkError(.timeout, "\(url): no complete HTTP response within \(timeout)")
            }
            raw += chunk
            if headerEnd == nil, let end = findHeaderEnd(raw) {
                headerEnd = end
                let head = String(decoding: raw[..<end], as: UTF8.self)
                contentLength = parseHeaders(head).1["content-length"].flatMap { Int($0) }
            }
            if raw.count > 4 << 20 { throw ProbeNetworkError(.other, "\(url): response larger than 4 MiB") }
        }
        guard let end = headerEnd ?? findHeaderEnd(raw) else {
            throw ProbeNetworkError(.other, "\(url) answered no HTTP response (\(raw.count) bytes)")
        }
        let (statusLine, headers) = parseHeaders(String(decoding: raw[..<end], as: UTF8.self))
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw ProbeNetworkError(.other, "\(url) answered no HTTP status line: \"\(statusLine.prefix(60))\"")
        }
        var body = Array(raw[end...])
        if let length = contentLength, body.count > length { body = Array(body.prefix(length)) }
        return HTTPProbeResponse(
            status: status, headers: headers, body: body, tls: tls, elapsed: ContinuousClock.now - start)
    }

    /// The index just past "\r\n\r\n".
    static func findHeaderEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    static func parseHeaders(_ head: String) -> (String, [String: String]) {
        let lines = head.components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (lines.first ?? "", headers)
    }
}

/// A WebSocket client (RFC 6455) for signaling probes: text messages, pings answered, every wait bounded.
public final class WebSocketProbeClient {
    private let stream: any ProbeStream
    private var pending: [UInt8] = []
    public let url: ProbeURL

    /// Connects and upgrades.
    /// - Throws: ``ProbeNetworkError``; a refused upgrade says what the server answered (a proxy that drops
    ///   `Upgrade` typically answers 200 or 400).
    public init(connecting url: ProbeURL, caFile: String? = nil, until deadline: ContinuousClock.Instant)
        throws(ProbeNetworkError)
    {
        self.url = url
        stream = try ProbeConnection.open(url, caFile: caFile, until: deadline).0
        var keyBytes = [UInt8](repeating: 0, count: 16)
        for i in keyBytes.indices { keyBytes[i] = UInt8.random(in: 0...255) }
        let key = Data(keyBytes).base64EncodedString()
        let request =
            "GET \(url.path) HTTP/1.1\r\nHost: \(url.hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nUser-Agent: callsctl-doctor\r\n\r\n"
        try stream.write(Array(request.utf8), until: deadline)
        while HTTPProbe.findHeaderEnd(pending) == nil {
            guard let chunk = try stream.read(until: deadline) else {
                throw ProbeNetworkError(.timeout, "\(url): no answer to the WebSocket upgrade")
            }
            pending += chunk
            if pending.count > 65536 { throw ProbeNetworkError(.other, "\(url): upgrade response too large") }
        }
        let end = HTTPProbe.findHeaderEnd(pending)!
        let (status, _) = HTTPProbe.parseHeaders(String(decoding: pending[..<end], as: UTF8.self))
        pending.removeFirst(end)
        guard status.split(separator: " ").dropFirst().first == "101" else {
            throw ProbeNetworkError(
                .other,
                "\(url): the WebSocket upgrade was refused (\"\(status)\"); a proxy in front must pass the Upgrade and Connection headers")
        }
    }

    /// Sends one text message.
    public func send(_ text: String, until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) {
        try sendFrame(opcode: 1, Array(text.utf8), until: deadline)
    }

    private func sendFrame(opcode: UInt8, _ payload: [UInt8], until deadline: ContinuousClock.Instant)
        throws(ProbeNetworkError)
    {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (8 * UInt64($0))) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try stream.write(frame, until: deadline)
    }

    private func take(_ count: Int, until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) -> [UInt8]? {
        while pending.count < count {
            guard let chunk = try stream.read(until: deadline) else { return nil }
            pending += chunk
        }
        let out = Array(pending[..<count])
        pending.removeFirst(count)
        return out
    }

    /// The next text message, or nil at the deadline; pings are answered on the way.
    /// - Throws: `.closed` when the server closes the WebSocket.
    public func receive(until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) -> String? {
        var message: [UInt8] = []
        while true {
            guard let head = try take(2, until: deadline) else { return nil }
            var length = Int(head[1] & 0x7F)
            if length == 126 {
                guard let b = try take(2, until: deadline) else { return nil }
                length = Int(b[0]) << 8 | Int(b[1])
            } else if length == 127 {
                guard let b = try take(8, until: deadline) else { return nil }
                length = b.reduce(0) { $0 << 8 | Int($1) }
            }
            guard length <= 4 << 20 else { throw ProbeNetworkError(.other, "\(url): frame of \(length) bytes") }
            guard let payload = try take(length, until: deadline) else { return nil }
            let opcode = head[0] & 0x0F
            switch opcode {
            case 0, 1:
                message += payload
                if head[0] & 0x80 != 0 { return String(decoding: message, as: UTF8.self) }
            case 8:
                throw ProbeNetworkError(.closed, "\(url) closed the WebSocket")
            case 9:
                try sendFrame(opcode: 10, payload, until: deadline)
            default:
                continue
            }
        }
    }

    /// Sends a close frame (best effort).
    public func close() {
        try? sendFrame(opcode: 8, [0x03, 0xE8], until: .now + .milliseconds(200))
    }
}
