import CallsWire
import NIOCore

/// The sessions of one call (one channel) on the media event loop, in join order.
final class CallRoute {
    let key: String
    var members: [MediaSession] = []
    var packetsForwarded: UInt64 = 0

    init(key: String) {
        self.key = key
    }
}

/// Routes decrypted media on the media event loop.
///
/// - An echo session gets its own audio back under the server's SSRC.
/// - A call participant's audio goes, while it is unmuted, to every other participant of its call that has a
///   receive slot announcing that SSRC; the presenter's screen likewise. Packets keep the publisher's SSRC, sequence
///   numbers and timestamps; only the payload type changes to the receiver's.
final class CallRouter {
    private(set) var calls: [String: CallRoute] = [:]
    /// Key frames to ask for once the answer that announced a screen to a viewer is out (call, video SSRC).
    var pendingKeyFrames: [(CallRoute, UInt32)] = []

    func add(_ s: MediaSession) {
        guard case .call(let key) = s.route else { return }
        let call = calls[key] ?? CallRoute(key: key)
        calls[key] = call
        call.members.append(s)
        s.callRoute = call
    }

    /// Takes `s` out of its call; returns the call if others remain in it (they need a renegotiation).
    func remove(_ s: MediaSession) -> CallRoute? {
        guard let call = s.callRoute else { return nil }
        s.callRoute = nil
        call.members.removeAll { $0 === s }
        if call.members.isEmpty {
            calls.removeValue(forKey: call.key)
            return nil
        }
        return call
    }

    /// Per-call figures for metrics (once a second, not per packet).
    func snapshots(now: NIODeadline) -> [CallMediaSnapshot] {
        calls.values.map { call in
            var speakers = 0
            var presenters = 0
            for s in call.members {
                if s.audioForwarding, let last = s.lastAudio, now - last < .seconds(2) { speakers += 1 }
                if s.mayPublishVideo, s.publishedVideo != nil { presenters += 1 }
            }
            return CallMediaSnapshot(
                key: call.key, participants: call.members.count, speakers: speakers, presenters: presenters,
                packetsForwarded: call.packetsForwarded)
        }
    }

    // MARK: Negotiation

    /// The tracks `q` should receive: every other member's microphone, and the presenter's screen.
    func wantedTracks(for q: MediaSession) -> [SFUTrack] {
        guard let call = q.callRoute else { return [] }
        var out: [SFUTrack] = []
        for p in call.members where p !== q && !p.isClosed {
            if let a = p.publishedAudio, let ssrc = a.ssrcs.first {
                out.append(
                    SFUTrack(kind: .audio, ssrc: ssrc, streamID: p.participant, trackID: "audio-\(p.participant)", cname: p.cname))
            }
            if p.mayPublishVideo, let v = p.publishedVideo, let ssrc = v.ssrcs.first {
                out.append(
                    SFUTrack(kind: .video, ssrc: ssrc, streamID: p.participant, trackID: "screen-\(p.participant)", cname: p.cname))
            }
        }
        return out
    }

    /// Answers `offer` for call participant `s` and records what it publishes and receives.
    func answer(_ offer: WebRTCOffer, for s: MediaSession, candidates: [SDPCandidate], fingerprint: String) -> String {
        var previous: [String: UInt32] = [:]
        for slot in s.slots { if let ssrc = slot.ssrc { previous[slot.mid] = ssrc } }
        s.answerVersion += 1
        let answer = SFUAnswer(
            offer: offer,
            parameters: SFUAnswerParameters(
                iceUfrag: s.localUfrag, icePwd: s.localPassword, fingerprint: fingerprint, candidates: candidates,
                sessionID: s.sdpSessionID, sessionVersion: s.answerVersion, tracks: wantedTracks(for: s),
                previousAssignments: previous, mayPublishVideo: s.mayPublishVideo))
        let hadVideo = s.announcedSSRCs
        s.publishedAudio = answer.publishedAudio
        s.publishedVideo = answer.publishedVideo
        if answer.publishedVideo != nil {
            if s.retransmissions == nil { s.retransmissions = RetransmissionBuffer(capacity: 512, slotSize: 1500) }
        } else {
            s.retransmissions = nil
        }
        defer {
            // A viewer that just got a screen needs a key frame to start decoding.
            for slot in s.slots where slot.kind == .video {
                if let ssrc = slot.ssrc, !hadVideo.contains(ssrc), let call = s.callRoute {
                    pendingKeyFrames.append((call, ssrc))
                }
            }
        }
        s.slots = answer.slots
        s.announcedSSRCs = Set(answer.slots.compactMap(\.ssrc))
        s.slotAudioPayloadType = answer.slots.first { $0.kind == .audio }?.payloadType
        s.slotVideoPayloadType = answer.slots.first { $0.kind == .video }?.payloadType
        s.requestedSlots = nil
        return answer.sdp
    }

