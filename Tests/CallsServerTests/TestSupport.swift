import CallsStore
import CallsTestSupport
import Foundation
import Logging
import Testing

@testable import CallsServer

#if canImport(Glibc)
import Glibc
#endif

/// A media backend that answers every offer with a fixed SDP and lets the test drive the session's events.
final class FakeBackend: MediaBackend, @unchecked Sendable {
    // @unchecked: mutable fields are accessed only with `lock` held.
    private let lock = NSLock()
    private var continuations: [String: AsyncStream<MediaBackendEvent>.Continuation] = [:]
    private var pending: [String: [MediaBackendEvent]] = [:]
    private var _closed: [String] = []
    private var _offers: [String] = []
    private var counter = 0
    var bound = true
    var refuseOffers: String?
    var metrics = MediaBackendMetrics(
        sessions: 2, packetsIn: 10, packetsOut: 9, bytesIn: 1000, bytesOut: 900, dtlsFailures: 1, iceFailures: 3,
        droppedPackets: 4)

    func start() async throws {}
    func shutdown() async {}

    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    private var _threads: [Bool] = []
    /// For each offer, mute and unmute: whether it was made on the API server's control thread.
    var threads: [Bool] { lock.withLock { _threads } }

    private func noteThread() {
        let onControl = ControlExecutor.shared.inControlThread
        lock.withLock { _threads.append(onControl) }
    }

    func createSession(offer: String, label: String) async throws -> (sessionID: String, answer: String) {
        noteThread()
        if let refuseOffers { throw Refused(description: refuseOffers) }
        let id: String = lock.withLock {
            counter += 1
            _offers.append(offer)
            return "media-\(counter)"
        }
        return (id, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake answer\r\n")
    }

    private var _calls: [String] = []
    /// `"<media id> mute|unmute|present|unpresent|renegotiate|create:<channel or echo>"`, in order.
    var calls: [String] { lock.withLock { _calls } }

    func createSession(offer: String, label: String, channel: String?, participant: String) async throws
        -> (sessionID: String, answer: String)
    {
        let r = try await createSession(offer: offer, label: label)
        lock.withLock { _calls.append("\(r.sessionID) create:\(channel ?? "echo")") }
        return r
    }

    func renegotiate(_ id: String, offer: String) async throws -> String {
        if let refuseOffers { throw Refused(description: refuseOffers) }
        lock.withLock { _calls.append("\(id) renegotiate") }
        return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=fake renegotiated answer\r\n"
    }

    func setAudioForwarding(_ id: String, _ on: Bool) async {
        noteThread()
        lock.withLock { _calls.append("\(id) \(on ? "unmute" : "mute")") }
    }

    func setPresenter(_ id: String, _ on: Bool) async {
        lock.withLock { _calls.append("\(id) \(on ? "present" : "unpresent")") }
    }

    func closeSession(_ id: String) async {
        let c = lock.withLock {
            _closed.append(id)
            return continuations.removeValue(forKey: id)
        }
        c?.finish()
    }

    func backendEvents(_ id: String) -> AsyncStream<MediaBackendEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: MediaBackendEvent.self)
        let queued: [MediaBackendEvent] = lock.withLock {
            continuations[id] = continuation
            return pending.removeValue(forKey: id) ?? []
        }
        for e in queued { continuation.yield(e) }
        return stream
    }

    /// Sends `event` to the session (queued until someone listens).
    func emit(_ event: MediaBackendEvent, to id: String) {
        let c: AsyncStream<MediaBackendEvent>.Continuation? = lock.withLock {
            if let c = continuations[id] { return c }
            pending[id, default: []].append(event)
            return nil
        }
        c?.yield(event)
    }

    var closed: [String] { lock.withLock { _closed } }
    var offers: [String] { lock.withLock { _offers } }
    var backendMetrics: MediaBackendMetrics { metrics }
    var udpPort: Int? { bound ? 8443 : nil }
    var tcpPort: Int? { bound ? 8443 : nil }
    var fingerprint: String { "sha-256 00:11" }
}

let testSecret = [UInt8](repeating: 7, count: 32)
let testChannel = try! ChannelID(validating: "4xp9fdt3pbdp7nrw7xjmrd8kkc")

func goodToken(ttl: Int64 = 600, role: JoinTokenClaims.Role = .user, user: String = "alice") -> String {
    JoinTokenSigner(secret: testSecret).sign(JoinTokenClaims(channel: testChannel, user: user, role: role, ttl: ttl))
}

