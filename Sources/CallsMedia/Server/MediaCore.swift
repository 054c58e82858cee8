import CallsWire
import Logging
import NIOCore

/// The media server's data plane: demultiplexing (RFC 7983), ICE-lite, DTLS, SRTP and routing for every session.
///
/// All mutable state lives on one event loop (`loop`); the UDP channel, the TCP listener and its connections are
/// bound to that loop, so packets, timers and sessions never need locks. Only `metricsSnapshot` and `hubs` are read
/// from other threads, behind their own locks.
// Sendable because every mutable stored property is touched only on `loop` (entry points hop there or are
// channel-handler callbacks of channels bound to `loop`); the cross-thread pieces are `Locked`.
final class MediaCore: @unchecked Sendable {
    let loop: any EventLoop
    let configuration: MediaServerConfiguration
    let logger: Logger
    let dtlsContext: DTLSContext
    let metricsSnapshot = Locked(MediaMetrics())
    /// The forwarding-latency histogram as of the last tick (merged into `MediaMetrics` by the reader).
    let latencySnapshot = Locked(ForwardLatencyHistogram())
    let hubs = Locked([String: SessionEventHub]())

    // Loop-confined state.
    private var sessionsByID: [String: MediaSession] = [:]
    private var sessionsByUfrag: [String: MediaSession] = [:]
    private var udpRoutes: [SocketAddress: MediaSession] = [:]
    private var tcpConnections: [Int: TCPConnection] = [:]
    private var nextConnectionID = 0
    var udpChannel: (any Channel)?
    /// Batches outgoing SRTP datagrams on the UDP socket's descriptor (nil until started, and after the socket closed).
    var udpSender: UDPBatchSender?
    /// Shares large audio fan-outs with helper threads (nil: everything on this loop).
    var fanoutPool: FanoutPool?
    /// Receive→send time of every SRTP packet the router sent.
    private var forwardLatency = ForwardLatencyHistogram()
    /// The decrypt buffer of `handleSRTP`, reused from packet to packet (nil while in use).
    private var scratch: ByteBuffer?
    var candidates: [SDPCandidate] = []
    private var counters = MediaMetrics()
    private var rateLimiter: SourceRateLimiter
    private var channelsToFlush: [ObjectIdentifier: any Channel] = [:]
    private var channelsBeingFlushed: [ObjectIdentifier: any Channel] = [:]
    private var flushScheduled = false
    private var sweepTask: RepeatedTask?
    let router: CallRouter
    /// Returns the pages of freed DTLS states (and closed sessions) to the system.
    private let heapTrimmer = HeapTrimmer()
    private let allocator = ByteBufferAllocator()
    private var isShutDown = false
    /// When the packet being handled arrived.
    private(set) var tickTime = NIODeadline.now()
    /// Failed connectivity checks are logged at most once per `iceFailureLogInterval` (a scanner could send
    /// thousands); the next line says how many were not logged in between.
    private var lastICEFailureLog: NIODeadline?
    private var unloggedICEFailures = 0
    static let iceFailureLogInterval = TimeAmount.seconds(10)

    init(configuration: MediaServerConfiguration, logger: Logger, dtlsContext: DTLSContext, loop: any EventLoop) {
        self.configuration = configuration
        self.logger = logger
        self.dtlsContext = dtlsContext
        self.loop = loop
        self.rateLimiter = SourceRateLimiter(ratePerSecond: configuration.unauthenticatedBindingRate)
        self.router = CallRouter(audioSlots: configuration.audioSlots)
    }

    // MARK: - Control plane (called on `loop`)

    func startSweeping() {
        loop.preconditionInEventLoop()
        let interval = min(Duration.seconds(1), configuration.consentTimeout / 4)
        sweepTask = loop.scheduleRepeatedTask(initialDelay: interval.timeAmount, delay: interval.timeAmount) {
            [self] _ in
            self.sweep()
        }
    }

    struct NewSession: Sendable {
        var id: String
        var label: String
        var localPassword: String
        var remoteUfrag: String
        var remoteFingerprint: DTLSFingerprint
        var offer: WebRTCOffer
        var audioSSRC: UInt32
        var cname: String
        var route: SessionRoute = .echo
        var participant: String
    }

