import CallsWire
import Logging
import NIOCore
import NIOPosix

/// Settings of the project's own WebRTC client.
public struct MediaClientConfiguration: Sendable {
    public enum Transport: String, Sendable, Hashable {
        /// ICE over UDP to the answer's UDP host candidate.
        case udp
        /// ICE-TCP (RFC 6544, active side) to the answer's passive TCP candidate, RFC 4571 framing.
        case tcp
    }

    public var transport: Transport = .udp
    /// ICE + DTLS must complete within this time.
    public var connectTimeout: Duration = .seconds(10)
    /// Interval of connectivity checks after connecting (consent freshness, RFC 7675); nil stops checking once
    /// connected (the server will then expire the session).
    public var consentInterval: Duration? = .seconds(2)
    /// Interval between initial checks until one succeeds (RFC 8445 Ta is 50 ms).
    public var checkInterval: Duration = .milliseconds(50)
    public var dtls = DTLSConfiguration()
    /// The Opus payload type put in the offer.
    public var opusPayloadType: UInt8 = 111
    /// The VP8 payload type put in call offers with video receive slots.
    public var vp8PayloadType: UInt8 = 96
    /// The event loops the client's socket and state machine run on; nil = NIO's shared singleton group. Load
    /// generators and benchmarks pass their own group so that clients never share the server's event-loop thread.
    public var eventLoopGroup: (any EventLoopGroup)?
    /// When true, every received RTP packet is SRTP-unprotected, counted per SSRC, and delivered on
    /// `MediaClient.receivedAudio`. When false (load generation), packets are still SRTP-unprotected and counted per
    /// SSRC (``MediaClient/receivedPacketCounts()``) but not delivered, which saves a copy and a stream element per
    /// packet.
    public var deliverReceivedPackets = true
    /// Without delivery (`deliverReceivedPackets` false): authenticate one received RTP packet in this many, and
    /// count the others from their header (SRTP leaves the header in the clear), so a load generator spends less
    /// than the server it drives. 1 authenticates every packet. Failures of the sample are
    /// ``MediaClient/undecryptablePacketCount()``.
    public var authenticateOneIn = 1
    /// Reach the SFU only through this TURN relay (relay-only ICE: the SFU's UDP candidate through a relayed
    /// address). `transport` must then be `.udp`, the relayed leg; the relay's own transport is in the relay
    /// configuration.
    public var relay: TURNRelayConfiguration?
    /// The RFC 6464 audio-level extension id (1...14) offered on the published microphone of call offers; packets
    /// sent with an `audioLevel` then carry it. nil: no audio levels (the SFU ranks the client by activity).
    public var audioLevelExtensionID: UInt8?

    public init() {}
}

/// An RTP packet the client received and decrypted.
public struct ReceivedRTPPacket: Sendable, Hashable {
    public var header: RTPHeader
    public var payload: [UInt8]
}

/// What `MediaClient.connect` established.
public struct MediaClientConnection: Sendable, Hashable {
    /// `udp` or `tcp`.
    public var transport: String
    /// The server candidate connected to, `ip:port`.
    public var remote: String
    /// The SRTP profile, e.g. `AEAD_AES_128_GCM`.
    public var srtpProfile: String
    /// Through a TURN relay: the server and its transport, e.g. `198.51.100.7:3478 over TLS`.
    public var relayServer: String? = nil
    /// Through a TURN relay: the relayed address the SFU saw, `ip:port`.
    public var relayedAddress: String? = nil
    /// Through a TURN relay over TLS: why its certificate would not be trusted (nil when it would).
    public var relayCertificateProblem: String? = nil
}

/// A minimal but real WebRTC client: full ICE as the controlling agent (one candidate pair, nominated with
/// USE-CANDIDATE), DTLS client, SRTP. Used by `loadtest` and the doctor's join test, and by tests and benchmarks
/// against `MediaServer`.
///
/// Two uses:
/// - echo test: ``offer`` has one sendrecv Opus section; the server sends the audio back;
/// - call participant: ``callOffer(audioReceiveSlots:videoReceiveSlots:audioDirection:)`` offers one Opus section it
///   publishes on plus receive-only slots; ``connect(answer:)`` and, after a renegotiation, ``applyAnswer(_:)`` map
///   each slot to the SSRC the SFU forwards on it (``receiveSlots``); received packets are counted per SSRC
///   (``receivedPacketCounts()``). See `MediaClient+Call.swift`.
///
/// ```swift
/// let client = try MediaClient(configuration: .init(), logger: logger)
/// let (id, answer) = try await server.createSession(offer: client.offer, label: "probe")
/// try await client.connect(answer: answer)
/// client.sendAudio(payload: opusFrame, timestamp: ts)
/// for await packet in client.receivedAudio { ... }
/// ```
public final class MediaClient: Sendable {
    public let configuration: MediaClientConfiguration
    /// The SDP offer to hand to the server.
    public let offer: String
    /// The SSRC the client sends audio with.
    public let audioSSRC: UInt32
    /// The SSRC of the VP8 stream a presenting client sends (``sendVideo(payload:timestamp:marker:)``).
    public let videoSSRC: UInt32
    /// Every RTP packet received after SRTP unprotect (audio, and video on video slots; buffers the newest 1024).
    /// Empty when `configuration.deliverReceivedPackets` is false.
    public let receivedAudio: AsyncStream<ReceivedRTPPacket>