/// An APIServer on 127.0.0.1 with a random port and a fake backend.
struct RunningServer {
    let server: APIServer
    let backend: FakeBackend
    let port: Int

    static func start(
        backend: FakeBackend = FakeBackend(), admission: JoinAdmission? = nil, maxMessageBytes: Int = 256 * 1024,
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
        configure: (inout APIServerConfiguration) -> Void = { _ in }
    ) async throws -> RunningServer {
        var config = APIServerConfiguration()
        config.listen = ListenAddress(host: "127.0.0.1", port: 0)
        config.version = VersionInfo(version: "9.8.7", buildDate: "2026-01-01", buildHash: "abc")
        config.indexHTML = "<!doctype html><title>test page</title>"
        config.maxMessageBytes = maxMessageBytes
        // A test client answers pings only while it reads; starved beside a busy machine it can be silent for longer
        // than three 15 s intervals, and the server would drop it (a flake seen beside two busy loops: "send: Broken
        // pipe" after 66 s). The keepalive tests set their own short interval.
        config.webSocketPingInterval = .seconds(600)
        // The same for a socket in no call: a test that sends many messages before joining (each answered only when
        // the test process gets the CPU) once took over 60 s on a busy CI machine and was closed with join_timeout.
        // The join-timeout test sets its own short limit.
        config.limits.joinTimeout = .seconds(600)
        configure(&config)
        let server = APIServer(
            configuration: config, backend: backend, signer: JoinTokenSigner(secret: testSecret), admission: admission,
            logger: logger)
        let bound = try await server.start()
        return RunningServer(server: server, backend: backend, port: bound.port)
    }
}

/// Runs blocking socket work on a thread of its own. Not on `DispatchQueue.global()`: on Linux that is the same
/// thread pool as Swift's global executor, so blocking reads there hold the threads every async test needs.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

struct SocketError: Error, CustomStringConvertible {
    let description: String
}

/// A blocking TCP connection to 127.0.0.1. Every read waits for data itself, under one generous deadline for the
/// connection's whole life; giving up says what it waited for and whether the process was starved meanwhile.
final class TestSocket: @unchecked Sendable {
    // @unchecked: used by one test at a time, from one thread at a time.
    let fd: Int32
    let port: Int
    let deadline: TestDeadline
    var pending: [UInt8] = []

    /// `source`: a local IPv4 address to connect from (another loopback address, like 127.0.0.2).
    init(port: Int, source: String? = nil, deadline: TestDeadline = TestDeadline()) throws {
        self.port = port
        self.deadline = deadline
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc != 0 { throw SocketError(description: "bind \(source): \(String(cString: strerror(errno)))") }
        }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr)
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { throw SocketError(description: "connect: \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw SocketError(description: "send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Waits for more bytes (until the deadline) and adds them to `pending`; false at EOF.
    func fill(waitingFor what: @autoclosure () -> String = "data") throws -> Bool {
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, deadline.remainingMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 { throw SocketError(description: "poll: \(String(cString: strerror(errno)))") }
            if ready == 0 { throw deadline.timeout(waitingFor: "\(what()) from the server on 127.0.0.1:\(port)") }
            break
        }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw SocketError(description: "recv: \(String(cString: strerror(errno)))") }
        if n == 0 { return false }
        pending += buf[0..<n]
        return true
    }

    func read(count: Int, waitingFor what: @autoclosure () -> String = "data") throws -> [UInt8] {
        while pending.count < count {
            guard try fill(waitingFor: "\(what()) (\(count) bytes, \(pending.count) so far)") else {
                throw SocketError(description: "EOF")
            }
        }
        let out = Array(pending[0..<count])
        pending.removeFirst(count)
        return out
    }

    func readUntilEOF(waitingFor what: @autoclosure () -> String = "the end of the response") throws -> [UInt8] {
        while try fill(waitingFor: what()) {}
        let out = pending
        pending = []
        return out
    }
}

struct HTTPResult {
    let status: Int
    let headers: [String: String]
    let body: String
}

