import CallsWire
import Logging
import NIOCore
import NIOPosix

/// The WebRTC media endpoint of `callsctl serve`: one UDP port and one ICE-TCP port, ICE-lite, DTLS server,
/// SRTP, and (for now) an echo router.
///
/// ```swift
/// let server = try MediaServer(configuration: config, logger: logger)
/// try await server.start()
/// let (id, answer) = try await server.createSession(offer: browserOffer, label: "user-1")
/// for await event in server.sessionEvents(id) { ... }
/// ```
public final class MediaServer: Sendable {
    private struct ListenState {
        var udpChannel: (any Channel)?
        var tcpChannel: (any Channel)?
        var udpPort: Int?
        var tcpPort: Int?
        /// The media UDP socket (owned by its NIO channel; nil once closed).
        var udpDescriptor: CInt?
        var running = false
        var stopped = false
    }

    public let configuration: MediaServerConfiguration
    private let logger: Logger
    private let identity: DTLSIdentity
    private let core: MediaCore
    private let state = Locked(ListenState())
    /// The data plane's own event-loop thread when it runs at real-time priority (else a thread of NIO's shared group).
    private let ownGroup: MultiThreadedEventLoopGroup?
    /// Whether the media threads got the real-time priority asked for (nil when none was asked, or before `start()`).
    private let realtime = Locked<Bool?>(nil)

    /// Creates the server and its DTLS identity (a fresh P-256 key and self-signed certificate). Nothing is bound
    /// until `start()`.
    /// - Throws: `MediaError` for an invalid configuration or when the identity cannot be generated.
    public init(configuration: MediaServerConfiguration, logger: Logger) throws {
        try configuration.validate()
        guard MediaLibraries.initializeSRTP() else {
            throw MediaError(.internalError, "libsrtp2 failed to initialise")
        }
        self.configuration = configuration
        self.logger = logger
        self.identity = try DTLSIdentity(commonName: "callsctl")
        let context = try DTLSContext(identity: identity)
        // A real-time thread must not run other work of the process: give the data plane a thread of its own.
        ownGroup = configuration.realtimePriority > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        self.core = MediaCore(
            configuration: configuration, logger: logger, dtlsContext: context,
            loop: ownGroup?.next() ?? MultiThreadedEventLoopGroup.singleton.next())
    }

    /// The UDP port actually bound (after `start()`).
    public var udpPort: Int? { state.withLock { $0.udpPort } }
    /// The TCP port actually bound (after `start()`), nil without ICE-TCP.
    public var tcpPort: Int? { state.withLock { $0.tcpPort } }
    /// The DTLS certificate fingerprint, `sha-256 AB:CD:...`.
    public var fingerprint: String { identity.fingerprint.sdpValue }
    /// The candidates put in answers (valid after `start()`).
    public var candidates: [String] {
        get async {
            (try? await core.loop.submit { [core] in core.candidates.map { "candidate:" + $0.sdpValue } }.get()) ?? []
        }
    }