    let core: MediaClientCore
    let identity: DTLSIdentity
    let localUfrag: String
    let localPassword: String
    let cname: String
    /// Call-offer state: the sections offered so far (their order never changes), the offer version, the slots of
    /// the last answer.
    let call = Locked(MediaClientCallState())

    public init(configuration: MediaClientConfiguration = MediaClientConfiguration(), logger: Logger) throws {
        try configuration.dtls.validateForClient()
        if configuration.relay != nil && configuration.transport != .udp {
            throw MediaError(.invalidConfiguration, "a relayed client reaches the SFU over UDP: set transport to .udp")
        }
        guard MediaLibraries.initializeSRTP() else {
            throw MediaError(.internalError, "libsrtp2 failed to initialise")
        }
        self.configuration = configuration
        let identity = try DTLSIdentity(commonName: "callsctl-client")
        let ufrag = MediaRandom.alphanumeric(8)
        let password = MediaRandom.iceString(24)
        let ssrc = MediaRandom.ssrc()
        let cname = MediaRandom.alphanumeric(12)
        self.identity = identity
        self.localUfrag = ufrag
        self.localPassword = password
        self.cname = cname
        self.audioSSRC = ssrc
        var video = MediaRandom.ssrc()
        while video == ssrc { video = MediaRandom.ssrc() }
        self.videoSSRC = video
        self.offer = WebRTCAudioOffer(
            iceUfrag: ufrag, icePwd: password, fingerprint: identity.fingerprint.sdpValue, audioSSRC: ssrc,
            cname: cname, opusPayloadType: configuration.opusPayloadType
        ).sdp
        let (stream, continuation) = AsyncStream.makeStream(of: ReceivedRTPPacket.self, bufferingPolicy: .bufferingNewest(1024))
        self.receivedAudio = stream
        self.core = MediaClientCore(
            configuration: configuration, logger: logger, identity: identity, localUfrag: ufrag, audioSSRC: ssrc,
            videoSSRC: video, loop: (configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton).next(),
            received: continuation)
    }

