import CallsWire
import NIOCore

/// The sessions of one call (one channel) on the media event loop, in join order.
final class CallRoute {
    let key: String
    var members: [MediaSession] = []
    var packetsForwarded: UInt64 = 0
    /// The call's current speakers (at most `audioSlots + 1`, so a listener that is one of them still has a full set
    /// of others), each keeping its position while ranked. Listeners' slots are filled from it.
    var ranking: [MediaSession] = []
    /// The sessions whose `audioFanout` was built by the last reassignment (cleared by the next one).
    var fanoutOwners: [MediaSession] = []
    /// Unmuted participants that spoke in the last seconds: the candidates for the ranking.
    var recentSpeakers: [MediaSession] = []
    var lastEvaluationNanos: UInt64 = 0

    init(key: String) {
        self.key = key
    }
}

/// Routes decrypted media on the media event loop.
///
/// - An echo session gets its own audio back under the server's SSRC.
/// - Audio in a call goes through a fixed number of **audio slots** per listener (`audioSlots`): the call ranks its
///   unmuted speakers (RFC 6464 audio level when the client sends it, else recent activity; with hysteresis) and puts
///   the top ones into each listener's slots, never the listener itself. Each slot is one continuous stream under a
///   constant SSRC of the server's: sequence numbers and timestamps are rewritten so that a change of speaker looks
///   like a new talkspurt. A listener's cost is therefore the same in a call of 5 and of 1,000, and joining or leaving
///   needs no renegotiation by anyone else.
/// - The presenter's screen goes to every other participant under the presenter's own SSRC (one video slot, added by
///   a renegotiation when a screen starts); only the payload type changes to the receiver's.
final class CallRouter {
    private(set) var calls: [String: CallRoute] = [:]
    /// Key frames to ask for once the answer that announced a screen to a viewer is out (call, video SSRC).
    var pendingKeyFrames: [(CallRoute, UInt32)] = []
    /// Audio receive slots per listener.
    let audioSlotCount: Int
    /// `renegotiationNeeded` requests sent so far.
    private(set) var renegotiationsRequested: UInt64 = 0

    /// A packet whose audio level is at most this (-dBov) counts as speech.
    static let speechLevel: UInt8 = 70
    /// The loudness given to packets of clients that send no audio level (recent activity stands in for speech).
    static let activityLoudness: Double = 60
    /// A speaker counts as active for this long after its last speech packet.
    static let activeNanos: UInt64 = 400_000_000
    /// A ranked speaker silent this long gives its place to a new active one.
    static let releaseNanos: UInt64 = 1_000_000_000
    /// An active ranked speaker keeps its place at least this long, and is displaced only by a speaker louder by
    /// `displaceMargin` (hysteresis: slots do not flap between two voices).
    static let minimumHoldNanos: UInt64 = 1_000_000_000
    static let displaceMargin: Double = 10
    /// How often the ranking is re-evaluated while someone speaks (an unranked speaker is looked at sooner).
    static let evaluationNanos: UInt64 = 100_000_000
    static let newSpeakerEvaluationNanos: UInt64 = 20_000_000
    /// Recent speakers silent this long leave the candidate list.
    static let forgetNanos: UInt64 = 3_000_000_000

    init(audioSlots: Int = 3) {
        self.audioSlotCount = audioSlots
    }

    func add(_ s: MediaSession) {
        guard case .call(let key) = s.route else { return }
        let call = calls[key] ?? CallRoute(key: key)
        calls[key] = call
        call.members.append(s)
        s.callRoute = call
        var ssrcs: Set<UInt32> = [s.audioSSRC, 0]
        s.audioSlots = (0..<audioSlotCount).map { _ in
            var ssrc = UInt32.random(in: 1...UInt32.max)
            while ssrcs.contains(ssrc) { ssrc = UInt32.random(in: 1...UInt32.max) }
            ssrcs.insert(ssrc)
            return AudioSlot(ssrc: ssrc)
        }
        assignSlots(s, in: call)
    }