    /// Binds the UDP socket and the TCP listener.
    /// - Throws: `MediaError` (`.bindFailed`) naming the address that could not be bound.
    public func start() async throws {
        let claimed = state.withLock { s -> Bool in
            guard !s.running, !s.stopped else { return false }
            s.running = true
            return true
        }
        guard claimed else { throw MediaError(.notRunning, "the media server was already started or shut down") }
        do {
            let udp = try ListenAddress(configuration.udpListen)
            let (udpChannel, udpDescriptor) = try await bindUDP(udp)
            var tcpChannel: (any Channel)?
            var tcpListen: ListenAddress?
            if let text = configuration.tcpListen {
                let tcp = try ListenAddress(text)
                tcpListen = tcp
                do {
                    tcpChannel = try await bindTCP(tcp)
                } catch {
                    try? await udpChannel.close()
                    throw error
                }
            }
            let udpPort = udpChannel.localAddress?.port
            let tcpPort = tcpChannel?.localAddress?.port
            let candidates = try makeCandidates(
                udp: udp, udpPort: udpPort ?? udp.port, tcp: tcpListen, tcpPort: tcpPort)
            let realtimeProblem = try await core.loop.submit { [core] () -> String? in
                let priority = core.configuration.realtimePriority
                var problem = priority > 0 ? RealtimeScheduling.applyToCurrentThread(priority: priority) : nil
                core.udpChannel = udpChannel
                core.udpSender = UDPBatchSender(descriptor: udpDescriptor)
                if core.configuration.fanoutThreads > 0, core.configuration.batchUDPSends {
                    let pool = FanoutPool(
                        helpers: core.configuration.fanoutThreads, descriptor: udpDescriptor,
                        tuning: core.configuration.fanoutTuning, realtimePriority: problem == nil ? priority : 0)
                    core.fanoutPool = pool
                    if problem == nil, let helperProblem = pool.realtimeProblem { problem = helperProblem }
                }
                // NIO closes the descriptor with the channel: stop batching on it first.
                udpChannel.closeFuture.hop(to: core.loop).whenComplete { _ in
                    core.udpSender = nil
                    core.fanoutPool?.stop()
                    core.fanoutPool = nil
                }
                core.candidates = candidates
                core.startSweeping()
                return problem
            }.get()
            if configuration.realtimePriority > 0 {
                realtime.withLock { $0 = realtimeProblem == nil }
                if let realtimeProblem {
                    logger.warning("\(realtimeProblem)")
                } else {
                    logger.info(
                        "media threads run with real-time scheduling",
                        metadata: ["policy": "SCHED_RR", "priority": "\(configuration.realtimePriority)"])
                }
            }
            state.withLock {
                $0.udpChannel = udpChannel
                $0.udpDescriptor = udpDescriptor
                $0.tcpChannel = tcpChannel
                $0.udpPort = udpPort
                $0.tcpPort = tcpPort
            }
            let granted = UDPBatchSender.receiveBufferBytes(udpDescriptor)
            if granted < Int(UDPBatchSender.requestedReceiveBuffer) {
                logger.warning(
                    "the media UDP socket got a smaller receive buffer than asked; a burst of junk can then push call packets out",
                    metadata: [
                        "granted": "\(granted)", "asked": "\(UDPBatchSender.requestedReceiveBuffer)",
                        "fix": "sysctl -w net.core.rmem_max=33554432 (callsctl config generate --target systemd writes a drop-in), or give serve CAP_NET_ADMIN",
                    ])
            }
            logger.info(
                "media server listening",
                metadata: [
                    "udp.port": "\(udpPort.map(String.init) ?? "-")", "tcp.port": "\(tcpPort.map(String.init) ?? "-")",
                    "ice.candidates": "\(candidates.map(\.sdpValue))",
                ])
        } catch {
            state.withLock { $0.running = false }
            throw error
        }
    }