    /// Takes the server's answer, runs ICE and DTLS, and returns once SRTP is keyed.
    /// - Throws: `MediaError` `.badAnswer` (no usable candidate, credentials or fingerprint), `.connectFailed`,
    ///   `.timedOut`.
    @discardableResult
    public func connect(answer: String) async throws -> MediaClientConnection {
        let description: WebRTCDescription
        do {
            let raw = try SDPSessionDescription(parsing: answer)
            description = WebRTCDescription(description: raw)
            updateSlots(from: raw)
        } catch {
            throw MediaError(.badAnswer, error.message)
        }
        guard let section = description.sections.first(where: { $0.kind == .audio && !$0.isRejected }) else {
            throw MediaError(.badAnswer, "the answer has no accepted audio section")
        }
        guard let ufrag = description.iceUfrag(for: section), let pwd = description.icePwd(for: section) else {
            throw MediaError(.badAnswer, "the answer has no a=ice-ufrag/a=ice-pwd")
        }
        guard
            let fingerprint = description.fingerprints(for: section).lazy.compactMap({
                DTLSFingerprint(sdp: $0.sdpValue)
            }).first
        else { throw MediaError(.badAnswer, "the answer has no usable a=fingerprint") }
        let wanted: SDPCandidate.Transport = configuration.transport == .udp ? .udp : .tcp
        guard
            let candidate = description.candidates.first(where: {
                $0.transport == wanted && $0.component == 1 && (wanted == .udp || $0.tcpType == "passive")
            }),
            let address = try? SocketAddress(ipAddress: candidate.address, port: candidate.port)
        else {
            throw MediaError(.badAnswer, "the answer has no \(wanted.rawValue) candidate this client can reach")
        }
        let channel: any Channel
        let core = self.core
        if let relay = configuration.relay {
            guard let peer = address.stunAddress else {
                throw MediaError(.badAnswer, "the answer's UDP candidate \(address) is not an IP address")
            }
            do {
                channel = try await Self.openRelayChannel(relay, core: core)
            } catch {
                throw MediaError(
                    .connectFailed,
                    "cannot reach the TURN server \(relay.server.endpointDescription) over \(relay.transport.rawValue.uppercased()): \(error)")
            }
            let remote = MediaClientCore.Remote(
                ufrag: ufrag, password: pwd, fingerprint: fingerprint, address: address, transport: .udp)
            return try await started { [core] in core.start(channel: channel, remote: remote, relay: relay, peer: peer) }
        }
        // The core starts ICE in the same event-loop turn the socket opens: an ICE-TCP server closes connections that
        // stay silent (10 s), and a starved cooperative pool must not stand between connect and the first check.
        let opened: EventLoopFuture<any Channel>
        switch configuration.transport {
            case .udp:
                // Vector reads (recvmmsg) of up to 8 datagrams, 2048 bytes each (media-path.md §5): a loaded client
                // (load tests, benchmarks) drains its socket in fewer system calls.
                opened = DatagramBootstrap(group: core.loop)
                    .channelOption(.datagramVectorReadMessageCount, value: 8)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 8 * 2048))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ClientUDPHandler(core: core))
                        }
                    }
                    .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            case .tcp:
                opened = ClientBootstrap(group: core.loop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connectTimeout(configuration.connectTimeout.timeAmount)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ClientTCPHandler(core: core))
                        }
                    }
                    .connect(to: address)
        }
        let remote = MediaClientCore.Remote(
            ufrag: ufrag, password: pwd, fingerprint: fingerprint, address: address,
            transport: configuration.transport)
        let connected = opened.flatMapError { error in
            core.loop.makeFailedFuture(
                MediaError(.connectFailed, "cannot open a \(wanted.rawValue) socket to \(address.endpointDescription): \(error)"))
        }.flatMap { channel in core.start(channel: channel, remote: remote) }
        do {
            return try await connected.get()
        } catch {
            await close()
            throw error
        }
    }

    /// Runs `start` on the client's loop and waits for the connection; on failure the client is closed.
    private func started(_ start: @escaping @Sendable () -> EventLoopFuture<MediaClientConnection>) async throws
        -> MediaClientConnection
    {
        let future = try await core.loop.submit(start).get()
        do {
            return try await future.get()
        } catch {
            await close()
            throw error
        }
    }

    private static func openRelayChannel(_ relay: TURNRelayConfiguration, core: MediaClientCore) async throws -> any Channel {
        switch relay.transport {
        case .udp:
            return try await DatagramBootstrap(group: core.loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientUDPHandler(core: core))
                    }
                }
                .bind(host: relay.server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        case .tcp, .tls:
            return try await ClientBootstrap(group: core.loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(core.connectTimeout.timeAmount)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientTCPHandler(core: core))
                    }
                }
                .connect(to: relay.server).get()
        }
    }

    /// Sends one audio frame as SRTP (fire and forget; dropped before `connect` finished).
    /// - Parameters:
    ///   - payload: the RTP payload (an Opus frame, or test bytes).
    ///   - timestamp: the RTP timestamp (48 kHz for Opus).
    ///   - marker: the RTP marker bit.
    ///   - audioLevel: the RFC 6464 level in -dBov (0 loudest, 127 silence), sent in the header extension when
    ///     ``MediaClientConfiguration/audioLevelExtensionID`` is set.
    public func sendAudio(payload: [UInt8], timestamp: UInt32, marker: Bool = false, audioLevel: UInt8? = nil) {
        core.loop.execute { [core] in
            core.sendAudio(payload: payload, timestamp: timestamp, marker: marker, audioLevel: audioLevel)
        }
    }

    /// Sends one VP8 RTP payload (with its payload descriptor) of the client's screen under ``videoSSRC`` with the
    /// VP8 payload type (`marker` on a frame's last packet, a 90 kHz `timestamp`). Dropped before `connect`
    /// finished; the SFU forwards it only while this participant presents (`screen_start`, then an offer made with
    /// `callOffer(..., publishVideo: true)`).
    public func sendVideo(payload: [UInt8], timestamp: UInt32, marker: Bool) {
        core.loop.execute { [core] in core.sendVideo(payload: payload, timestamp: timestamp, marker: marker) }
    }

    /// Sends `bytes` unmodified to the connected server candidate from the client's own socket (same 5-tuple as the
    /// call; over TCP, as one RFC 4571 frame). For robustness tests and fuzzing; dropped before `connect` started.
    /// Protects the plain RTCP compound packet `packet` with the client's SRTCP and sends it (a receiver report, a
    /// PLI...). Dropped before `connect` finished or when it does not protect.
    public func sendRTCP(_ packet: [UInt8]) {
        core.loop.execute { [core] in core.sendRTCP(packet) }
    }

    public func sendRawDatagram(_ bytes: [UInt8]) {
        core.loop.execute { [core] in core.sendRaw(bytes) }
    }

    /// Stops checks, sends DTLS close_notify, frees the TURN allocation (waiting for its answer, at most about 2 s
    /// over UDP), and closes the socket. Idempotent.
    public func close() async {
        let done = try? await core.loop.submit { [core] in core.close() }.get()
        try? await done?.get()
    }
}

