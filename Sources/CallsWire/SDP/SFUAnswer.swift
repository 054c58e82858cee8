/// A track the SFU sends to one participant: one of its fixed audio slots (an SSRC of the SFU's, carrying whoever
/// speaks there), or the presenter's screen (under the presenter's own SSRC).
public struct SFUTrack: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case audio, video
    }

    public var kind: Kind
    public var ssrc: UInt32
    /// The `a=msid` stream id: the slot's name for audio (`slot-0`...), the presenting participant's id for a screen.
    public var streamID: String
    public var trackID: String
    public var cname: String

    public init(kind: Kind, ssrc: UInt32, streamID: String, trackID: String, cname: String) {
        self.kind = kind
        self.ssrc = ssrc
        self.streamID = streamID
        self.trackID = trackID
        self.cname = cname
    }
}

/// What the SFU puts in an answer besides the offer's choices.
public struct SFUAnswerParameters: Sendable {
    public var iceUfrag: String
    public var icePwd: String
    /// `sha-256 AB:CD:...`
    public var fingerprint: String
    public var candidates: [SDPCandidate]
    /// The `o=` session id and version (the version grows with each answer of a session, RFC 3264 §8).
    public var sessionID: UInt64
    public var sessionVersion: Int
    /// The tracks this participant should receive, in a stable order (join order of their publishers).
    public var tracks: [SFUTrack]
    /// The SSRC each receive slot (by mid) carried in the previous answer; kept where the track is still wanted, so
    /// a renegotiation does not move a track to another transceiver.
    public var previousAssignments: [String: UInt32]
    /// True when this participant may publish video (it holds the call's presenter slot).
    public var mayPublishVideo: Bool

    public init(
        iceUfrag: String, icePwd: String, fingerprint: String, candidates: [SDPCandidate], sessionID: UInt64,
        sessionVersion: Int, tracks: [SFUTrack], previousAssignments: [String: UInt32] = [:],
        mayPublishVideo: Bool = false
    ) {
        self.iceUfrag = iceUfrag
        self.icePwd = icePwd
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.sessionID = sessionID
        self.sessionVersion = sessionVersion
        self.tracks = tracks
        self.previousAssignments = previousAssignments
        self.mayPublishVideo = mayPublishVideo
    }
}

/// The SFU's answer to a participant's offer (initial or renegotiated), as an ICE-lite, DTLS-passive,
/// BUNDLE-only endpoint.
///
/// Each offered section gets a role:
/// - the first bundled audio section the client sends on (sendrecv/sendonly) **publishes** its microphone: the
///   answer is `recvonly`;
/// - the first bundled VP8 video section the client sends on publishes its screen, but only with
///   ``SFUAnswerParameters/mayPublishVideo``; otherwise it is answered `inactive`;
/// - every other bundled audio (Opus) or video (VP8) section the client can receive on is a **receive slot**:
///   answered `sendonly` with one of ``SFUAnswerParameters/tracks`` (its SSRC and `a=msid`),
///   or `inactive` while there is no track for it. Slots stay in the BUNDLE group, so the client can reuse them;
/// - anything else (data channels, other codecs, sections outside the bundle) is rejected with port 0.
///
/// The only RTP header extension accepted is RFC 6464 audio level on the published microphone (the SFU ranks
/// speakers by it); forwarded packets keep the publisher's extension block, which a receiver ignores unless its own
/// ids match. RTX is not offered back, so retransmissions use the media SSRC.
public struct SFUAnswer: Sendable {
    /// A receive slot of the answer.
    public struct Slot: Hashable, Sendable {
        public var mid: String
        public var kind: SFUTrack.Kind
        /// The payload type of the slot's codec in this participant's offer (Opus or VP8): forwarded packets get it.
        public var payloadType: UInt8
        /// The track's SSRC, nil when the slot is inactive.
        public var ssrc: UInt32?
    }

    /// A section on which the client publishes.
    public struct Published: Hashable, Sendable {
        public var mid: String
        public var payloadType: UInt8
        /// `a=ssrc` values of the section (the first is the media SSRC; RTX or FEC SSRCs may follow).
        public var ssrcs: [UInt32]
        /// The section's codec (`opus/48000/2`, `VP8/90000`).
        public var codec: SDPCodec
        /// The RFC 6464 audio-level extension id of a published microphone, when the offer has it (accepted).
        public var audioLevelExtensionID: UInt8? = nil
    }

