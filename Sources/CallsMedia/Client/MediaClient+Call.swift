import CallsWire
import NIOCore

/// A receive slot of a call participant: one recvonly section of its offer, and what the SFU's last answer put on it.
public struct MediaClientReceiveSlot: Sendable, Hashable {
    public var mid: String
    public var kind: SFUTrack.Kind
    /// The SSRC the SFU forwards on this slot (another participant's), nil while the slot is inactive.
    public var ssrc: UInt32?
    /// The publisher's participant id (the answer's `a=msid` stream id), nil while inactive.
    public var streamID: String?
}

/// The call-offer state of one `MediaClient`.
struct MediaClientCallState {
    /// Sections offered so far, in offer order (JSEP never reorders or removes m-sections; new ones are appended).
    var sections: [(mid: String, kind: SFUTrack.Kind, publishes: Bool)] = []
    var offerVersion: UInt64 = 1
    var slots: [MediaClientReceiveSlot] = []
}

/// Joining a call on the SFU:
///
/// ```swift
/// let client = try MediaClient(logger: logger)
/// let (id, answer) = try await server.createSession(
///     offer: client.callOffer(audioReceiveSlots: 2), label: "u1", route: .call("channel-1"), participant: "u1")
/// try await client.connect(answer: answer)          // maps slots to the SSRCs already in the call
/// // ... when the server reports .renegotiationNeeded (someone joined or left):
/// let next = try await server.renegotiate(id, offer: client.callOffer(audioReceiveSlots: 2))
/// try client.applyAnswer(next)                     // client.receiveSlots / announcedSSRCs now name them
/// client.sendAudio(payload: opusFrame, timestamp: ts)
/// let counts = await client.receivedPacketCounts()  // [SSRC: packets] forwarded to this client
/// ```
extension MediaClient {
    /// An SDP offer for joining a call on the SFU (`MediaServer.createSession(offer:label:route:participant:)` with
    /// `.call(key)`, or `renegotiate` later).
    ///
    /// The offer has one Opus section the client publishes on (`audioSSRC`, direction `audioDirection`: `.sendonly`
    /// or `.sendrecv`; `.inactive` for a listen-only participant, which then publishes nothing; mid `"0"`), then at least `audioReceiveSlots` recvonly Opus sections and
    /// `videoReceiveSlots` recvonly VP8 sections. Sections of earlier offers are kept in their place (an offer
    /// never shrinks: asking for fewer slots keeps the existing ones), so one client can make its initial offer and
    /// any renegotiated offer with this method. ICE credentials and the DTLS fingerprint stay the same.
    ///
    /// With `publishVideo` the offer also has a sendonly VP8 section for the client's screen (``videoSSRC``; added
    /// once, then kept), which the SFU accepts while the participant holds the presenter slot.
    public func callOffer(
        audioReceiveSlots: Int, videoReceiveSlots: Int = 0, audioDirection: SDPDirection = .sendonly,
        publishVideo: Bool = false
    ) -> String {
        let (sections, version) = call.withLock { state -> ([(mid: String, kind: SFUTrack.Kind, publishes: Bool)], UInt64) in
            if state.sections.isEmpty { state.sections.append((mid: "0", kind: .audio, publishes: true)) }
            if publishVideo, !state.sections.contains(where: { $0.kind == .video && $0.publishes }) {
                state.sections.append((mid: "\(state.sections.count)", kind: .video, publishes: true))
            }
            var audio = state.sections.filter { $0.kind == .audio && !$0.publishes }.count
            var video = state.sections.filter { $0.kind == .video && !$0.publishes }.count
            while audio < audioReceiveSlots {
                audio += 1
                state.sections.append((mid: "\(state.sections.count)", kind: .audio, publishes: false))
            }
            while video < videoReceiveSlots {
                video += 1
                state.sections.append((mid: "\(state.sections.count)", kind: .video, publishes: false))
            }
            state.offerVersion += 1
            return (state.sections, state.offerVersion)
        }
        let opus = configuration.opusPayloadType
        let vp8 = configuration.vp8PayloadType
        var media: [SDPMediaDescription] = []
        for section in sections {
            var m: SDPMediaDescription
            switch section.kind {
            case .audio:
                m = SDPMediaDescription(
                    media: "audio", port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: ["\(opus)"],
                    connection: "IN IP4 0.0.0.0")
            case .video:
                m = SDPMediaDescription(
                    media: "video", port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: ["\(vp8)"],
                    connection: "IN IP4 0.0.0.0")
            }
            m.attributes = [
                SDPAttribute("rtcp", "9 IN IP4 0.0.0.0"),
                SDPAttribute("ice-ufrag", localUfrag),
                SDPAttribute("ice-pwd", localPassword),
                SDPAttribute("fingerprint", identity.fingerprint.sdpValue),
                SDPAttribute("setup", "actpass"),
                SDPAttribute("mid", section.mid),
                SDPAttribute(
                    !section.publishes ? SDPDirection.recvonly.rawValue
                        : section.kind == .audio ? audioDirection.rawValue : SDPDirection.sendonly.rawValue),
            ]
            if section.publishes {
                m.attributes.append(SDPAttribute("msid", "\(cname) \(cname)-\(section.kind == .audio ? "audio" : "screen")"))
            }
            m.attributes.append(SDPAttribute("rtcp-mux"))
            switch section.kind {
            case .audio:
                m.attributes.append(SDPAttribute("rtpmap", "\(opus) opus/48000/2"))
                m.attributes.append(SDPAttribute("fmtp", "\(opus) minptime=10;useinbandfec=1"))
            case .video:
                m.attributes.append(SDPAttribute("rtpmap", "\(vp8) VP8/90000"))
                m.attributes.append(SDPAttribute("rtcp-fb", "\(vp8) nack"))
                m.attributes.append(SDPAttribute("rtcp-fb", "\(vp8) nack pli"))
            }
            if section.publishes, section.kind == .audio, let id = configuration.audioLevelExtensionID {
                m.attributes.append(SDPAttribute("extmap", "\(id) \(RTPAudioLevel.uri)"))
            }
            if section.publishes {
                m.attributes.append(SDPAttribute("ssrc", "\(section.kind == .audio ? audioSSRC : videoSSRC) cname:\(cname)"))
            }
            media.append(m)
        }
        var session = SDPSessionDescription(origin: "- \(UInt64(audioSSRC) << 8 | 2) \(version) IN IP4 127.0.0.1")
        session.attributes = [
            SDPAttribute("group", "BUNDLE " + sections.map(\.mid).joined(separator: " ")),
            SDPAttribute("msid-semantic", " WMS \(cname)"),
        ]
        session.media = media
        return session.text
    }