extension DTLSConfiguration {
    func validateForClient() throws {
        try validate()
    }
}

/// The client's loop-confined state machine.
// Sendable because every mutable property is touched only on `loop` (public entry points hop there; the channel
// handlers run there).
final class MediaClientCore: @unchecked Sendable {
    struct Remote: Sendable {
        var ufrag: String
        var password: String
        var fingerprint: DTLSFingerprint
        var address: SocketAddress
        var transport: MediaClientConfiguration.Transport
    }

    enum Phase {
        case idle
        /// Through a relay: TLS to the TURN server, then Allocate, CreatePermission, ChannelBind.
        case relaying
        case checking
        case handshaking
        case connected
        case closed
    }

    let loop: any EventLoop
    private let configuration: MediaClientConfiguration
    private let logger: Logger
    private let identity: DTLSIdentity
    private let localUfrag: String
    private let audioSSRC: UInt32
    private let videoSSRC: UInt32
    private var videoSequence = UInt16.random(in: 0...UInt16.max)
    private let received: AsyncStream<ReceivedRTPPacket>.Continuation
    /// RTP packets received and authenticated, per SSRC.
    private(set) var receivedCounts: [UInt32: Int] = [:]
    /// RFC 3550 interarrival jitter per received audio SSRC, in 48 kHz timestamp units (counting mode only).
    private(set) var receiveStatistics: [UInt32: RTPReceiveStatistics] = [:]
    private var receivedSinceCheck = 0
    /// Packets that failed SRTP unprotect (authentication, replay) or were not RTP.
    private(set) var undecryptable = 0
    private let tieBreaker = UInt64.random(in: 0...UInt64.max)

    private var phase = Phase.idle
    private var channel: (any Channel)?
    private var remote: Remote?
    private var dtls: DTLSEndpoint?
    private var srtp: SRTPSession?
    private var promise: EventLoopPromise<MediaClientConnection>?
    private var checkTask: RepeatedTask?
    private var deadlineTask: Scheduled<Void>?
    private var dtlsTimer: Scheduled<Void>?
    private var pendingTransactions: Set<STUNTransactionID> = []
    private var framer = RFC4571Framer()
    // Relay mode: the TURN client, its server's address, TLS, and the STUN/ChannelData framing over TCP/TLS.
    private var relay: TURNRelayClient?
    private var relayConfiguration: TURNRelayConfiguration?
    private var tls: TLSClientEngine?
    private var splitter = STUNStreamSplitter(maxMessageSize: 4096)
    private var closing: EventLoopPromise<Void>?
    private var sequence = UInt16.random(in: 0...UInt16.max)
    private let allocator = ByteBufferAllocator()
    private var scratch = ByteBuffer()

    init(
        configuration: MediaClientConfiguration, logger: Logger, identity: DTLSIdentity, localUfrag: String,
        audioSSRC: UInt32, videoSSRC: UInt32, loop: any EventLoop, received: AsyncStream<ReceivedRTPPacket>.Continuation
    ) {
        self.configuration = configuration
        self.logger = logger
        self.identity = identity
        self.localUfrag = localUfrag
        self.audioSSRC = audioSSRC
        self.videoSSRC = videoSSRC
        self.loop = loop
        self.received = received
    }

    var connectTimeout: Duration { configuration.connectTimeout }