    /// Registers a session and returns its answer. Runs on `loop`.
    func addSession(_ n: NewSession) throws(MediaError) -> String {
        loop.preconditionInEventLoop()
        guard !isShutDown else { throw MediaError(.notRunning, "the media server is shut down") }
        guard sessionsByID.count < configuration.maximumSessions else {
            throw MediaError(.tooManySessions, "the media server already has \(sessionsByID.count) sessions (maximumSessions)")
        }
        var ufrag = MediaRandom.alphanumeric(8)
        while sessionsByUfrag[ufrag] != nil { ufrag = MediaRandom.alphanumeric(8) }
        let sdpSessionID = UInt64(n.audioSSRC) << 16 | UInt64(sessionsByID.count & 0xFFFF)
        let echoAnswer: WebRTCAnswer?
        switch n.route {
        case .echo:
            let parameters = WebRTCAnswerParameters(
                iceUfrag: ufrag, icePwd: n.localPassword, fingerprint: dtlsContext.identity.fingerprint.sdpValue,
                candidates: candidates, audioSSRC: n.audioSSRC, cname: n.cname, streamID: "callsctl-\(n.cname)",
                audioTrackID: "audio-\(n.cname)", videoDirection: .inactive, sessionID: sdpSessionID)
            echoAnswer = WebRTCAnswer(offer: n.offer, parameters: parameters)
        case .call:
            echoAnswer = nil
        }
        let dtls: DTLSEndpoint
        do {
            dtls = try DTLSEndpoint(
                role: .server, context: dtlsContext, remoteFingerprint: n.remoteFingerprint,
                configuration: configuration.dtls)
        } catch {
            throw MediaError(.internalError, "cannot create the DTLS endpoint: \(error)")
        }
        _ = dtls.start()
        let hub = SessionEventHub()
        let session = MediaSession(
            id: n.id, label: n.label, localUfrag: ufrag, localPassword: n.localPassword, remoteUfrag: n.remoteUfrag,
            remoteFingerprint: n.remoteFingerprint, route: n.route, participant: n.participant, cname: n.cname,
            sdpSessionID: sdpSessionID, audioPayloadType: echoAnswer?.audioPayloadType ?? n.offer.opus.payloadType,
            sendsAudio: echoAnswer?.audioDirection.sends ?? false, audioSSRC: n.audioSSRC, dtls: dtls, hub: hub,
            now: .now())
        let answer: String
        if let echoAnswer {
            answer = echoAnswer.sdp
        } else {
            router.add(session)
            let sfu = router.answer(n.offer, for: session, candidates: candidates, fingerprint: dtlsContext.identity.fingerprint.sdpValue)
            noteRejected(sfu.rejected, session: session)
            answer = sfu.sdp
        }
        sessionsByID[n.id] = session
        sessionsByUfrag[ufrag] = session
        hubs.withLock { $0[n.id] = hub }
        // A join changes nothing the others negotiated: only the newcomer may need more slots.
        if let call = session.callRoute { router.reconcile(call, only: session) }
        router.flushPendingKeyFrames(core: self)
        publishMetrics()
        touched()
        logger.info(
            "media session created",
            metadata: ["session.id": "\(n.id)", "session.label": "\(n.label)", "ice.ufrag": "\(ufrag)"])
        return answer
    }

    /// Answers a new offer of a call participant (tracks added or removed), keeping its ICE and DTLS transport.
    func renegotiate(id: String, offer: WebRTCOffer) throws(MediaError) -> String {
        loop.preconditionInEventLoop()
        guard let s = sessionsByID[id], !s.isClosed else {
            throw MediaError(.unknownSession, "the media session \(id) does not exist (it may have closed)")
        }
        guard case .call = s.route else {
            throw MediaError(.badOffer, "an echo test session cannot renegotiate; leave and join again")
        }
        guard offer.iceUfrag == s.remoteUfrag else {
            throw MediaError(
                .badOffer,
                "the new offer changes a=ice-ufrag (an ICE restart), which this server does not support; leave and join again")
        }
        let fingerprints = offer.fingerprints.compactMap { DTLSFingerprint(sdp: $0.sdpValue) }
        guard fingerprints.contains(s.remoteFingerprint) else {
            throw MediaError(.badOffer, "the new offer changes the DTLS fingerprint; keep the same RTCPeerConnection")
        }
        let presented = s.publishedVideo != nil
        let sfu = router.answer(
            offer, for: s, candidates: candidates, fingerprint: dtlsContext.identity.fingerprint.sdpValue)
        noteRejected(sfu.rejected, session: s)
        let answer = sfu.sdp
        // Everyone renegotiates only when this offer started or stopped a screen.
        if let call = s.callRoute { router.reconcile(call, only: presented == (s.publishedVideo != nil) ? s : nil) }
        router.flushPendingKeyFrames(core: self)
        touched()
        return answer
    }

    /// Mutes (`false`) or unmutes a participant's audio at the server.
    func setAudioForwarding(id: String, _ on: Bool) {
        loop.preconditionInEventLoop()
        guard let s = sessionsByID[id] else { return }
        s.audioForwarding = on
        if !on { router.muted(s) }
    }

    /// Gives or takes the presenter slot: with it, the participant's next offer may publish a screen.
    func setMayPublishVideo(id: String, _ on: Bool) {
        loop.preconditionInEventLoop()
        guard let s = sessionsByID[id] else { return }
        s.mayPublishVideo = on
        if !on { s.publishedVideo = nil }
        if let call = s.callRoute { router.reconcile(call) }
        touched()
    }