    /// Binds the media UDP socket and returns its channel and descriptor. The socket is created here and handed to NIO
    /// (`withBoundSocket`) so that the core can also send batches on it with `sendmmsg` (see `UDPBatchSender`).
    private func bindUDP(_ address: ListenAddress) async throws -> (any Channel, CInt) {
        // Vector reads of 16 datagrams: the receive allocator must hold 16 × 2048 bytes, or NIO slices it into
        // smaller pieces and truncates datagrams (media-path.md §5).
        let vector = 16
        let core = self.core
        do {
            let descriptor = try UDPBatchSender.makeBoundSocket(host: address.host, port: address.port)
            let channel = try await DatagramBootstrap(group: core.loop)
                .channelOption(.datagramVectorReadMessageCount, value: vector)
                // Up to 64 × 16 datagrams per wake-up: a flood is read out of the socket in big bites, not a few per turn.
            .channelOption(.maxMessagesPerRead, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: vector * 2048))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPMediaHandler(core: core))
                    }
                }
                .withBoundSocket(descriptor).get()
            return (channel, descriptor)
        } catch {
            throw MediaError(.bindFailed, "cannot bind the media UDP socket to \(address): \(error)")
        }
    }

    private func bindTCP(_ address: ListenAddress) async throws -> any Channel {
        let core = self.core
        let maximumFrame = configuration.maximumTCPFrameSize
        do {
            return try await ServerBootstrap(group: core.loop, childGroup: core.loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            TCPMediaHandler(core: core, maximumFrameSize: maximumFrame))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            throw MediaError(.bindFailed, "cannot bind the media ICE-TCP listener to \(address): \(error)")
        }
    }

    private func makeCandidates(udp: ListenAddress, udpPort: Int, tcp: ListenAddress?, tcpPort: Int?) throws
        -> [SDPCandidate]
    {
        var addresses = configuration.advertisedAddresses
        if addresses.isEmpty {
            if !udp.isWildcard {
                addresses = [udp.host]
            } else {
                addresses = Self.localAddresses(ipv6: udp.host == "::")
            }
        }
        var out: [SDPCandidate] = []
        for (i, address) in addresses.enumerated() {
            if configuration.offerUDPCandidates {
                out.append(
                    SDPCandidate(
                        foundation: "\(i + 1)", transport: .udp,
                        priority: SDPCandidate.priority(typePreference: 126, localPreference: UInt32(65535 - i)),
                        address: address, port: udpPort))
            }
        }
        if configuration.offerTCPCandidates, let tcpPort {
            for (i, address) in addresses.enumerated() {
                // RFC 6544 §4.2: local preference = 2^13 × direction preference (passive host: 4... here 2, below
                // UDP) + other preference; TCP stays below every UDP candidate so clients try UDP first.
                out.append(
                    SDPCandidate(
                        foundation: "\(i + 101)", transport: .tcp,
                        priority: SDPCandidate.priority(typePreference: 126, localPreference: UInt32((2 << 13) | (8191 - i))),
                        address: address, port: tcpPort, tcpType: "passive"))
            }
        }
        _ = tcp
        return out
    }

    /// Non-loopback interface addresses (IPv4 first), or 127.0.0.1 when there are none.
    static func localAddresses(ipv6: Bool) -> [String] {
        let devices = (try? System.enumerateDevices()) ?? []
        var v4: [String] = []
        var v6: [String] = []
        for d in devices {
            guard let a = d.address, let ip = a.ipAddress else { continue }
            switch a {
            case .v4:
                if !ip.hasPrefix("127."), !v4.contains(ip) { v4.append(ip) }
            case .v6:
                if ip != "::1", !ip.lowercased().hasPrefix("fe80"), !v6.contains(ip) { v6.append(ip) }
            default:
                break
            }
        }
        let all = ipv6 ? v4 + v6 : v4
        return all.isEmpty ? ["127.0.0.1"] : all
    }

    /// Closes every session and both listeners. Idempotent.
    public func shutdown() async {
        let channels: [any Channel] = state.withLock { s in
            s.stopped = true
            defer {
                s.udpChannel = nil
                s.udpDescriptor = nil
                s.tcpChannel = nil
            }
            return [s.tcpChannel, s.udpChannel].compactMap { $0 }
        }
        try? await core.loop.submit { [core] in core.shutdown() }.get()
        for c in channels { try? await c.close() }
        try? await core.loop.submit { [core] in core.udpChannel = nil }.get()
        try? await ownGroup?.shutdownGracefully()
    }

    /// Creates a session from the client's SDP offer and returns the answer.
    ///
    /// An `.echo` session answers Opus sendrecv and sends the client's audio back. A `.call(key)` session joins the
    /// call `key`: its microphone (and, as presenter, its screen) goes to the others, and its receive-only
    /// transceivers carry theirs (see `SFUAnswer`). When the tracks it should receive change, its event stream reports
    /// `.renegotiationNeeded`; answer its next offer with ``renegotiate(_:offer:)``.
    /// - Parameters:
    ///   - offer: the client's offer (Unified Plan, BUNDLE, rtcp-mux, Opus).
    ///   - label: a name for logs (participant or user id).
    ///   - route: echo test or call.
    ///   - participant: the id other participants see in `a=msid` (default: `label`).
    /// - Throws: `MediaError` `.badOffer` with a user-facing message saying what the offer lacks; `.notRunning`.
    public func createSession(offer: String, label: String, route: SessionRoute = .echo, participant: String? = nil)
        async throws -> (sessionID: String, answer: String)
    {
        guard state.withLock({ $0.running && !$0.stopped }) else {
            throw MediaError(.notRunning, "the media server is not running")
        }
        let parsed = try Self.parseOffer(offer)
        guard let fingerprint = parsed.fingerprints.lazy.compactMap({ DTLSFingerprint(sdp: $0.sdpValue) }).first else {
            let offered = parsed.fingerprints.map(\.algorithm).joined(separator: ", ")
            throw MediaError(
                .badOffer, "the offer's a=fingerprint uses no supported hash (sha-256, sha-384, sha-512); offered: \(offered)")
        }
        let new = MediaCore.NewSession(
            id: MediaRandom.hex(16), label: label, localPassword: MediaRandom.iceString(24),
            remoteUfrag: parsed.iceUfrag, remoteFingerprint: fingerprint, offer: parsed, audioSSRC: MediaRandom.ssrc(),
            cname: MediaRandom.alphanumeric(12), route: route, participant: participant ?? label)
        let answer = try await core.loop.submit { [core] () throws -> String in
            try core.addSession(new)
        }.get()
        return (new.id, answer)
    }

    /// Answers a call participant's new offer (after `.renegotiationNeeded`, or when it starts or stops sharing its
    /// screen) on the same ICE/DTLS transport.
    /// - Throws: `MediaError` `.badOffer` (malformed, ICE restart, other fingerprint, echo session), `.unknownSession`.
    public func renegotiate(_ sessionID: String, offer: String) async throws -> String {
        let parsed = try Self.parseOffer(offer)
        return try await core.loop.submit { [core] () throws -> String in
            try core.renegotiate(id: sessionID, offer: parsed)
        }.get()
    }

    /// Mutes (`false`) or unmutes (`true`) a participant: while muted the server drops its audio.
    public func setAudioForwarding(_ sessionID: String, _ on: Bool) async {
        try? await core.loop.submit { [core] in core.setAudioForwarding(id: sessionID, on) }.get()
    }

    /// Gives (`true`) or takes the presenter slot. With it, the participant's next offer may publish a screen (VP8),
    /// which then goes to everyone else in the call; taking it stops forwarding the screen at once.
    public func setPresenter(_ sessionID: String, _ on: Bool) async {
        try? await core.loop.submit { [core] in core.setMayPublishVideo(id: sessionID, on) }.get()
    }

    private static func parseOffer(_ offer: String) throws(MediaError) -> WebRTCOffer {
        do {
            return try WebRTCOffer(sdp: offer)
        } catch {
            throw MediaError(.badOffer, error.message)
        }
    }

    /// Closes a session (sends DTLS close_notify); `.closed` is reported to its event streams. Unknown ids are ignored.
    public func closeSession(_ id: String) async {
        try? await core.loop.submit { [core] in core.closeSession(id: id, reason: "closed by the server") }.get()
    }

    /// The session's events, starting with those that already happened. Finishes after `.closed`; for an unknown
    /// (or already closed) session the stream finishes at once.
    public func sessionEvents(_ id: String) -> AsyncStream<MediaSessionEvent> {
        guard let hub = core.hubs.withLock({ $0[id] }) else { return SessionEventHub.finishedStream() }
        return hub.subscribe()
    }

    /// A snapshot of the counters (at most one event-loop tick old). `handshakeSeconds` holds raw samples.
    public var metrics: MediaMetrics {
        var m = core.metricsSnapshot.withLock { $0 }
        core.latencySnapshot.withLock { $0 }.write(into: &m)
        if let fd = state.withLock({ $0.udpDescriptor }) {
            m.udpReceiveBufferBytes = UDPBatchSender.receiveBufferBytes(fd)
            m.udpReceiveDrops = UDPBatchSender.kernelReceiveDrops(fd) ?? 0
        }
        return m
    }

    /// Runs `body` on the server's data-plane event-loop thread and returns its result. For benchmarks and
    /// diagnostics (e.g. reading that thread's CPU time with `getrusage(RUSAGE_THREAD)`); `body` must be short and
    /// must not block.
    public func runOnDataPlaneThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await core.loop.submit(body).get()
    }

    /// Whether the media threads run at the real-time priority asked for (`realtimePriority`); nil when none was asked
    /// or before `start()`.
    public var realtimeApplied: Bool? { realtime.withLock { $0 } }

    /// The data plane thread's scheduling policy and priority (`SCHED_OTHER` is 0, `SCHED_RR` 2).
    public func dataPlaneScheduling() async throws -> (policy: Int32, priority: Int32) {
        try await core.loop.submit { RealtimeScheduling.currentThread() }.get()
    }

    /// The fan-out helper threads (`fanoutThreads`): how many run, the CPU seconds they used so far, and the chunks
    /// of fan-outs they sent (the rest went out from the media thread).
    public func fanoutHelpers() async throws -> (threads: Int, cpuSeconds: Double, chunks: Int) {
        let core = self.core
        return try await core.loop.submit {
            guard let pool = core.fanoutPool else { return (0, 0, 0) }
            return (pool.helperCount, pool.helperCPUSeconds(), pool.chunksSentByHelpers)
        }.get()
    }
}

