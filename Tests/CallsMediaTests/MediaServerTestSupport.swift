import CallsMedia
import CallsTestSupport
import CallsWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

/// Helpers for MediaServer tests: real sockets on 127.0.0.1, port 0, every wait bounded.
enum MediaTest {
    static let logger: Logger = {
        var l = Logger(label: "callsctl.media.test")
        l.logLevel = ProcessInfo.processInfo.environment["MEDIA_TEST_LOG"] != nil ? .trace : .critical
        return l
    }()

    /// A started server on ephemeral loopback ports, advertising 127.0.0.1.
    static func server(
        udpCandidates: Bool = true, tcpCandidates: Bool = true, logger: Logger = MediaTest.logger,
        configure: (inout MediaServerConfiguration) -> Void = { _ in }
    ) async throws -> MediaServer {
        var c = MediaServerConfiguration()
        c.udpListen = "127.0.0.1:0"
        c.tcpListen = "127.0.0.1:0"
        c.advertisedAddresses = ["127.0.0.1"]
        c.offerUDPCandidates = udpCandidates
        c.offerTCPCandidates = tcpCandidates
        configure(&c)
        let server = try MediaServer(configuration: c, logger: logger)
        try await server.start()
        return server
    }

    /// The server SSRC announced in an answer's audio section.
    static func answerSSRC(_ answer: String) -> UInt32? {
        for line in answer.split(whereSeparator: \.isNewline) where line.hasPrefix("a=ssrc:") {
            if let n = line.dropFirst(7).split(separator: " ").first, let v = UInt32(n) { return v }
        }
        return nil
    }

    /// `a=ice-ufrag` of an SDP.
    static func attribute(_ name: String, in sdp: String) -> String? {
        for line in sdp.split(whereSeparator: \.isNewline) where line.hasPrefix("a=\(name):") {
            return String(line.dropFirst(name.count + 3))
        }
        return nil
    }

    /// What an echo round trip sent and got back. `shortfall` is nil when every packet came back; otherwise it
    /// says how long the wait was and whether the process was starved meanwhile (for failure messages).
    struct EchoResult {
        let sent: [[UInt8]]
        let received: [ReceivedRTPPacket]
        let serverSSRC: UInt32?
        let connection: MediaClientConnection
        let shortfall: String?

        /// "received N of M echoed packets", with the wait's report when some are missing.
        var summary: String {
            "received \(received.count) of \(sent.count) echoed packets" + (shortfall.map { "; \($0)" } ?? "")
        }
    }

    /// Connects a client over `transport`, sends `count` packets 20 ms apart, and returns what came back: it stops
    /// waiting once all came back, or `timeout` after the last send (generous: a starved suite delays them).
    static func echoRoundTrip(
        server: MediaServer, transport: MediaClientConfiguration.Transport, count: Int = 50,
        timeout: Duration = .seconds(15)
    ) async throws -> EchoResult {
        var config = MediaClientConfiguration()
        config.transport = transport
        let client = try MediaClient(configuration: config, logger: logger)
        let (id, answer) = try await server.createSession(offer: client.offer, label: "test-\(transport)")
        let connection = try await client.connect(answer: answer)
        let payloads = (0..<count).map { i in Array("echo-\(i)-".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: 80) }
        let collector = Task { () -> [ReceivedRTPPacket] in
            var got: [ReceivedRTPPacket] = []
            for await p in client.receivedAudio {
                got.append(p)
                if got.count >= count { break }
            }
            return got
        }
        for (i, p) in payloads.enumerated() {
            client.sendAudio(payload: p, timestamp: UInt32(i * 960), marker: i == 0)
            try await Task.sleep(for: .milliseconds(20))
        }
        let waiting = LoadSnapshot.now()
        let received = await withDeadline(timeout) { await collector.value }
        collector.cancel()
        await client.close()
        await server.closeSession(id)
        let shortfall = received == nil
            ? WaitTimeout(waitingFor: "\(count) echoed packets", since: waiting).description : nil
        return EchoResult(
            sent: payloads, received: received ?? [], serverSSRC: answerSSRC(answer), connection: connection,
            shortfall: shortfall)
    }

    /// Runs `body`, returning nil if it does not finish within `timeout` (the body is cancelled).
    static func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Runs `body` for a result that should come; a timeout is a recorded failure naming `what` and saying whether
    /// the process was starved meanwhile. Returns nil then.
    static func expectWithin<T: Sendable>(
        _ what: String, _ timeout: Duration = TestDeadline.defaultBound,
        sourceLocation: SourceLocation = #_sourceLocation, _ body: @escaping @Sendable () async -> T
    ) async -> T? {
        let start = LoadSnapshot.now()
        guard let value = await withDeadline(timeout, body) else {
            Issue.record("\(WaitTimeout(waitingFor: what, since: start))", sourceLocation: sourceLocation)
            return nil
        }
        return value
    }

    /// Waits for the first event matching `predicate`, at most `timeout` (nil then: for events that must not come).
    static func waitForEvent(
        _ server: MediaServer, session id: String, timeout: Duration, where predicate: @escaping @Sendable (MediaSessionEvent) -> Bool
    ) async -> MediaSessionEvent? {
        let stream = server.sessionEvents(id)
        return await withDeadline(timeout) {
            for await e in stream where predicate(e) { return e }
            return nil
        } ?? nil
    }
}

/// A bare UDP socket for sending hand-made STUN and garbage.
final class RawUDPPeer: Sendable {
    let channel: any Channel
    let inbound: AsyncStream<AddressedEnvelope<ByteBuffer>>

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let continuation: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation
        init(_ c: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation) { continuation = c }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            continuation.yield(Self.unwrapInboundIn(data))
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }

    init() async throws {
        let (stream, continuation) = AsyncStream.makeStream(
            of: AddressedEnvelope<ByteBuffer>.self, bufferingPolicy: .bufferingNewest(4096))
        inbound = stream
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65536))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Handler(continuation)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var localPort: Int { channel.localAddress?.port ?? 0 }

    func send(_ bytes: [UInt8], toPort port: Int) async throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    /// Datagrams received within `window` (at most `limit`).
    func collect(for window: Duration, limit: Int = 10_000) async -> [ByteBuffer] {
        let stream = inbound
        let box = TestLockedBox([ByteBuffer]())
        _ = await MediaTest.withDeadline(window) {
            for await e in stream {
                let n = box.withLock { b -> Int in
                    b.append(e.data)
                    return b.count
                }
                if n >= limit { return }
            }
        }
        return box.withLock { $0 }
    }

    func close() async {
        try? await channel.close()
    }
}

/// A tiny lock box for test collectors.
final class TestLockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ v: Value) { value = v }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