    func closeSession(id: String, reason: String) {
        loop.preconditionInEventLoop()
        guard let s = sessionsByID[id] else { return }
        close(s, reason: reason, sendAlert: true)
    }

    func shutdown() {
        loop.preconditionInEventLoop()
        isShutDown = true
        sweepTask?.cancel()
        sweepTask = nil
        for s in Array(sessionsByID.values) { close(s, reason: "the media server is shutting down", sendAlert: true) }
        for c in Array(tcpConnections.values) { c.channel.close(promise: nil) }
        flush()
    }

    // MARK: - Data plane entry points (channel handlers, on `loop`)

    func receive(_ buffer: ByteBuffer, path: MediaPath) {
        tickTime = .now()
        counters.packetsIn += 1
        counters.bytesIn += UInt64(buffer.readableBytes)
        touched()
        switch PacketClass.classify(buffer) {
        case .stun:
            handleSTUN(buffer, path: path)
        case .dtls:
            guard let s = session(for: path) else { return countDropped() }
            handleDTLS(buffer, session: s, path: path)
        case .rtpOrRTCP:
            guard let s = session(for: path) else { return countDropped() }
            handleSRTP(buffer, session: s)
        default:
            countDropped()
        }
    }

    func tcpAccepted(_ channel: any Channel) -> TCPConnection {
        nextConnectionID += 1
        let c = TCPConnection(id: nextConnectionID, channel: channel)
        tcpConnections[c.id] = c
        // A connection that never proves it belongs to a session is closed: it holds a socket and a framer.
        let bound = NIOLoopBound(c, eventLoop: loop)
        c.idleTimer = loop.scheduleTask(in: configuration.tcpHandshakeTimeout.timeAmount) { [self] in
            let c = bound.value
            if c.session == nil {
                self.logger.debug("closing ICE-TCP connection without a valid check", metadata: ["peer.address": "\(c.remote?.endpointDescription ?? "?")"])
                c.channel.close(promise: nil)
            }
        }
        return c
    }

    func tcpClosed(_ c: TCPConnection) {
        tcpConnections.removeValue(forKey: c.id)
        c.idleTimer?.cancel()
        guard let s = c.session else { return }
        c.session = nil
        s.paths.removeAll { $0 == .tcp(c) }
        if s.selected == .tcp(c) {
            s.selected = s.paths.first
            s.nominated = false
        }
    }

    func tcpFramingFailed(_ c: TCPConnection, _ error: WireError) {
        countDropped()
        logger.debug("closing ICE-TCP connection: \(error)", metadata: ["peer.address": "\(c.remote?.endpointDescription ?? "?")"])
        c.channel.close(promise: nil)
    }

    func countDropped() {
        counters.droppedPackets += 1
    }

    // MARK: - ICE-lite (RFC 8445 §2.5, §7.3)

    private func session(for path: MediaPath) -> MediaSession? {
        switch path {
        case .udp(let a): udpRoutes[a]
        case .tcp(let c): c.session
        }
    }

    private func handleSTUN(_ buffer: ByteBuffer, path: MediaPath) {
        guard let message = try? STUNMessage(decoding: buffer), message.method == .binding else {
            return countDropped()
        }
        switch message.messageClass {
        case .request:
            handleBindingRequest(message, path: path)
        case .indication:
            break  // RFC 8445 §11: keepalives need no answer
        default:
            countDropped()  // a lite agent sends no checks, so it expects no responses
        }
    }

    /// Logs a connectivity check that failed authentication, rate-limited. The STUN username is the client's and is
    /// not logged; the source address is the packet's.
    private func logICEFailure(from source: SocketAddress) {
        let now = NIODeadline.now()
        if let last = lastICEFailureLog, now - last < Self.iceFailureLogInterval {
            unloggedICEFailures += 1
            return
        }
        lastICEFailureLog = now
        logger.info(
            "ICE connectivity check refused: unknown username fragment or wrong MESSAGE-INTEGRITY",
            metadata: [
                "peer.address": "\(source.endpointDescription)",
                "ice.failures.unlogged": "\(unloggedICEFailures)",
            ])
        unloggedICEFailures = 0
    }