    /// Asks every member whose wanted tracks differ from what its last answer announced to make a new offer (once
    /// per difference).
    func reconcile(_ call: CallRoute) {
        for q in call.members where !q.isClosed {
            let wanted = wantedTracks(for: q)
            let wantedSSRCs = Set(wanted.map(\.ssrc))
            guard wantedSSRCs != q.announcedSSRCs else {
                q.requestedSlots = nil
                q.requestedSSRCs = nil
                continue
            }
            guard q.requestedSSRCs != wantedSSRCs else { continue }
            q.requestedSSRCs = wantedSSRCs
            let audio = wanted.filter { $0.kind == .audio }.count
            let video = wanted.filter { $0.kind == .video }.count
            q.requestedSlots = (audio, video)
            q.hub.emit(.renegotiationNeeded(audioSlots: audio, videoSlots: video))
        }
    }

    // MARK: Forwarding

    func route(rtp packet: inout ByteBuffer, header: RTPHeader, from p: MediaSession, core: MediaCore) {
        switch p.route {
        case .echo:
            guard header.payloadType == p.audioPayloadType, p.sendsAudio else { return core.countDropped() }
            core.sendRTP(&packet, ssrc: p.audioSSRC, to: p)
        case .call:
            guard let call = p.callRoute else { return core.countDropped() }
            if let audio = p.publishedAudio, header.payloadType == audio.payloadType,
                audio.ssrcs.isEmpty || audio.ssrcs.contains(header.ssrc)
            {
                record(header, from: p, clockRate: 48000, core: core)
                guard p.audioForwarding else { return core.countMuted() }
                core.noteAudio(from: p)
                for q in call.members where q !== p && q.isReady && q.announcedSSRCs.contains(header.ssrc) {
                    core.forwardRTP(packet, payloadType: q.slotAudioPayloadType, to: q, kind: .audio)
                    call.packetsForwarded &+= 1
                }
            } else if p.mayPublishVideo, let video = p.publishedVideo, header.payloadType == video.payloadType,
                video.ssrcs.isEmpty || video.ssrcs.contains(header.ssrc)
            {
                record(header, from: p, clockRate: 90000, core: core)
                _ = p.retransmissions?.store(sequence: header.sequenceNumber, buffer: packet)
                for q in call.members where q !== p && q.isReady && q.announcedSSRCs.contains(header.ssrc) {
                    core.forwardRTP(packet, payloadType: q.slotVideoPayloadType, to: q, kind: .video)
                    call.packetsForwarded &+= 1
                }
            } else {
                core.countDropped()
            }
        }
    }

    // MARK: RTCP

    private func record(_ header: RTPHeader, from p: MediaSession, clockRate: Int, core: MediaCore) {
        let seconds = Double(core.tickTime.uptimeNanoseconds) / 1e9
        if p.receiveStats[header.ssrc] == nil {
            guard p.receiveStats.count < 8 else { return }  // a publisher has one audio and one screen SSRC
            p.receiveStats[header.ssrc] = RTPReceiveStatistics(ssrc: header.ssrc)
        }
        p.receiveStats[header.ssrc]?.record(
            sequenceNumber: header.sequenceNumber, timestamp: header.timestamp, arrivalSeconds: seconds,
            clockRate: clockRate)
    }

    /// Feedback from `q` (after SRTCP unprotect): PLI/FIR go to the presenter (rate-limited), NACKs are answered
    /// from the presenter's retransmission buffer, REMB is kept as `q`'s estimate, SRs update `q`'s receive
    /// statistics. Malformed compounds are dropped; nothing else in them is acted on.
    func handleRTCP(_ buffer: ByteBuffer, from q: MediaSession, core: MediaCore) {
        guard let call = q.callRoute else { return }  // echo sessions: reports are consumed
        let now = core.tickTime.uptimeNanoseconds
        buffer.withUnsafeReadableBytes { raw in
            var reader = RTCPReader(raw)
            while let packet = reader.next() {
                switch packet.packetType {
                case RTCPPacketType.senderReport:
                    if let sr = RTCPSenderReport(packet) {
                        q.receiveStats[sr.senderSSRC]?.recordSenderReport(ntp: sr.ntpTimestamp, at: now)
                    }
                case RTCPPacketType.payloadSpecificFeedback:
                    guard let feedback = RTCPFeedback(packet) else { continue }
                    switch feedback.format {
                    case RTCPFeedbackFormat.pictureLossIndication:
                        requestKeyFrame(ssrc: feedback.mediaSSRC, in: call, core: core)
                    case RTCPFeedbackFormat.fullIntraRequest:
                        if let fir = RTCPFullIntraRequest(packet) {
                            fir.forEachEntry { requestKeyFrame(ssrc: $0.ssrc, in: call, core: core) }
                        }
                    case RTCPFeedbackFormat.applicationLayer:
                        if let remb = RTCPREMB(packet) { q.receiverEstimate = remb.bitrate }
                    default:
                        break
                    }
                case RTCPPacketType.transportFeedback:
                    guard packet.format == RTCPFeedbackFormat.genericNACK, let nack = RTCPGenericNACK(packet) else { continue }
                    core.countRTCP { $0.nacksReceived += 1 }
                    guard let p = publisher(ofVideo: nack.mediaSSRC, in: call), p !== q, p.retransmissions != nil else {
                        core.countRTCP { $0.retransmissionMisses += UInt64(nack.lostCount) }
                        continue
                    }
                    nack.forEachLostSequence { seq in
                        let sent = p.retransmissions?.withPacket(sequence: seq) { bytes in
                            core.forwardRTP(bytes: bytes, payloadType: q.slotVideoPayloadType, to: q)
                        }
                        if sent == nil { core.countRTCP { $0.retransmissionMisses += 1 } }
                    }
                default:
                    break
                }
            }
        }
    }