/// Hands every datagram to the core; never closes the socket on an error (an ICMP error for one peer must not stop
/// the others).
final class UDPMediaHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let core: MediaCore

    init(core: MediaCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = Self.unwrapInboundIn(data)
        core.receive(envelope.data, path: .udp(envelope.remoteAddress))
        core.datagramHandled()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        core.readBurstEnded()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("media UDP socket error: \(error)")
    }
}

/// One ICE-TCP connection: RFC 4571 deframing, then the same demultiplexing as UDP.
final class TCPMediaHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: MediaCore
    private var framer: RFC4571Framer
    private var connection: TCPConnection?

    init(core: MediaCore, maximumFrameSize: Int) {
        self.core = core
        self.framer = RFC4571Framer(maxFrameSize: maximumFrameSize)
    }

    func channelActive(context: ChannelHandlerContext) {
        connection = core.tcpAccepted(context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        framer.append(Self.unwrapInboundIn(data))
        // Bounded: each frame consumes at least its 2-byte prefix.
        while true {
            let frame: ByteBuffer?
            do {
                frame = try framer.nextFrame()
            } catch {
                core.tcpFramingFailed(connection, error)
                return
            }
            guard let frame else { break }
            guard frame.readableBytes > 0 else {
                core.countDropped()
                continue
            }
            core.receive(frame, path: .tcp(connection))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection { core.tcpClosed(connection) }
        connection = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