    /// Takes a renegotiated answer of the SFU (same transport; `connect(answer:)` takes the first one) and updates
    /// ``receiveSlots``.
    /// - Throws: `MediaError` `.badAnswer` when the SDP does not parse.
    public func applyAnswer(_ answer: String) throws(MediaError) {
        let description: SDPSessionDescription
        do {
            description = try SDPSessionDescription(parsing: answer)
        } catch {
            throw MediaError(.badAnswer, error.message)
        }
        updateSlots(from: description)
    }

    /// The receive slots of the last answer, in offer order (empty for an echo client).
    public var receiveSlots: [MediaClientReceiveSlot] { call.withLock { $0.slots } }

    /// The SSRCs the last answer put on receive slots (the other participants' tracks this client should get).
    public var announcedSSRCs: Set<UInt32> { Set(receiveSlots.compactMap(\.ssrc)) }

    /// RTP packets received and authenticated so far, per SSRC (every packet, whether or not it is delivered on
    /// ``receivedAudio``).
    public func receivedPacketCounts() async -> [UInt32: Int] {
        (try? await core.loop.submit { [core] in core.receivedCounts }.get()) ?? [:]
    }

    /// ``receivedPacketCounts()`` and ``undecryptablePacketCount()`` of many clients, in their order, with one task
    /// per event loop: a load generator's clients share a few loops, and a loop that is busy receiving answers one
    /// question per turn, so asking client by client costs a turn each.
    public static func receiveCounters(of clients: [MediaClient]) async -> [(perSSRC: [UInt32: Int], undecryptable: Int)] {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, indices: [Int])] = [:]
        for (i, c) in clients.enumerated() {
            byLoop[ObjectIdentifier(c.core.loop), default: (c.core.loop, [])].indices.append(i)
        }
        let cores = clients.map(\.core)
        let asked = byLoop.values.map { entry in
            (entry.indices, entry.loop.submit { entry.indices.map { (cores[$0].receivedCounts, cores[$0].undecryptable) } })
        }
        var out = [(perSSRC: [UInt32: Int], undecryptable: Int)](repeating: ([:], 0), count: clients.count)
        for (indices, future) in asked {
            guard let answers = try? await future.get() else { continue }
            for (i, a) in zip(indices, answers) { out[i] = a }
        }
        return out
    }

    /// RFC 3550 interarrival jitter per received SSRC in milliseconds (load-generation mode, when
    /// `deliverReceivedPackets` is false; the streams are taken as 48 kHz Opus).
    public func receivedJitterMilliseconds() async -> [UInt32: Double] {
        (try? await core.loop.submit { [core] in core.receiveStatistics.mapValues { $0.jitter / 48 } }.get()) ?? [:]
    }

    /// Received SRTP/RTP packets that failed authentication, replay checks or parsing.
    public func undecryptablePacketCount() async -> Int {
        (try? await core.loop.submit { [core] in core.undecryptable }.get()) ?? 0
    }

    /// Sends `count` audio packets with the same payload in one event-loop turn and one flush (load generation:
    /// NIO hands them to the kernel with `sendmmsg`). Sequence numbers advance by one per packet, timestamps by
    /// `timestampStep` (960 = 20 ms of 48 kHz Opus). Dropped before `connect` finished.
    public func sendAudioBurst(payload: [UInt8], count: Int, firstTimestamp: UInt32, timestampStep: UInt32 = 960) {
        core.loop.execute { [core] in
            core.sendAudioBurst(payload: payload, count: count, firstTimestamp: firstTimestamp, timestampStep: timestampStep)
        }
    }

    func updateSlots(from raw: SDPSessionDescription) {
        let description = WebRTCDescription(description: raw)
        let publishMids = call.withLock { Set($0.sections.filter(\.publishes).map(\.mid)) }
        var slots: [MediaClientReceiveSlot] = []
        for (s, m) in zip(description.sections, raw.media) where !s.isRejected {
            guard let mid = s.mid, !publishMids.contains(mid) else { continue }
            let kind: SFUTrack.Kind
            switch s.kind {
            case .audio: kind = .audio
            case .video: kind = .video
            default: continue
            }
            // An answer's sendonly section is a slot the SFU sends on; inactive ones wait for a track.
            guard s.direction == .sendonly || s.direction == .inactive else { continue }
            let ssrc = s.direction == .sendonly ? s.ssrcs.first : nil
            slots.append(MediaClientReceiveSlot(mid: mid, kind: kind, ssrc: ssrc, streamID: ssrc.flatMap { _ in Self.msidStream(m) }))
        }
        call.withLock { $0.slots = slots }
    }

    /// The stream id of `a=msid:<stream> <track>`.
    private static func msidStream(_ m: SDPMediaDescription) -> String? {
        m.attribute("msid")?.split(separator: " ").first.map(String.init)
    }
}