    private func publisher(ofVideo ssrc: UInt32, in call: CallRoute) -> MediaSession? {
        call.members.first { $0.mayPublishVideo && ($0.publishedVideo?.ssrcs.contains(ssrc) ?? false) }
    }

    /// Sends a PLI to the publisher of `ssrc` unless one went out less than the limiter's interval ago; then one
    /// PLI is sent when the interval ends.
    func requestKeyFrame(ssrc: UInt32, in call: CallRoute, core: MediaCore) {
        guard let p = publisher(ofVideo: ssrc, in: call), p.isReady else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        guard p.keyFrameRequests.shouldForward(source: ssrc, now: now) else {
            core.countRTCP { $0.keyFrameRequestsLimited += 1 }
            guard !p.keyFrameRequestPending else { return }
            p.keyFrameRequestPending = true
            let delay = p.keyFrameRequests.delayUntilAllowed(source: ssrc, now: now)
            core.schedule(after: .nanoseconds(Int64(min(delay, 5_000_000_000)))) { [weak self, weak p] in
                guard let self, let p, !p.isClosed, let call = p.callRoute else { return }
                p.keyFrameRequestPending = false
                self.requestKeyFrame(ssrc: ssrc, in: call, core: core)
            }
            return
        }
        var buffer = core.makeBuffer(capacity: 12 + SRTPSession.maxRTCPTrailerLength)
        _ = RTCPBuilder.writePictureLossIndication(senderSSRC: p.audioSSRC, mediaSSRC: ssrc, into: &buffer)
        core.sendRTCP(&buffer, to: p)
        core.countRTCP { $0.keyFrameRequestsForwarded += 1 }
    }

    /// Sends the key-frame requests queued by answers (called after the answer is handed out).
    func flushPendingKeyFrames(core: MediaCore) {
        let pending = pendingKeyFrames
        pendingKeyFrames.removeAll()
        for (call, ssrc) in pending { requestKeyFrame(ssrc: ssrc, in: call, core: core) }
    }

    /// Once a second: a receiver report to every publisher about what the server received from it, and a REMB
    /// to the presenter with the lowest estimate its viewers reported (capped), so its encoder fits them.
    func sendReports(core: MediaCore, now: NIODeadline) {
        let nanos = now.uptimeNanoseconds
        for call in calls.values {
            for p in call.members where p.isReady && !p.receiveStats.isEmpty {
                var blocks: [RTCPReportBlock] = []
                for ssrc in p.receiveStats.keys.sorted() {
                    if let block = p.receiveStats[ssrc]?.makeReportBlock(at: nanos) { blocks.append(block) }
                }
                var buffer = core.makeBuffer(capacity: 256)
                guard (try? RTCPBuilder.writeReceiverReport(senderSSRC: p.audioSSRC, reportBlocks: blocks, into: &buffer)) != nil
                else { continue }
                var remb = false
                if p.mayPublishVideo, let video = p.publishedVideo, let ssrc = video.ssrcs.first {
                    let estimates = call.members.compactMap { $0 === p ? nil : $0.receiverEstimate }
                    let bitrate = min(estimates.min() ?? Self.defaultScreenBitrate, Self.maximumScreenBitrate)
                    remb = (try? RTCPBuilder.writeREMB(senderSSRC: p.audioSSRC, bitrate: bitrate, ssrcs: [ssrc], into: &buffer)) != nil
                }
                core.sendRTCP(&buffer, to: p)
                core.countRTCP {
                    $0.receiverReportsSent += 1
                    if remb { $0.rembSent += 1 }
                }
            }
        }
    }

    /// REMB sent to a presenter before any viewer reported an estimate, and the ceiling of any REMB, in bit/s.
    static let defaultScreenBitrate: UInt64 = 1_500_000
    static let maximumScreenBitrate: UInt64 = 2_500_000
}
