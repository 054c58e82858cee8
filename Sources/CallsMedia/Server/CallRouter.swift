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
        s.publishedAudio = answer.publishedAudio
        s.publishedVideo = answer.publishedVideo
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
            if let audio = p.publishedAudio, header.payloadType == audio.payloadType {
                guard p.audioForwarding else { return core.countMuted() }
                core.noteAudio(from: p)
                for q in call.members where q !== p && q.isReady && q.announcedSSRCs.contains(header.ssrc) {
                    core.forwardRTP(packet, payloadType: q.slotAudioPayloadType, to: q, kind: .audio)
                    call.packetsForwarded &+= 1
                }
            } else if p.mayPublishVideo, let video = p.publishedVideo, header.payloadType == video.payloadType {
                for q in call.members where q !== p && q.isReady && q.announcedSSRCs.contains(header.ssrc) {
                    core.forwardRTP(packet, payloadType: q.slotVideoPayloadType, to: q, kind: .video)
                    call.packetsForwarded &+= 1
                }
            } else {
                core.countDropped()
            }
        }
    }
}