    /// Takes `s` out of its call; returns the call if the others' negotiated tracks change (it presented a screen),
    /// so they need a reconciliation. A listener leaving costs the others nothing; a ranked speaker leaving refills
    /// the slots it had.
    func remove(_ s: MediaSession) -> CallRoute? {
        guard let call = s.callRoute else { return nil }
        let presented = s.mayPublishVideo && s.publishedVideo != nil
        s.callRoute = nil
        call.members.removeAll { $0 === s }
        for slot in s.audioSlots {
            slot.source?.audioFanout.removeAll { $0.listener === s }
        }
        s.audioSlots.removeAll()
        s.audioFanout.removeAll()
        if s.isRecentSpeaker {
            s.isRecentSpeaker = false
            call.recentSpeakers.removeAll { $0 === s }
        }
        if call.members.isEmpty {
            call.ranking.removeAll()
            call.fanoutOwners.removeAll()
            calls.removeValue(forKey: call.key)
            return nil
        }
        if let i = call.ranking.firstIndex(where: { $0 === s }) {
            call.ranking.remove(at: i)
            s.rankedSinceNanos = nil
            reassign(call)
        }
        return presented ? call : nil
    }

    /// A participant muted at the server leaves the ranking at once (a muted participant never holds a slot).
    func muted(_ s: MediaSession) {
        guard let call = s.callRoute, let i = call.ranking.firstIndex(where: { $0 === s }) else { return }
        call.ranking.remove(at: i)
        s.rankedSinceNanos = nil
        reassign(call)
    }

    // MARK: Speakers

    /// Takes note of one audio packet of unmuted `p` (its RFC 6464 level if it sent one) and re-ranks the call's
    /// speakers when it is time.
    func noteSpeech(_ p: MediaSession, level: RTPAudioLevel?, in call: CallRoute, now: UInt64) {
        let loudness: Double
        let speech: Bool
        if let level {
            p.sendsAudioLevel = true
            loudness = Double(127 - level.level)
            speech = level.level <= Self.speechLevel
        } else if p.sendsAudioLevel {
            loudness = 0  // a packet without the level from a client that sends levels: no evidence of speech
            speech = false
        } else {
            loudness = Self.activityLoudness
            speech = true
        }
        p.speechScore = p.speechScore * 0.8 + loudness * 0.2
        if speech {
            p.lastSpeechNanos = now
            if !p.isRecentSpeaker {
                p.isRecentSpeaker = true
                call.recentSpeakers.append(p)
            }
        }
        if speech, p.rankedSinceNanos == nil, call.ranking.count < audioSlotCount + 1 {
            // A free place: taken at the first word, without waiting for an evaluation.
            p.rankedSinceNanos = now
            call.ranking.append(p)
            reassign(call)
            return
        }
        let since = now &- call.lastEvaluationNanos
        if since >= Self.evaluationNanos || (speech && p.rankedSinceNanos == nil && since >= Self.newSpeakerEvaluationNanos) {
            evaluate(call, now: now)
        }
    }

    /// Re-ranks the call's speakers: active unranked speakers take free places, then places of ranked speakers that
    /// have been silent for `releaseNanos`, then (only clearly louder, after `minimumHoldNanos`) of quieter ones.
    func evaluate(_ call: CallRoute, now: UInt64) {
        call.lastEvaluationNanos = now
        call.recentSpeakers.removeAll { s in
            let stale = s.isClosed || !s.audioForwarding || now &- s.lastSpeechNanos > Self.forgetNanos
            if stale { s.isRecentSpeaker = false }
            return stale
        }
        var candidates = call.recentSpeakers.filter {
            $0.rankedSinceNanos == nil && now &- $0.lastSpeechNanos < Self.activeNanos
        }
        guard !candidates.isEmpty else { return }
        candidates.sort { $0.speechScore > $1.speechScore }
        let capacity = audioSlotCount + 1
        var changed = false
        for c in candidates {
            if call.ranking.count < capacity {
                c.rankedSinceNanos = now
                call.ranking.append(c)
                changed = true
                continue
            }
            var victim: Int?
            var oldest = UInt64.max
            for (i, r) in call.ranking.enumerated() where now &- r.lastSpeechNanos >= Self.releaseNanos {
                if r.lastSpeechNanos < oldest {
                    oldest = r.lastSpeechNanos
                    victim = i
                }
            }
            if victim == nil {
                var quietest = Double.infinity
                for (i, r) in call.ranking.enumerated() where now &- (r.rankedSinceNanos ?? now) >= Self.minimumHoldNanos {
                    if r.speechScore < quietest {
                        quietest = r.speechScore
                        victim = i
                    }
                }
                if let v = victim, c.speechScore <= call.ranking[v].speechScore + Self.displaceMargin { victim = nil }
            }
            guard let v = victim else { continue }
            call.ranking[v].rankedSinceNanos = nil
            c.rankedSinceNanos = now
            call.ranking[v] = c
            changed = true
        }
        if changed { reassign(call) }
    }