    /// Why the server answered a section with port 0 (a stable label, for logs and metrics).
    public enum RejectionReason: String, Hashable, Sendable, CaseIterable {
        /// The section has no `a=mid`, or its mid is not in the offer's BUNDLE group (one transport per call).
        case notBundled = "not_bundled"
        /// An audio section without opus/48000.
        case noOpus = "no_opus"
        /// A video section without VP8.
        case noVP8 = "no_vp8"
        /// Neither audio nor video (a data channel, for example).
        case unsupportedMedia = "unsupported_media"
    }

    /// A section the server rejected (the offerer's own port-0 sections are not listed).
    public struct Rejected: Hashable, Sendable {
        /// Position in the offer (0-based) and mid, if any.
        public var index: Int
        public var mid: String?
        /// `audio`, `video`, `application`, ...
        public var media: String
        public var reason: RejectionReason
    }

    public var sdp: String
    /// Sections the server answered with port 0, and why.
    public var rejected: [Rejected] = []
    public var publishedAudio: Published?
    public var publishedVideo: Published?
    public var slots: [Slot]
    /// Wanted tracks that found no free slot of their kind: the client needs more receive transceivers.
    public var unplaced: [SFUTrack]

    /// The slot assignment by mid (for ``SFUAnswerParameters/previousAssignments`` next time).
    public var assignments: [String: UInt32] {
        var out: [String: UInt32] = [:]
        for s in slots { if let ssrc = s.ssrc { out[s.mid] = ssrc } }
        return out
    }

    /// VP8 RTCP feedback kept when the offer has it (no transport-cc: bandwidth feedback is REMB).
    static let videoFeedback: Set<String> = ["nack", "nack pli", "ccm fir", "goog-remb"]
    static let audioFeedback: Set<String> = []