    private func handleBindingRequest(_ request: STUNMessage, path: MediaPath) {
        guard let source = path.remoteAddress, let mapped = source.stunAddress else { return countDropped() }
        guard let username = request.username else {
            // A probe (RFC 8489 plain Binding): answer, but only at a bounded rate per source IP.
            guard rateLimiter.allow(source) else {
                counters.rateLimited += 1
                return countDropped()
            }
            let response = STUNMessage(
                method: .binding, messageClass: .successResponse, transactionID: request.transactionID,
                attributes: [.xorMappedAddress(mapped)])
            if let bytes = try? response.encodedBuffer(fingerprint: true, allocator: allocator) {
                send(bytes, on: path)
            }
            return
        }
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let verified: MediaSession? = {
            guard parts.count == 2, let s = sessionsByUfrag[String(parts[0])], !s.isClosed,
                s.remoteUfrag == parts[1]
            else { return nil }
            let v = request.verify(key: s.localKey)
            // RFC 8445 §7.3: MESSAGE-INTEGRITY with the local password; FINGERPRINT, if present, must be right.
            guard v.messageIntegrity == .passed, v.fingerprint != .failed else { return nil }
            return s
        }()
        guard let s = verified else {
            counters.iceFailures += 1
            logICEFailure(from: source)
            guard rateLimiter.allow(source) else {
                counters.rateLimited += 1
                return countDropped()
            }
            let response = STUNMessage(
                method: .binding, messageClass: .errorResponse, transactionID: request.transactionID,
                attributes: [.errorCode(STUNErrorCode(code: STUNErrorCode.unauthenticated))])
            if let bytes = try? response.encodedBuffer(fingerprint: true, allocator: allocator) {
                send(bytes, on: path)
            }
            return
        }
        if case .tcp(let c) = path, let owner = c.session, owner !== s { return countDropped() }

        let response = STUNMessage(
            method: .binding, messageClass: .successResponse, transactionID: request.transactionID,
            attributes: [.xorMappedAddress(mapped)])
        guard
            let bytes = try? response.encodedBuffer(
                integrity: .sha1(s.localKey), fingerprint: true, allocator: allocator)
        else { return }
        send(bytes, on: path)

        // The check proves the client owns this 5-tuple: learn it (a peer-reflexive candidate, §7.3.1.3).
        s.lastConsent = .now()
        if !s.paths.contains(path) {
            guard s.paths.count < MediaSession.maximumPaths else { return }
            s.paths.append(path)
            switch path {
            case .udp(let a):
                if let previous = udpRoutes[a], previous !== s { forget(path, of: previous) }
                udpRoutes[a] = s
            case .tcp(let c):
                c.session = s
                c.idleTimer?.cancel()
            }
        }
        let useCandidate = request.first { if case .useCandidate = $0 { true } else { nil } } ?? false
        // Select the first valid path at once (media can flow before nomination); USE-CANDIDATE decides for good.
        if s.selected == nil || (useCandidate && (s.selected != path || !s.nominated)) {
            let changed = s.selected != path
            s.selected = path
            if useCandidate { s.nominated = true }
            if changed {
                logger.info(
                    "ICE path selected",
                    metadata: [
                        "session.id": "\(s.id)", "ice.transport": "\(path.transportName)",
                        "peer.address": "\(path.remoteDescription)", "ice.nominated": "\(useCandidate)",
                    ])
                s.hub.emit(.iceConnected(transport: path.transportName, remote: path.remoteDescription))
            }
        }
    }

    private func forget(_ path: MediaPath, of s: MediaSession) {
        s.paths.removeAll { $0 == path }
        if s.selected == path {
            s.selected = s.paths.first
            s.nominated = false
        }
    }

    // MARK: - DTLS

    private func handleDTLS(_ buffer: ByteBuffer, session s: MediaSession, path: MediaPath) {
        if s.dtlsStarted == nil { s.dtlsStarted = .now() }
        guard let dtls = s.dtls else { return countDropped() }
        s.lastDTLSInput = .now()
        let output = buffer.withUnsafeReadableBytes { dtls.feed(datagram: $0) }
        process(output, session: s, replyTo: path)
    }

    private func process(_ output: DTLSOutput, session s: MediaSession, replyTo path: MediaPath?) {
        if let target = path ?? s.selected {
            for d in output.datagrams { send(ByteBuffer(bytes: d), on: target) }
        }
        for event in output.events {
            switch event {
            case .handshakeComplete(let keys):
                do {
                    s.srtp = try SRTPSession(
                        keyingMaterial: keys, allowRepeatTransmission: true,
                        rtpProtectBackend: configuration.rtpProtectBackend)
                } catch {
                    counters.dtlsFailures += 1
                    close(s, reason: "SRTP setup failed: \(error)", sendAlert: true)
                    return
                }
                s.lastDTLSInput = .now()
                if let started = s.dtlsStarted {
                    let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
                    counters.handshakeSeconds.append(seconds)
                    if counters.handshakeSeconds.count > 256 { counters.handshakeSeconds.removeFirst() }
                }
                logger.info(
                    "DTLS connected", metadata: ["session.id": "\(s.id)", "srtp.profile": "\(keys.profile)"])
                s.hub.emit(.dtlsConnected(profile: keys.profile.description))
            case .failed(let error):
                counters.dtlsFailures += 1
                close(s, reason: "DTLS failed: \(error)", sendAlert: false)
                return
            case .closed:
                close(s, reason: "the client closed the DTLS association", sendAlert: false)
                return
            case .applicationData:
                break  // data channels are rejected in the answer; nothing to deliver
            }
        }
        scheduleDTLSTimer(s)
    }