    /// Refills every listener's slots from the ranking and rebuilds the speakers' fan-out lists.
    func reassign(_ call: CallRoute) {
        for r in call.fanoutOwners { r.audioFanout.removeAll(keepingCapacity: true) }
        for r in call.ranking { r.audioFanout.removeAll(keepingCapacity: true) }
        for q in call.members where !q.isClosed { assignSlots(q, in: call) }
        call.fanoutOwners = call.ranking
    }

    /// Puts the ranked speakers other than `q` into `q`'s slots (at most `audioSlotCount`: when there are more,
    /// the one silent longest is left out), keeping each speaker in the slot it had, and adds `q` to their fan-outs.
    private func assignSlots(_ q: MediaSession, in call: CallRoute) {
        var desired = call.ranking.filter { $0 !== q }
        if desired.count > q.audioSlots.count, let i = desired.indices.min(by: { desired[$0].lastSpeechNanos < desired[$1].lastSpeechNanos }) {
            desired.remove(at: i)
        }
        var changed = false
        for i in q.audioSlots.indices {
            if let s = q.audioSlots[i].source, !desired.contains(where: { $0 === s }) {
                q.audioSlots[i].source = nil
                changed = true
            }
        }
        for d in desired where !q.audioSlots.contains(where: { $0.source === d }) {
            guard let free = q.audioSlots.firstIndex(where: { $0.source == nil }) else { break }
            q.audioSlots[free].source = d
            changed = true
        }
        for i in q.audioSlots.indices {
            q.audioSlots[i].source?.audioFanout.append((q, i))
        }
        if changed { announceSpeakers(q) }
    }

    /// Tells `q` who speaks in its slots, if that changed since the last time (and once it has an answer).
    func announceSpeakers(_ q: MediaSession, force: Bool = false) {
        guard q.audioSlots.contains(where: { $0.mid != nil }) else { return }
        let now = q.audioSlots.map { $0.source?.participant }
        guard force || now != q.announcedSpeakers else { return }
        q.announcedSpeakers = now
        q.hub.emit(
            .speakers(
                q.audioSlots.enumerated().map {
                    AudioSlotSpeaker(slot: $0.offset, mid: $0.element.mid, ssrc: $0.element.ssrc, participant: $0.element.source?.participant)
                }))
    }

    /// Per-call figures for metrics (once a second, not per packet).
    func snapshots(now: NIODeadline) -> [CallMediaSnapshot] {
        calls.values.map { call in
            var speakers = 0
            var presenters = 0
            var lost: Int64 = 0
            for s in call.members {
                if s.audioForwarding, let last = s.lastAudio, now - last < .seconds(2) { speakers += 1 }
                if s.mayPublishVideo, s.publishedVideo != nil { presenters += 1 }
                for slot in s.audioSlots { lost += Int64(slot.reportedLost) }
            }
            var snapshot = CallMediaSnapshot(
                key: call.key, participants: call.members.count, speakers: speakers, presenters: presenters,
                packetsForwarded: call.packetsForwarded)
            snapshot.listenerReportedLost = lost
            snapshot.rankedSpeakers = call.ranking.count
            return snapshot
        }
    }

    // MARK: Negotiation

    /// The participant presenting a screen in `call`, if any.
    func presenter(of call: CallRoute) -> MediaSession? {
        call.members.first { $0.mayPublishVideo && $0.publishedVideo?.ssrcs.first != nil && !$0.isClosed }
    }

    /// The tracks `q` should receive: its audio slots (always the same), and the presenter's screen.
    func wantedTracks(for q: MediaSession, presenter: MediaSession?) -> [SFUTrack] {
        var out = q.audioSlots.enumerated().map { i, slot in
            SFUTrack(kind: .audio, ssrc: slot.ssrc, streamID: "slot-\(i)", trackID: "audio-slot-\(i)", cname: "callsctl")
        }
        if let p = presenter, p !== q, let ssrc = p.publishedVideo?.ssrcs.first {
            out.append(
                SFUTrack(kind: .video, ssrc: ssrc, streamID: p.participant, trackID: "screen-\(p.participant)", cname: p.cname))
        }
        return out
    }