func httpRequest(port: Int, _ path: String, method: String = "GET", extraHeaders: String = "") async throws -> HTTPResult {
    try await offPool {
        let s = try TestSocket(port: port)
        try s.send(Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(extraHeaders)\r\n".utf8))
        let raw = String(decoding: try s.readUntilEOF(waitingFor: "the response to \(method) \(path)"), as: UTF8.self)
        guard let split = raw.range(of: "\r\n\r\n") else { throw SocketError(description: "no header end in \(raw)") }
        let lines = raw[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return HTTPResult(status: status, headers: headers, body: String(raw[split.upperBound...]))
    }
}

/// A minimal WebSocket client (RFC 6455) over a blocking socket.
final class TestWebSocket: @unchecked Sendable {
    // @unchecked: used from one test at a time.
    let socket: TestSocket

    init(port: Int) async throws {
        socket = try await offPool { try Self.connect(port: port) }
    }

    /// Connects and upgrades on the calling thread (blocking: not for the cooperative pool).
    init(blockingPort port: Int, deadline: TestDeadline = TestDeadline()) throws {
        socket = try Self.connect(port: port, deadline: deadline)
    }

    private static func connect(port: Int, deadline: TestDeadline = TestDeadline()) throws -> TestSocket {
        let s = try TestSocket(port: port, deadline: deadline)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try s.send(
            Array(
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    .utf8))
        var header: [UInt8] = []
        while !header.suffix(4).elementsEqual([13, 10, 13, 10]) {
            header += try s.read(count: 1, waitingFor: "the WebSocket upgrade response")
        }
        let text = String(decoding: header, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 101") else { throw SocketError(description: "upgrade refused: \(text)") }
        return s
    }

    func sendFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) async throws {
        try await offPool { try self.sendFrameBlocking(opcode: opcode, payload, fin: fin) }
    }

    func sendFrameBlocking(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (8 * UInt64($0))) & 0xFF) }
        }
        let mask: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try socket.send(frame)
    }

    func send(_ text: String) async throws { try await sendFrame(opcode: 1, Array(text.utf8)) }

    /// The next frame: (opcode, payload).
    func receiveFrame(waitingFor what: String = "a WebSocket frame") async throws -> (UInt8, [UInt8]) {
        try await offPool { try self.receiveFrameBlocking(waitingFor: what) }
    }

    func receiveFrameBlocking(waitingFor what: String = "a WebSocket frame") throws -> (UInt8, [UInt8]) {
        let s = socket
        let h = try s.read(count: 2, waitingFor: what)
        var length = Int(h[1] & 0x7F)
        if length == 126 {
            let b = try s.read(count: 2, waitingFor: "a WebSocket frame length")
            length = Int(b[0]) << 8 | Int(b[1])
        } else if length == 127 {
            length = try s.read(count: 8, waitingFor: "a WebSocket frame length").reduce(0) { $0 << 8 | Int($1) }
        }
        return (h[0] & 0x0F, try s.read(count: length, waitingFor: "a WebSocket frame payload"))
    }

    /// Call events (`"type":"event"`) received while waiting for other messages, in order.
    private(set) var events: [[String: Any]] = []

    /// The next text message as a JSON object, skipping call events (kept in `events`).
    func receive() async throws -> [String: Any] {
        while true {
            let message = try await receiveAny()
            if message["type"] as? String == "event" {
                events.append(message)
                continue
            }
            return message
        }
    }

    /// The next event named `name`, from those already received or the next messages (other messages are dropped).
    /// Bounded by the connection's deadline.
    func event(_ name: String, user: String? = nil) async throws -> [String: Any] {
        func matches(_ m: [String: Any]) -> Bool {
            m["event"] as? String == name && (user == nil || m["user"] as? String == user)
        }
        if let i = events.firstIndex(where: matches) { return events.remove(at: i) }
        for _ in 0..<100 {
            let message = try await receiveAny(waitingFor: "the \(name) event\(user.map { " of \($0)" } ?? "")")
            if message["type"] as? String == "event" {
                if matches(message) { return message }
                events.append(message)
            }
        }
        throw SocketError(description: "no \(name) event among the next 100 messages")
    }

    /// The next text message as a JSON object (pings are answered on the way; bounded by the connection's deadline,
    /// which pings do not extend).
    func receiveAny(waitingFor what: String = "a signaling message") async throws -> [String: Any] {
        while true {
            if socket.deadline.expired { throw socket.deadline.timeout(waitingFor: what) }
            let (opcode, payload) = try await receiveFrame(waitingFor: what)
            if opcode == 1 {
                guard let obj = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
                    throw SocketError(description: "not a JSON object: \(String(decoding: payload, as: UTF8.self))")
                }
                return obj
            }
            if opcode == 8 { throw SocketError(description: "closed") }
            if opcode == 9 { try await sendFrame(opcode: 10, payload) }  // a live client answers pings
        }
    }

    func request(_ text: String) async throws -> [String: Any] {
        try await send(text)
        return try await receive()
    }
}