    /// Relay mode: TLS (for `tls`), then the TURN allocation for `peer`, then the same ICE and DTLS as ``start(channel:remote:)``
    /// with every packet in ChannelData.
    func start(channel: any Channel, remote: Remote, relay configuration: TURNRelayConfiguration, peer: STUNAddress)
        -> EventLoopFuture<MediaClientConnection>
    {
        relayConfiguration = configuration
        let client = TURNRelayClient(
            configuration: configuration, peer: peer, loop: loop,
            send: { [unowned self] bytes in self.writeToRelay(bytes) },
            onReady: { [unowned self] in self.relayReady() },
            onFailure: { [unowned self] error in self.fail(error) })
        relay = client
        let future = start(channel: channel, remote: remote, beginChecks: false)
        guard phase == .relaying else { return future }
        if configuration.transport == .tls {
            do {
                let engine = try TLSClientEngine(serverName: configuration.serverName, caFile: configuration.caFile)
                tls = engine
                handleTLS(engine.start())
            } catch {
                fail(error)
            }
        } else {
            client.start()
        }
        return future
    }

    private func relayReady() {
        guard phase == .relaying else { return }
        phase = .checking
        let interval = configuration.checkInterval.timeAmount
        checkTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [self] _ in
            self.sendCheck()
        }
    }

    /// Writes one TURN message (STUN or ChannelData) to the TURN server.
    private func writeToRelay(_ bytes: ByteBuffer) {
        guard let channel, let relayConfiguration else { return }
        switch relayConfiguration.transport {
        case .udp:
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: relayConfiguration.server, data: bytes), promise: nil)
        case .tcp:
            channel.writeAndFlush(bytes, promise: nil)
        case .tls:
            guard let tls else { return }
            handleTLS(tls.write(Array(bytes.readableBytesView)))
        }
    }

    private func handleTLS(_ output: TLSClientEngine.Output) {
        if !output.toNetwork.isEmpty, let channel {
            channel.writeAndFlush(ByteBuffer(bytes: output.toNetwork), promise: nil)
        }
        if let failure = output.failure {
            fail(MediaError(.relayFailed, "TLS to the TURN server \(relayConfiguration?.server.endpointDescription ?? "?"): \(failure)"))
            return
        }
        if output.handshakeCompleted { relay?.start() }
        if !output.plaintext.isEmpty { receiveRelayStream(ByteBuffer(bytes: output.plaintext)) }
        if output.closed, phase != .closed { fail(MediaError(.closed, "the TURN server closed the TLS connection")) }
    }

    private func receiveRelayStream(_ bytes: ByteBuffer) {
        splitter.append(bytes)
        while true {
            let frame: STUNStreamSplitter.Frame?
            do { frame = try splitter.nextFrame() } catch {
                fail(MediaError(.relayFailed, "the TURN server sent bytes that are not STUN or ChannelData: \(error)"))
                return
            }
            guard let frame else { return }
            switch frame {
            case .stun(let b), .channelData(let b): receiveFromRelay(b)
            }
        }
    }

    private func receiveFromRelay(_ message: ByteBuffer) {
        guard let relay, let inner = relay.handle(message) else { return }
        receive(inner)
    }

    func start(channel: any Channel, remote: Remote) -> EventLoopFuture<MediaClientConnection> {
        start(channel: channel, remote: remote, beginChecks: true)
    }

    private func start(channel: any Channel, remote: Remote, beginChecks: Bool) -> EventLoopFuture<MediaClientConnection> {
        let promise = loop.makePromise(of: MediaClientConnection.self)
        guard case .idle = phase else {
            channel.close(promise: nil)
            promise.fail(
                MediaError(
                    .connectFailed,
                    phase == .closed ? "the connection closed (or the client was closed) before ICE started" : "connect was already called"))
            return promise.futureResult
        }
        self.channel = channel
        self.remote = remote
        self.promise = promise
        phase = beginChecks ? .checking : .relaying
        deadlineTask = loop.scheduleTask(in: configuration.connectTimeout.timeAmount) { [self] in
            let stage: String
            switch self.phase {
            case .relaying:
                stage = self.tls?.isEstablished == false ? "TLS to the TURN server" : "the TURN allocation"
            case .checking: stage = self.relay == nil ? "ICE connectivity checks" : "ICE connectivity checks through the relay"
            default: stage = "the DTLS handshake"
            }
            self.fail(MediaError(.timedOut, "\(stage) did not complete within \(self.configuration.connectTimeout)"))
        }
        guard beginChecks else { return promise.futureResult }
        let interval = configuration.checkInterval.timeAmount
        checkTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [self] _ in
            self.sendCheck()
        }
        return promise.futureResult
    }

    // MARK: ICE (controlling, RFC 8445 §7.2)

    private func sendCheck() {
        guard let remote, phase != .closed, phase != .idle else { return }
        let request = STUNMessage(
            method: .binding, messageClass: .request,
            attributes: [
                .username("\(remote.ufrag):\(localUfrag)"),
                .priority(SDPCandidate.priority(typePreference: 110, localPreference: 65535)),
                .iceControlling(tieBreaker),
                .useCandidate,
            ])
        guard
            let bytes = try? request.encodedBuffer(
                integrity: .sha1(.shortTerm(password: remote.password)), fingerprint: true, allocator: allocator)
        else { return }
        if pendingTransactions.count > 64 { pendingTransactions.removeAll() }
        pendingTransactions.insert(request.transactionID)
        send(bytes)
    }

    private func handleSTUN(_ buffer: ByteBuffer) {
        guard let remote, let message = try? STUNMessage(decoding: buffer), message.method == .binding,
            pendingTransactions.remove(message.transactionID) != nil
        else { return }
        guard message.messageClass == .successResponse,
            message.verifyIntegrity(key: .shortTerm(password: remote.password))
        else {
            if message.messageClass == .errorResponse {
                fail(MediaError(.connectFailed, "the server rejected the connectivity check: \(message.errorCode.map { "\($0)" } ?? "error")"))
            }
            return
        }
        guard phase == .checking else { return }
        // Connected: slow checks down to consent refreshes (or stop), then start DTLS as the client.
        checkTask?.cancel()
        checkTask = nil
        if let interval = configuration.consentInterval {
            checkTask = loop.scheduleRepeatedTask(initialDelay: interval.timeAmount, delay: interval.timeAmount) {
                [self] _ in self.sendCheck()
            }
        }
        phase = .handshaking
        do {
            let endpoint = try DTLSEndpoint(
                role: .client, identity: identity, remoteFingerprint: remote.fingerprint,
                configuration: configuration.dtls)
            dtls = endpoint
            process(endpoint.start())
        } catch {
            fail(MediaError(.connectFailed, "cannot create the DTLS client: \(error)"))
        }
    }

    // MARK: DTLS

    private func process(_ output: DTLSOutput) {
        for d in output.datagrams { send(ByteBuffer(bytes: d)) }
        for event in output.events {
            switch event {
            case .handshakeComplete(let keys):
                do {
                    srtp = try SRTPSession(keyingMaterial: keys)
                } catch {
                    fail(MediaError(.connectFailed, "SRTP setup failed: \(error)"))
                    return
                }
                phase = .connected
                deadlineTask?.cancel()
                if let remote {
                    var connection = MediaClientConnection(
                        transport: remote.transport.rawValue, remote: remote.address.endpointDescription,
                        srtpProfile: keys.profile.description)
                    if let relay {
                        connection.relayServer = relay.serverDescription
                        connection.relayedAddress = relay.relayedAddress?.description
                        connection.relayCertificateProblem = tls?.verifyError
                    }
                    promise?.succeed(connection)
                }
                promise = nil
            case .failed(let error):
                fail(MediaError(.connectFailed, "DTLS failed: \(error)"))
                return
            case .closed:
                fail(MediaError(.closed, "the server closed the DTLS association"))
                return
            case .applicationData:
                break
            }
        }
        dtlsTimer?.cancel()
        dtlsTimer = nil
        if let timeout = dtls?.nextTimeout, phase != .closed {
            dtlsTimer = loop.scheduleTask(in: timeout.timeAmount) { [self] in
                guard let dtls = self.dtls, self.phase != .closed else { return }
                self.process(dtls.handleTimeout())
            }
        }
    }

    // MARK: Media

    func sendRTCP(_ packet: [UInt8]) {
        guard phase == .connected, let srtp else { return }
        var buffer = allocator.buffer(capacity: packet.count + SRTPSession.maxRTCPTrailerLength)
        buffer.writeBytes(packet)
        protectAndSend(&buffer) { try srtp.protectRTCP($0, length: $1) }
    }

    /// Protects the plain packet in `buffer` in place (its capacity leaves room for the trailer) and sends it;
    /// dropped when it does not protect.
    private func protectAndSend(
        _ buffer: inout ByteBuffer, _ protect: (UnsafeMutableRawBufferPointer, Int) throws -> Int
    ) {
        let length = buffer.readableBytes
        let protected: Int? = buffer.withVeryUnsafeMutableBytes { try? protect($0, length) }
        guard let newLength = protected else { return }
        buffer.moveWriterIndex(to: newLength)
        send(buffer)
    }

    func sendVideo(payload: [UInt8], timestamp: UInt32, marker: Bool) {
        guard phase == .connected, let srtp else { return }
        videoSequence &+= 1
        let header = RTPHeader(
            marker: marker, payloadType: configuration.vp8PayloadType, sequenceNumber: videoSequence, timestamp: timestamp,
            ssrc: videoSSRC)
        var buffer = allocator.buffer(capacity: RTPHeader.fixedLength + payload.count + SRTPSession.maxRTCPTrailerLength)
        header.write(into: &buffer)
        buffer.writeBytes(payload)
        protectAndSend(&buffer) { try srtp.protectRTP($0, length: $1) }
    }

    func sendAudio(payload: [UInt8], timestamp: UInt32, marker: Bool, audioLevel: UInt8? = nil) {
        guard phase == .connected, let srtp else { return }
        sequence &+= 1
        let header = RTPHeader(
            marker: marker, payloadType: configuration.opusPayloadType, sequenceNumber: sequence, timestamp: timestamp,
            ssrc: audioSSRC)
        var buffer = allocator.buffer(capacity: RTPHeader.fixedLength + 8 + payload.count + SRTPSession.maxRTCPTrailerLength)
        header.write(into: &buffer)
        if let id = configuration.audioLevelExtensionID, let audioLevel {
            buffer.setInteger(UInt8(0x90), at: buffer.readerIndex)  // V=2, X=1
            buffer.writeBytes(RTPAudioLevel(level: audioLevel, voiceActivity: audioLevel < 127).extensionBlock(id: id))
        }
        buffer.writeBytes(payload)
        protectAndSend(&buffer) { try srtp.protectRTP($0, length: $1) }
    }

    private func handleSRTP(_ input: ByteBuffer) {
        guard let srtp, input.readableBytes >= 12 else { return }
        if PacketClass.isRTCP(secondByte: input.getInteger(at: input.readerIndex + 1, as: UInt8.self) ?? 0) { return }
        guard configuration.deliverReceivedPackets else {
            // Counting only. One packet in `authenticateOneIn` is unprotected (in a reused scratch buffer, no
            // per-packet copies); the others are counted from their clear header.
            receivedSinceCheck += 1
            if receivedSinceCheck >= configuration.authenticateOneIn {
                receivedSinceCheck = 0
                let length = input.readableBytes
                scratch.clear(minimumCapacity: length)
                scratch.writeImmutableBuffer(input)
                let plain: Int? = scratch.withUnsafeMutableReadableBytes { try? srtp.unprotectRTP($0, length: length) }
                guard plain != nil else {
                    undecryptable += 1
                    return
                }
            }
            guard let ssrc = input.getInteger(at: input.readerIndex + 8, as: UInt32.self),
                let sequence = input.getInteger(at: input.readerIndex + 2, as: UInt16.self),
                let timestamp = input.getInteger(at: input.readerIndex + 4, as: UInt32.self)
            else { return }
            receivedCounts[ssrc, default: 0] += 1
            // Jitter of the audio slots only (Opus, 48 kHz; a screen's frames span several packets per timestamp).
            guard let pt = input.getInteger(at: input.readerIndex + 1, as: UInt8.self), pt & 0x7F == configuration.opusPayloadType
            else { return }
            if receiveStatistics[ssrc] == nil, receiveStatistics.count < 64 {
                receiveStatistics[ssrc] = RTPReceiveStatistics(ssrc: ssrc)
            }
            // The slots carry Opus: a 48 kHz clock.
            let arrival = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
            receiveStatistics[ssrc]?.record(sequenceNumber: sequence, timestamp: timestamp, arrivalSeconds: arrival, clockRate: 48000)
            return
        }
        var bytes = Array(input.readableBytesView)
        guard (try? srtp.unprotectRTP(&bytes)) != nil, let header = RTPHeader(parsing: bytes) else {
            undecryptable += 1
            return
        }
        receivedCounts[header.ssrc, default: 0] += 1
        received.yield(ReceivedRTPPacket(header: header, payload: Array(bytes[header.headerLength...])))
    }

    /// Sends `count` audio packets with the same payload in one event-loop turn (sequence numbers and timestamps
    /// advance by one packet and `timestampStep`), flushing once: the kernel gets them in `sendmmsg` batches.
    func sendAudioBurst(payload: [UInt8], count: Int, firstTimestamp: UInt32, timestampStep: UInt32) {
        guard phase == .connected, let srtp, let channel, let remote, remote.transport == .udp, relay == nil else {
            for i in 0..<count {
                sendAudio(payload: payload, timestamp: firstTimestamp &+ UInt32(truncatingIfNeeded: i) &* timestampStep, marker: false)
            }
            return
        }
        for i in 0..<count {
            sequence &+= 1
            let header = RTPHeader(
                payloadType: configuration.opusPayloadType, sequenceNumber: sequence,
                timestamp: firstTimestamp &+ UInt32(truncatingIfNeeded: i) &* timestampStep, ssrc: audioSSRC)
            var buffer = allocator.buffer(capacity: RTPHeader.fixedLength + payload.count + SRTPSession.maxRTCPTrailerLength)
            header.write(into: &buffer)
            buffer.writeBytes(payload)
            let length = buffer.readableBytes
            let protected: Int? = buffer.withVeryUnsafeMutableBytes { try? srtp.protectRTP($0, length: length) }
            guard let newLength = protected else { continue }
            buffer.moveWriterIndex(to: newLength)
            channel.write(AddressedEnvelope(remoteAddress: remote.address, data: buffer), promise: nil)
        }
        channel.flush()
    }

    // MARK: Transport

    func receive(_ buffer: ByteBuffer) {
        switch PacketClass.classify(buffer) {
        case .stun: handleSTUN(buffer)
        case .dtls:
            guard let dtls else { return }
            process(buffer.withUnsafeReadableBytes { dtls.feed(datagram: $0) })
        case .rtpOrRTCP: handleSRTP(buffer)
        default: break
        }
    }

    func receiveDatagram(_ envelope: AddressedEnvelope<ByteBuffer>) {
        if let relayConfiguration {
            guard envelope.remoteAddress == relayConfiguration.server else { return }
            receiveFromRelay(envelope.data)
            return
        }
        guard envelope.remoteAddress == remote?.address else { return }
        receive(envelope.data)
    }

    func receiveStream(_ buffer: ByteBuffer) {
        if relayConfiguration != nil {
            if let tls {
                handleTLS(buffer.withUnsafeReadableBytes { tls.feed($0) })
            } else {
                receiveRelayStream(buffer)
            }
            return
        }
        framer.append(buffer)
        while let frame = try? framer.nextFrame() { receive(frame) }
    }

    func sendRaw(_ bytes: [UInt8]) {
        guard phase != .closed else { return }
        send(ByteBuffer(bytes: bytes))
    }

    private func send(_ payload: ByteBuffer) {
        if let relay {
            guard relay.isReady, let wrapped = relay.wrap(payload) else { return }
            writeToRelay(wrapped)
            return
        }
        guard let channel, let remote else { return }
        switch remote.transport {
        case .udp:
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote.address, data: payload), promise: nil)
        case .tcp:
            var framed = allocator.buffer(capacity: payload.readableBytes + 2)
            framed.writeInteger(UInt16(truncatingIfNeeded: payload.readableBytes))
            framed.writeImmutableBuffer(payload)
            channel.writeAndFlush(framed, promise: nil)
        }
    }

    func channelClosed() {
        relay?.stop()
        if phase != .closed {
            fail(MediaError(.closed, relay == nil ? "the connection to the server closed" : "the TURN server closed the connection"))
        }
    }

    private func fail(_ error: MediaError) {
        logger.debug("media client failed: \(error)")
        promise?.fail(error)
        promise = nil
        // A relayed client frees its allocation even when the call failed (close() waits for that).
        if relay != nil { _ = close() } else { shutDown() }
    }

    /// Closes the client; the future completes once the TURN allocation (if any) was freed.
    func close() -> EventLoopFuture<Void> {
        if let closing { return closing.futureResult }
        if let dtls, phase == .connected || phase == .handshaking { process(dtls.close()) }
        promise?.fail(MediaError(.closed, "the client was closed"))
        promise = nil
        let done = loop.makePromise(of: Void.self)
        closing = done
        guard let relay, relay.relayedAddress != nil, phase != .closed else {
            shutDown()
            done.succeed()
            return done.futureResult
        }
        // Stop ICE and DTLS but keep the socket until the allocation is freed.
        checkTask?.cancel()
        dtlsTimer?.cancel()
        deadlineTask?.cancel()
        // Over TCP nothing is retransmitted: give the answer 2 s.
        let giveUp = loop.scheduleTask(in: .seconds(2)) { [self] in
            self.relay?.stop()
            shutDown()
            done.succeed()
        }
        relay.release { [self] in
            giveUp.cancel()
            if let tls, phase != .closed { handleTLS(tls.close()) }
            shutDown()
            done.succeed()
        }
        return done.futureResult
    }

    private func shutDown() {
        guard phase != .closed else { return }
        phase = .closed
        relay?.stop()
        checkTask?.cancel()
        deadlineTask?.cancel()
        dtlsTimer?.cancel()
        channel?.close(promise: nil)
        received.finish()
    }
}

final class ClientUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let core: MediaClientCore

    init(core: MediaClientCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receiveDatagram(Self.unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

final class ClientTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let core: MediaClientCore

    init(core: MediaClientCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receiveStream(Self.unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.channelClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