    /// The client's first authenticated SRTP or SRTCP packet proves it received the server's last handshake flight,
    /// so nothing will need retransmitting: the OpenSSL state goes (the SRTP keys were taken at completion).
    private func releaseDTLS(_ s: MediaSession) {
        s.dtlsTimer?.cancel()
        s.dtlsTimer = nil
        s.dtls = nil
        counters.dtlsReleased += 1
        heapTrimmer.freed()
    }

    private func scheduleDTLSTimer(_ s: MediaSession) {
        s.dtlsTimer?.cancel()
        s.dtlsTimer = nil
        guard !s.isClosed, let timeout = s.dtls?.nextTimeout else { return }
        let bound = NIOLoopBound(s, eventLoop: loop)
        s.dtlsTimer = loop.scheduleTask(in: timeout.timeAmount) { [self] in
            let s = bound.value
            guard !s.isClosed, let dtls = s.dtls else { return }
            self.process(dtls.handleTimeout(), session: s, replyTo: nil)
            self.touched()
        }
    }

    // MARK: - SRTP

    private func handleSRTP(_ input: ByteBuffer, session s: MediaSession) {
        guard let srtp = s.srtp, input.readableBytes >= 8 else { return countDropped() }
        let length = input.readableBytes
        var buffer = scratch.take() ?? allocator.buffer(capacity: 2048 + SRTPSession.maxRTCPTrailerLength)
        buffer.clear(minimumCapacity: length + SRTPSession.maxRTCPTrailerLength)
        defer { scratch = buffer }  // reused by the next packet (copy-on-write if something kept a reference)
        buffer.writeImmutableBuffer(input)
        let secondByte = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) ?? 0
        let isRTCP = PacketClass.isRTCP(secondByte: secondByte)
        let result: Int? = buffer.withUnsafeMutableReadableBytes { p in
            if isRTCP {
                return try? srtp.unprotectRTCP(p, length: length)
            } else {
                return try? srtp.unprotectRTP(p, length: length)
            }
        }
        guard let plainLength = result else { return countDropped() }
        buffer.moveWriterIndex(to: buffer.readerIndex + plainLength)
        // Authenticated media from the client keeps the session alive like a connectivity check does: some ICE
        // agents (libnice, so GStreamer's webrtcbin) keep a path alive with Binding *indications* only, which carry
        // no integrity and prove nothing, and never send RFC 7675 consent requests. Only the client holds the SRTP
        // keys, so this cannot be forged.
        s.lastConsent = tickTime
        if s.dtls != nil { releaseDTLS(s) }
        if isRTCP {
            return router.handleRTCP(buffer, from: s, core: self)
        }
        guard let header = RTPHeader(parsing: buffer) else { return countDropped() }
        router.route(rtp: &buffer, header: header, from: s, core: self)
    }

    /// Copies the plain RTP packet `source`, gives it `payloadType` (when set) and the slot's header fields (when
    /// `rewrite` is set; else the SSRC, sequence number and timestamp stay the publisher's), protects it with `q`'s
    /// SRTP and sends it on `q`'s selected path.
    ///
    /// Over UDP the packet is written, rewritten and protected in a slot of `udpSender`'s arena and leaves with the
    /// tick's `sendmmsg` (no allocation); over ICE-TCP it goes through a `ByteBuffer` and the connection's channel.
    func forwardRTP(
        _ source: ByteBuffer, payloadType: UInt8?, rewrite: RTPSlotRewrite? = nil, to q: MediaSession, kind: SFUTrack.Kind
    ) {
        guard let srtp = q.srtp else { return countDropped() }
        let length = source.readableBytes
        if configuration.batchUDPSends, let destination = q.selectedUDPName, let sender = udpSender,
            length + SRTPSession.maxTrailerLength <= UDPBatchSender.slotSize
        {
            if sender.isFull { flushBatch() }
            let slot = sender.nextSlot
            source.withUnsafeReadableBytes { slot.copyMemory(from: $0) }
            guard rewrite.apply(payloadType: payloadType, to: UnsafeMutableRawBufferPointer(rebasing: slot[0..<length]))
            else { return countDropped() }
            guard let newLength = try? srtp.protectRTP(slot, length: length) else { return countDropped() }
            sender.commit(length: newLength, to: destination, receivedAt: tickTime.uptimeNanoseconds)
            counters.mediaPacketsForwarded += 1
            switch kind {
            case .audio: counters.audioPacketsForwarded += 1
            case .video: counters.videoPacketsForwarded += 1
            }
            counters.bytesForwarded += UInt64(newLength)
            touched()
            return
        }
        guard let path = q.selected else { return countDropped() }
        var packet = allocator.buffer(capacity: length + SRTPSession.maxTrailerLength)
        packet.writeImmutableBuffer(source)
        let protected: Int? = packet.withVeryUnsafeMutableBytes { storage in
            guard rewrite.apply(payloadType: payloadType, to: UnsafeMutableRawBufferPointer(rebasing: storage[0..<length]))
            else { return nil }
            return try? srtp.protectRTP(storage, length: length)
        }
        guard let newLength = protected, newLength <= packet.capacity else { return countDropped() }
        packet.moveWriterIndex(to: newLength)
        counters.mediaPacketsForwarded += 1
        switch kind {
        case .audio: counters.audioPacketsForwarded += 1
        case .video: counters.videoPacketsForwarded += 1
        }
        counters.bytesForwarded += UInt64(newLength)
        send(packet, on: path)
    }

    /// Forwards the plain audio packet of speaker `p` to every listener of its `audioFanout` through `pool` (this
    /// thread and the pool's helpers; see `FanoutPool`). Returns the copies sent.
    func forwardAudioFanout(_ packet: ByteBuffer, header: RTPHeader, from p: MediaSession, pool: FanoutPool) -> Int {
        let receivedAt = tickTime.uptimeNanoseconds
        var forwarded: UInt64 = 0
        let deferred = packet.withUnsafeReadableBytes { bytes in
            p.audioFanout.withUnsafeBufferPointer { fanout in
                pool.run(
                    packet: bytes, header: header, speaker: p, fanout: fanout, receivedAt: receivedAt,
                    nowNanos: receivedAt
                ) { lane in
                    forwarded += lane.forwarded
                    counters.mediaPacketsForwarded += lane.forwarded
                    counters.audioPacketsForwarded += lane.forwarded
                    counters.bytesForwarded += lane.bytesForwarded
                    counters.packetsOut += lane.packetsOut
                    counters.bytesOut += lane.bytesOut
                    counters.droppedPackets += lane.failed + lane.bufferFull + lane.dropped
                    counters.sendErrors += lane.failed
                    counters.sendBufferFull += lane.bufferFull
                    forwardLatency.merge(lane.latency)
                }
            }
        }
        // Listeners on ICE-TCP: through their connection's channel, here.
        for k in deferred {
            let (q, i) = p.audioFanout[k]
            guard let rewrite = q.audioSlots[i].forwarding(header, from: p, nowNanos: receivedAt) else { continue }
            forwardRTP(packet, payloadType: q.slotAudioPayloadType, rewrite: rewrite, to: q, kind: .audio)
            forwarded += 1
        }
        touched()
        return Int(forwarded)
    }

    /// Sends raw plain RTP bytes (a retransmission) to `q`, like `forwardRTP`.
    func forwardRTP(bytes: UnsafeRawBufferPointer, payloadType: UInt8?, to q: MediaSession) {
        var packet = allocator.buffer(capacity: bytes.count + SRTPSession.maxTrailerLength)
        packet.writeBytes(bytes)
        forwardRTP(packet, payloadType: payloadType, to: q, kind: .video)
        counters.packetsRetransmitted += 1
    }

    /// Protects the plain RTCP compound packet in `packet` with `s`'s SRTCP and sends it on `s`'s selected path.
    func sendRTCP(_ packet: inout ByteBuffer, to s: MediaSession) {
        guard let srtp = s.srtp, let path = s.selected else { return }
        let length = packet.readableBytes
        if packet.readerIndex != 0 || packet.capacity - length < SRTPSession.maxRTCPTrailerLength {
            var copy = allocator.buffer(capacity: length + SRTPSession.maxRTCPTrailerLength)
            copy.writeBuffer(&packet)
            packet = copy
        }
        let protected: Int? = packet.withVeryUnsafeMutableBytes { storage in
            try? srtp.protectRTCP(storage, length: length)
        }
        guard let newLength = protected, newLength <= packet.capacity else { return countDropped() }
        packet.moveWriterIndex(to: newLength)
        send(packet, on: path)
    }

    func makeBuffer(capacity: Int) -> ByteBuffer { allocator.buffer(capacity: capacity) }

    /// Runs `body` on the loop after `delay`.
    func schedule(after delay: TimeAmount, _ body: @escaping () -> Void) {
        let bound = NIOLoopBound(body, eventLoop: loop)
        loop.scheduleTask(in: delay) { [self] in
            bound.value()
            self.touched()
        }
    }

    /// RTCP counters, updated by the router.
    func countRTCP(_ change: (inout MediaMetrics) -> Void) { change(&counters) }

    /// Audio from a muted participant, dropped at the server.
    func countMuted() {
        counters.mutedDropped += 1
    }

    func noteAudio(from p: MediaSession) {
        p.lastAudio = tickTime
    }

    /// Rewrites the SSRC of the plain RTP packet in `packet`, protects it with `session`'s SRTP and sends it on the
    /// selected path. Drops it if the session is not keyed or has no path.
    /// Over UDP the packet is copied into `udpSender`'s arena (as in `forwardRTP`) and `packet` is left unchanged.
    func sendRTP(_ packet: inout ByteBuffer, ssrc: UInt32, to s: MediaSession) {
        guard let srtp = s.srtp, let path = s.selected else { return countDropped() }
        let length = packet.readableBytes
        if configuration.batchUDPSends, case .udp(let address) = path, let sender = udpSender,
            length + SRTPSession.maxTrailerLength <= UDPBatchSender.slotSize
        {
            if sender.isFull { flushBatch() }
            let slot = sender.nextSlot
            packet.withUnsafeReadableBytes { slot.copyMemory(from: $0) }
            guard RTPRewriter.setSSRC(ssrc, in: UnsafeMutableRawBufferPointer(rebasing: slot[0..<length])),
                let newLength = try? srtp.protectRTP(slot, length: length),
                sender.commit(length: newLength, to: address, receivedAt: tickTime.uptimeNanoseconds)
            else { return countDropped() }
            counters.mediaPacketsForwarded += 1
            touched()
            return
        }
        if packet.readerIndex != 0 || packet.capacity - length < SRTPSession.maxTrailerLength {
            var copy = allocator.buffer(capacity: length + SRTPSession.maxRTCPTrailerLength)
            copy.writeBuffer(&packet)
            packet = copy
        }
        let protected: Int? = packet.withVeryUnsafeMutableBytes { storage in
            guard RTPRewriter.setSSRC(ssrc, in: UnsafeMutableRawBufferPointer(rebasing: storage[0..<length])) else {
                return nil
            }
            return try? srtp.protectRTP(storage, length: length)
        }
        guard let newLength = protected, newLength <= packet.capacity else { return countDropped() }
        packet.moveWriterIndex(to: newLength)
        counters.mediaPacketsForwarded += 1
        send(packet, on: path)
    }

    // MARK: - Output

    private func send(_ payload: ByteBuffer, on path: MediaPath) {
        switch path {
        case .udp(let address):
            // Every UDP datagram (STUN, DTLS, RTCP too) leaves through the batch sender: a datagram the kernel
            // refuses is dropped there, whereas a refused NIO write would close the socket for every session.
            guard let sender = udpSender, payload.readableBytes <= UDPBatchSender.slotSize else {
                return countDropped()
            }
            if sender.isFull { flushBatch() }
            let slot = sender.nextSlot
            payload.withUnsafeReadableBytes { slot.copyMemory(from: $0) }
            guard sender.commit(length: payload.readableBytes, to: address, receivedAt: UDPBatchSender.notForwarded)
            else { return countDropped() }
        case .tcp(let c):
            guard payload.readableBytes <= 0xFFFF else { return countDropped() }
            var framed = allocator.buffer(capacity: payload.readableBytes + 2)
            framed.writeInteger(UInt16(payload.readableBytes))
            framed.writeImmutableBuffer(payload)
            c.channel.write(framed, promise: nil)
            channelsToFlush[ObjectIdentifier(c.channel)] = c.channel
        }
        counters.packetsOut += 1
        counters.bytesOut += UInt64(payload.readableBytes)
        touched()
    }

    /// Flushes written channels and publishes counters once per event-loop tick, after all reads of the tick.
    func touched() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [self] in self.flush() }
    }

    private func flush() {
        flushScheduled = false
        flushBatch()
        if !channelsToFlush.isEmpty {
            // Swapped with a spare dictionary rather than copied: copying would make `removeAll(keepingCapacity:)`
            // allocate a new storage every tick. Channels written while flushing land in the other one (next tick).
            swap(&channelsToFlush, &channelsBeingFlushed)
            for channel in channelsBeingFlushed.values { channel.flush() }
            channelsBeingFlushed.removeAll(keepingCapacity: true)
        }
        publishMetrics()
    }

    /// Called after each received UDP datagram is handled, and at the end of each read burst (`readBurstEnded`):
    /// sends the batch early once it holds `UDPBatchSender.earlyFlushCount` datagrams, so that the first receivers of
    /// a burst do not wait for the whole burst's fan-out (forwarding latency), while small fan-outs still share one
    /// `sendmmsg` per tick.
    func datagramHandled() {
        if let sender = udpSender, sender.count >= UDPBatchSender.earlyFlushCount { flushBatch() }
    }

    /// The end of one read burst on the UDP socket: send what the burst produced.
    func readBurstEnded() {
        flushBatch()
    }

    /// Hands the datagrams batched in `udpSender` to the kernel (one `sendmmsg` per up to 512), recording each one's
    /// receive→send latency. Whatever the socket cannot take now goes to NIO's write queue.
    func flushBatch() {
        guard let sender = udpSender, sender.count > 0 else { return }
        guard let channel = udpChannel else { return sender.discard() }
        _ = channel
        let result = sender.flush(latency: &forwardLatency)
        counters.packetsOut += UInt64(result.sent)
        counters.bytesOut += UInt64(result.bytes)
        if result.failed > 0 {
            counters.droppedPackets += UInt64(result.failed)
            counters.sendErrors += UInt64(result.failed)
        }
        if result.bufferFull > 0 {
            counters.droppedPackets += UInt64(result.bufferFull)
            counters.sendBufferFull += UInt64(result.bufferFull)
        }
    }

    /// Logs and counts the sections of an offer the answer rejected (one log line per offer, each section with its
    /// reason), so a client whose tracks never arrive can be told why.
    private func noteRejected(_ rejected: [SFUAnswer.Rejected], session: MediaSession) {
        guard !rejected.isEmpty else { return }
        for r in rejected { counters.rejectedSections[r.reason.rawValue, default: 0] += 1 }
        let list = rejected.map { "\($0.index):\($0.media)(mid \($0.mid ?? "none")): \($0.reason.rawValue)" }
        logger.info(
            "offer sections rejected",
            metadata: [
                "session.id": "\(session.id)", "session.label": "\(session.label)",
                "sections": "\(list.joined(separator: "; "))",
            ])
        publishMetrics()
    }

    private func publishMetrics() {
        counters.sessions = sessionsByID.count
        counters.renegotiationsRequested = router.renegotiationsRequested
        let snapshot = counters
        metricsSnapshot.withLock { $0 = snapshot }
        // The histogram is published as its fixed-size struct; readers turn it into arrays (`MediaServer.metrics`), so
        // publishing never allocates, whoever holds an older snapshot.
        let latency = forwardLatency
        latencySnapshot.withLock { $0 = latency }
    }

    // MARK: - Lifetime

    /// RFC 7675: close sessions whose checks stopped; also sessions that never connected.
    private func sweep() {
        let now = NIODeadline.now()
        counters.calls = router.snapshots(now: now)
        router.sendReports(core: self, now: now)
        for s in sessionsByID.values where s.dtls != nil && s.srtp != nil {
            // Keyed, and no DTLS from the client for a while: it has the server's last flight (it would have sent
            // its own again otherwise), so the DTLS state can go even if the client never sends media.
            if let last = s.lastDTLSInput, now - last >= configuration.dtlsReleaseDelay.timeAmount { releaseDTLS(s) }
        }
        heapTrimmer.tick()
        let timeout = configuration.consentTimeout.timeAmount
        for s in Array(sessionsByID.values) where now - s.lastConsent > timeout {
            if s.selected == nil && s.paths.isEmpty {
                counters.iceFailures += 1
                close(s, reason: "ICE did not connect within \(configuration.consentTimeout)", sendAlert: false)
            } else {
                counters.consentExpirations += 1
                close(
                    s, reason: "ICE consent expired: no connectivity check and no media from the client for \(configuration.consentTimeout)",
                    sendAlert: true)
            }
        }
        touched()
    }

    private func close(_ s: MediaSession, reason: String, sendAlert: Bool) {
        guard !s.isClosed else { return }
        if sendAlert, let path = s.selected, let dtls = s.dtls {
            for d in dtls.close().datagrams { send(ByteBuffer(bytes: d), on: path) }
        }
        s.isClosed = true
        s.dtlsTimer?.cancel()
        s.dtlsTimer = nil
        sessionsByID.removeValue(forKey: s.id)
        if sessionsByUfrag[s.localUfrag] === s { sessionsByUfrag.removeValue(forKey: s.localUfrag) }
        for path in s.paths {
            switch path {
            case .udp(let a):
                if udpRoutes[a] === s { udpRoutes.removeValue(forKey: a) }
            case .tcp(let c):
                c.session = nil
                c.channel.close(promise: nil)
            }
        }
        s.paths.removeAll()
        s.selected = nil
        heapTrimmer.freed()
        if let call = router.remove(s) { router.reconcile(call) }
        hubs.withLock { _ = $0.removeValue(forKey: s.id) }
        publishMetrics()
        logger.info("media session closed", metadata: ["session.id": "\(s.id)", "reason": "\(reason)"])
        s.hub.emit(.closed(reason: reason))
        touched()
    }
}

/// The header fields of an audio slot's stream for one forwarded packet.
struct RTPSlotRewrite {
    var sequence: UInt16
    var timestamp: UInt32
    var ssrc: UInt32
    var marker: Bool
}

extension Optional where Wrapped == RTPSlotRewrite {
    /// Sets the payload type (when given) and the slot's fields (when self is set) in the plain RTP `packet`.
    func apply(payloadType: UInt8?, to packet: UnsafeMutableRawBufferPointer) -> Bool {
        if let r = self {
            return RTPRewriter.rewrite(
                packet, payloadType: payloadType, sequence: r.sequence, timestamp: r.timestamp, ssrc: r.ssrc, marker: r.marker)
        }
        guard let payloadType else { return true }
        return RTPRewriter.setPayloadType(payloadType, in: packet)
    }
}