    public init(offer: WebRTCOffer, parameters p: SFUAnswerParameters) {
        let d = offer.parsed
        enum Role {
            case publish(SDPCodec)
            case slot(SDPCodec)
            case inactive(SDPCodec)
            case rejected
        }
        var rejected: [Rejected] = []
        func reject(_ s: WebRTCMediaSection, _ reason: RejectionReason) -> Role {
            let media: String
            switch s.kind {
            case .audio: media = "audio"
            case .video: media = "video"
            case .application: media = "application"
            case .other(let name): media = String(name.prefix(32))
            }
            rejected.append(Rejected(index: s.index, mid: s.mid.map { String($0.prefix(32)) }, media: media, reason: reason))
            return .rejected
        }
        var roles: [Role] = []
        var publishedAudio: Published?
        var publishedVideo: Published?
        for s in d.sections {
            // The offerer's own rejections (port 0 without bundle-only) stay rejected without comment.
            guard !s.isRejected else {
                roles.append(.rejected)
                continue
            }
            // rtcp-mux is a property of the bundle transport (checked on the offerer-tagged section by WebRTCOffer);
            // other bundled sections need not repeat it (RFC 8843 §9.3).
            guard let mid = s.mid, d.isBundled(s) else {
                roles.append(reject(s, .notBundled))
                continue
            }
            switch s.kind {
            case .audio:
                guard let opus = s.codec(named: "opus"), opus.clockRate == 48000 else {
                    roles.append(reject(s, .noOpus))
                    continue
                }
                if s.direction.sends, publishedAudio == nil {
                    let level = s.extmaps.first { $0.uri == RTPAudioLevel.uri && (1...14).contains($0.id) }
                    publishedAudio = Published(
                        mid: mid, payloadType: opus.payloadType, ssrcs: s.ssrcs, codec: opus,
                        audioLevelExtensionID: level.map { UInt8($0.id) })
                    roles.append(.publish(opus))
                } else if s.direction.receives {
                    roles.append(.slot(opus))
                } else {
                    roles.append(.inactive(opus))
                }
            case .video:
                guard let vp8 = s.codec(named: "VP8") else {
                    roles.append(reject(s, .noVP8))
                    continue
                }
                if s.direction.sends, publishedVideo == nil, p.mayPublishVideo {
                    publishedVideo = Published(mid: mid, payloadType: vp8.payloadType, ssrcs: s.ssrcs, codec: vp8)
                    roles.append(.publish(vp8))
                } else if s.direction.receives {
                    roles.append(.slot(vp8))
                } else {
                    roles.append(.inactive(vp8))
                }
            default:
                roles.append(reject(s, .unsupportedMedia))
            }
        }
        self.rejected = rejected

        // Slot assignment: keep previous placements of tracks still wanted, then fill free slots in order.
        var slotMids: [(mid: String, kind: SFUTrack.Kind, pt: UInt8)] = []
        for (s, role) in zip(d.sections, roles) {
            if case .slot(let codec) = role, let mid = s.mid {
                slotMids.append((mid, s.kind == .audio ? .audio : .video, codec.payloadType))
            }
        }
        var placed: [String: SFUTrack] = [:]
        var used = Set<UInt32>()
        for slot in slotMids {
            guard let previous = p.previousAssignments[slot.mid],
                let track = p.tracks.first(where: { $0.ssrc == previous && $0.kind == slot.kind }),
                !used.contains(track.ssrc)
            else { continue }
            placed[slot.mid] = track
            used.insert(track.ssrc)
        }
        var pending = p.tracks.filter { !used.contains($0.ssrc) }
        for slot in slotMids where placed[slot.mid] == nil {
            guard let i = pending.firstIndex(where: { $0.kind == slot.kind }) else { continue }
            placed[slot.mid] = pending.remove(at: i)
        }
        self.slots = slotMids.map { Slot(mid: $0.mid, kind: $0.kind, payloadType: $0.pt, ssrc: placed[$0.mid]?.ssrc) }
        self.unplaced = pending
        self.publishedAudio = publishedAudio
        self.publishedVideo = publishedVideo

        var media: [SDPMediaDescription] = []
        var bundle: [String] = []
        for (s, role) in zip(d.sections, roles) {
            switch role {
            case .rejected:
                media.append(WebRTCAnswer.rejectedSection(s))
            case .publish(let codec), .slot(let codec), .inactive(let codec):
                let mid = s.mid ?? "0"
                var direction = SDPDirection.inactive
                var track: SFUTrack?
                switch role {
                case .publish: direction = .recvonly
                case .slot:
                    track = placed[mid]
                    direction = track == nil ? .inactive : .sendonly
                default: break
                }
                var m = WebRTCAnswer.acceptedSection(
                    s, codec: codec, iceUfrag: p.iceUfrag, icePwd: p.icePwd, fingerprint: p.fingerprint,
                    direction: direction)
                if let track { m.attributes.append(SDPAttribute("msid", "\(track.streamID) \(track.trackID)")) }
                m.attributes.append(SDPAttribute("rtcp-mux"))
                m.attributes.append(SDPAttribute("rtpmap", codec.rtpmapValue))
                let keep = s.kind == .audio ? Self.audioFeedback : Self.videoFeedback
                for f in codec.feedback where keep.contains(f) {
                    m.attributes.append(SDPAttribute("rtcp-fb", "\(codec.payloadType) \(f)"))
                }
                if let fmtp = codec.fmtp { m.attributes.append(SDPAttribute("fmtp", "\(codec.payloadType) \(fmtp)")) }
                if case .publish = role, s.kind == .audio, let id = publishedAudio?.audioLevelExtensionID {
                    m.attributes.append(SDPAttribute("extmap", "\(id) \(RTPAudioLevel.uri)"))
                }
                if let track {
                    m.attributes.append(SDPAttribute("ssrc", "\(track.ssrc) cname:\(track.cname)"))
                    m.attributes.append(SDPAttribute("ssrc", "\(track.ssrc) msid:\(track.streamID) \(track.trackID)"))
                }
                WebRTCAnswer.appendCandidates(p.candidates, to: &m)
                media.append(m)
                bundle.append(mid)
            }
        }
        var session = SDPSessionDescription(origin: "- \(p.sessionID) \(p.sessionVersion) IN IP4 127.0.0.1")
        session.attributes = [
            SDPAttribute("ice-lite"),
            SDPAttribute("group", "BUNDLE " + bundle.joined(separator: " ")),
            SDPAttribute("msid-semantic", " WMS *"),
        ]
        session.media = media
        self.sdp = session.text
    }
}