    /// Answers `offer` for call participant `s` and records what it publishes and receives.
    func answer(_ offer: WebRTCOffer, for s: MediaSession, candidates: [SDPCandidate], fingerprint: String) -> SFUAnswer {
        var previous: [String: UInt32] = [:]
        for slot in s.slots { if let ssrc = slot.ssrc { previous[slot.mid] = ssrc } }
        s.answerVersion += 1
        let answer = SFUAnswer(
            offer: offer,
            parameters: SFUAnswerParameters(
                iceUfrag: s.localUfrag, icePwd: s.localPassword, fingerprint: fingerprint, candidates: candidates,
                sessionID: s.sdpSessionID, sessionVersion: s.answerVersion,
                tracks: wantedTracks(for: s, presenter: s.callRoute.flatMap { presenter(of: $0) }),
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
        for i in s.audioSlots.indices {
            let ssrc = s.audioSlots[i].ssrc
            s.audioSlots[i].mid = answer.slots.first { $0.kind == .audio && $0.ssrc == ssrc }?.mid
        }
        announceSpeakers(s, force: true)
        return answer
    }

    /// Asks every member (or just `only`) whose wanted tracks differ from what its last answer announced to make a
    /// new offer (once per difference). Only a screen starting or stopping changes them for everyone.
    func reconcile(_ call: CallRoute, only: MediaSession? = nil) {
        let presenter = presenter(of: call)
        let members = only.map { [$0] } ?? call.members
        for q in members where !q.isClosed {
            let videoSSRC = presenter === q ? nil : presenter?.publishedVideo?.ssrcs.first
            let expected = q.audioSlots.count + (videoSSRC == nil ? 0 : 1)
            if q.announcedSSRCs.count == expected, q.audioSlots.allSatisfy({ q.announcedSSRCs.contains($0.ssrc) }),
                videoSSRC.map({ q.announcedSSRCs.contains($0) }) ?? true
            {
                q.requestedSlots = nil
                q.requestedSSRCs = nil
                continue
            }
            let wanted = wantedTracks(for: q, presenter: presenter)
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
            renegotiationsRequested += 1
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
                let now = core.tickTime.uptimeNanoseconds
                var level: RTPAudioLevel?
                if let id = audio.audioLevelExtensionID, header.extensionProfile != nil {
                    level = packet.withUnsafeReadableBytes { RTPAudioLevel(id: id, in: $0, header: header) }
                }
                noteSpeech(p, level: level, in: call, now: now)
                if let pool = core.fanoutPool, p.audioFanout.count >= pool.tuning.minimumFanout {
                    call.packetsForwarded &+= UInt64(core.forwardAudioFanout(packet, header: header, from: p, pool: pool))
                    return
                }
                for (q, i) in p.audioFanout where q.isReady && q.audioSlots[i].negotiated {
                    let h = q.audioSlots[i].rewrite(header, from: p, nowNanos: now)
                    core.forwardRTP(
                        packet, payloadType: q.slotAudioPayloadType,
                        rewrite: RTPSlotRewrite(sequence: h.sequence, timestamp: h.timestamp, ssrc: q.audioSlots[i].ssrc, marker: h.marker),
                        to: q, kind: .audio)
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
                        for block in sr.reportBlocks { noteReport(block, from: q) }
                    }
                case RTCPPacketType.receiverReport:
                    if let rr = RTCPReceiverReport(packet) {
                        for block in rr.reportBlocks { noteReport(block, from: q) }
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

    /// A listener's report about one of its audio slots: kept per slot (the slot is one stream, so its cumulative
    /// loss spans speaker changes) for the call's listener-loss figure. Reports about other SSRCs are consumed.
    private func noteReport(_ block: RTCPReportBlock, from q: MediaSession) {
        guard let i = q.audioSlots.firstIndex(where: { $0.ssrc == block.ssrc }) else { return }
        q.audioSlots[i].reportedLost = max(0, block.cumulativeLost)
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
