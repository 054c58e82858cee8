/// What the server puts in its answer besides the offer's choices.
public struct WebRTCAnswerParameters: Sendable {
    public var iceUfrag: String
    public var icePwd: String
    /// `sha-256 AB:CD:...`
    public var fingerprint: String
    /// The server's candidates (host UDP and/or passive TCP), written into every accepted section.
    public var candidates: [SDPCandidate]
    /// The SSRC the server sends audio with.
    public var audioSSRC: UInt32
    public var cname: String
    public var streamID: String
    public var audioTrackID: String
    /// How accepted video sections are answered; intersected with the offer's direction.
    public var videoDirection: SDPDirection
    /// The `o=` session id.
    public var sessionID: UInt64

    public init(
        iceUfrag: String, icePwd: String, fingerprint: String, candidates: [SDPCandidate], audioSSRC: UInt32,
        cname: String, streamID: String, audioTrackID: String, videoDirection: SDPDirection = .inactive,
        sessionID: UInt64 = 1
    ) {
        self.iceUfrag = iceUfrag
        self.icePwd = icePwd
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.audioSSRC = audioSSRC
        self.cname = cname
        self.streamID = streamID
        self.audioTrackID = audioTrackID
        self.videoDirection = videoDirection
        self.sessionID = sessionID
    }
}

/// The server's answer to a ``WebRTCOffer`` (RFC 8829 §5.3, RFC 3264 §6), as an ICE-lite, DTLS-passive,
/// BUNDLE-only endpoint: Opus audio on the offer's payload type, VP8 video accepted with
/// ``WebRTCAnswerParameters/videoDirection``, every other section (data channels, extra audio) rejected with port 0.
public struct WebRTCAnswer: Sendable {
    public var sdp: String
    public var audioMid: String
    public var audioPayloadType: UInt8
    /// The answered audio direction; the server sends audio only if it `sends`.
    public var audioDirection: SDPDirection
    /// Header extensions accepted on the audio section.
    public var audioExtmaps: [SDPExtmap]
    /// Mids in the answer's BUNDLE group (audio first).
    public var bundleMids: [String]
    /// The VP8 payload type of the first accepted video section, if any.
    public var videoPayloadType: UInt8?

    /// Audio header extensions the server accepts: harmless to echo and useful later for routing.
    public static let audioExtensionURIs: Set<String> = [
        "urn:ietf:params:rtp-hdrext:sdes:mid", "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    ]
    /// VP8 RTCP feedback kept when the offer has it.
    static let videoFeedback: Set<String> = ["nack", "nack pli", "ccm fir", "goog-remb"]

    public init(offer: WebRTCOffer, parameters p: WebRTCAnswerParameters) {
        let d = offer.parsed
        // The audio section leads the BUNDLE group, so its transport is the bundle transport (RFC 9143 §7.3.1).
        let audioMid = offer.audio.mid ?? "0"
        var bundle = [audioMid]
        var media: [SDPMediaDescription] = []
        var videoPT: UInt8?
        let audioExtmaps = offer.audio.extmaps.filter { Self.audioExtensionURIs.contains($0.uri) }
        let audioDirection = offer.audio.direction.reversed

        for s in d.sections {
            if s.index == offer.audio.index {
                var m = Self.acceptedSection(s, codec: offer.opus, parameters: p, direction: audioDirection)
                for e in audioExtmaps { m.attributes.insert(SDPAttribute("extmap", "\(e.id) \(e.uri)"), at: m.attributes.count) }
                if audioDirection.sends {
                    m.attributes.append(SDPAttribute("msid", "\(p.streamID) \(p.audioTrackID)"))
                }
                m.attributes.append(SDPAttribute("rtcp-mux"))
                Self.appendCodec(offer.opus, to: &m, feedback: [])
                if audioDirection.sends {
                    m.attributes.append(SDPAttribute("ssrc", "\(p.audioSSRC) cname:\(p.cname)"))
                    m.attributes.append(SDPAttribute("ssrc", "\(p.audioSSRC) msid:\(p.streamID) \(p.audioTrackID)"))
                }
                Self.appendCandidates(p.candidates, to: &m)
                media.append(m)
                continue
            }
            if s.kind == .video, d.isBundled(s), let mid = s.mid,
                let vp8 = s.codec(named: "VP8")
            {
                let direction = Self.intersect(p.videoDirection, s.direction.reversed)
                var m = Self.acceptedSection(s, codec: vp8, parameters: p, direction: direction)
                m.attributes.append(SDPAttribute("rtcp-mux"))
                Self.appendCodec(vp8, to: &m, feedback: vp8.feedback.filter(Self.videoFeedback.contains))
                Self.appendCandidates(p.candidates, to: &m)
                media.append(m)
                bundle.append(mid)
                if videoPT == nil { videoPT = vp8.payloadType }
                continue
            }
            media.append(Self.rejectedSection(s))
        }

        var session = SDPSessionDescription(origin: "- \(p.sessionID) 2 IN IP4 127.0.0.1")
        session.attributes = [
            SDPAttribute("ice-lite"),
            SDPAttribute("group", "BUNDLE " + bundle.joined(separator: " ")),
            SDPAttribute("msid-semantic", " WMS \(p.streamID)"),
        ]
        session.media = media
        self.sdp = session.text
        self.audioMid = audioMid
        self.audioPayloadType = offer.opus.payloadType
        self.audioDirection = audioDirection
        self.audioExtmaps = audioExtmaps
        self.bundleMids = bundle
        self.videoPayloadType = videoPT
    }

    private static func intersect(_ a: SDPDirection, _ b: SDPDirection) -> SDPDirection {
        switch (a.sends && b.sends, a.receives && b.receives) {
        case (true, true): .sendrecv
        case (true, false): .sendonly
        case (false, true): .recvonly
        case (false, false): .inactive
        }
    }

    private static func acceptedSection(
        _ s: WebRTCMediaSection, codec: SDPCodec, parameters p: WebRTCAnswerParameters, direction: SDPDirection
    ) -> SDPMediaDescription {
        acceptedSection(
            s, codec: codec, iceUfrag: p.iceUfrag, icePwd: p.icePwd, fingerprint: p.fingerprint, direction: direction)
    }

    /// An accepted section of an ICE-lite, DTLS-passive answer: one codec, the transport attributes, the mid and
    /// the direction (callers append msid, rtcp-mux, codec lines and candidates).
    static func acceptedSection(
        _ s: WebRTCMediaSection, codec: SDPCodec, iceUfrag: String, icePwd: String, fingerprint: String,
        direction: SDPDirection
    ) -> SDPMediaDescription {
        var m = SDPMediaDescription(
            media: s.kind == .audio ? "audio" : "video", port: 9, proto: s.proto, formats: ["\(codec.payloadType)"],
            connection: "IN IP4 0.0.0.0")
        m.attributes = [
            SDPAttribute("rtcp", "9 IN IP4 0.0.0.0"),
            SDPAttribute("ice-ufrag", iceUfrag),
            SDPAttribute("ice-pwd", icePwd),
            SDPAttribute("fingerprint", fingerprint),
            SDPAttribute("setup", "passive"),
            SDPAttribute("mid", s.mid ?? "0"),
            SDPAttribute(direction.rawValue),
        ]
        return m
    }

    private static func appendCodec(_ c: SDPCodec, to m: inout SDPMediaDescription, feedback: [String]) {
        m.attributes.append(SDPAttribute("rtpmap", c.rtpmapValue))
        for f in feedback { m.attributes.append(SDPAttribute("rtcp-fb", "\(c.payloadType) \(f)")) }
        if let fmtp = c.fmtp { m.attributes.append(SDPAttribute("fmtp", "\(c.payloadType) \(fmtp)")) }
    }

    static func appendCandidates(_ candidates: [SDPCandidate], to m: inout SDPMediaDescription) {
        for c in candidates { m.attributes.append(SDPAttribute("candidate", c.sdpValue)) }
        m.attributes.append(SDPAttribute("end-of-candidates"))
    }

    /// RFC 3264 §6: a rejected stream keeps its media type and proto with port 0; the mid stays so the offerer can
    /// match it (RFC 9143 §7.3.3).
    static func rejectedSection(_ s: WebRTCMediaSection) -> SDPMediaDescription {
        let media: String
        switch s.kind {
        case .audio: media = "audio"
        case .video: media = "video"
        case .application: media = "application"
        case .other(let name): media = name
        }
        var m = SDPMediaDescription(
            media: media, port: 0, proto: s.proto, formats: Array(s.formats.prefix(1)), connection: "IN IP4 0.0.0.0")
        if m.formats.isEmpty { m.formats = ["0"] }
        if let mid = s.mid { m.attributes.append(SDPAttribute("mid", mid)) }
        m.attributes.append(SDPAttribute("inactive"))
        return m
    }
}

/// Builds the offer of the project's own WebRTC client: one sendrecv Opus audio section, BUNDLE, rtcp-mux,
/// `a=setup:actpass`, trickle-free (all candidates, or none: an ICE-lite server learns the client's address from its
/// checks).
public struct WebRTCAudioOffer: Sendable {
    public var iceUfrag: String
    public var icePwd: String
    public var fingerprint: String
    public var audioSSRC: UInt32
    public var cname: String
    public var opusPayloadType: UInt8
    public var candidates: [SDPCandidate]

    public init(
        iceUfrag: String, icePwd: String, fingerprint: String, audioSSRC: UInt32, cname: String,
        opusPayloadType: UInt8 = 111, candidates: [SDPCandidate] = []
    ) {
        self.iceUfrag = iceUfrag
        self.icePwd = icePwd
        self.fingerprint = fingerprint
        self.audioSSRC = audioSSRC
        self.cname = cname
        self.opusPayloadType = opusPayloadType
        self.candidates = candidates
    }

    public var sdp: String {
        var m = SDPMediaDescription(
            media: "audio", port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: ["\(opusPayloadType)"],
            connection: "IN IP4 0.0.0.0")
        m.attributes = [
            SDPAttribute("rtcp", "9 IN IP4 0.0.0.0"),
            SDPAttribute("ice-ufrag", iceUfrag),
            SDPAttribute("ice-pwd", icePwd),
            SDPAttribute("fingerprint", fingerprint),
            SDPAttribute("setup", "actpass"),
            SDPAttribute("mid", "0"),
            SDPAttribute("sendrecv"),
            SDPAttribute("msid", "\(cname) \(cname)-audio"),
            SDPAttribute("rtcp-mux"),
            SDPAttribute("rtpmap", "\(opusPayloadType) opus/48000/2"),
            SDPAttribute("fmtp", "\(opusPayloadType) minptime=10;useinbandfec=1"),
            SDPAttribute("ssrc", "\(audioSSRC) cname:\(cname)"),
        ]
        for c in candidates { m.attributes.append(SDPAttribute("candidate", c.sdpValue)) }
        if !candidates.isEmpty { m.attributes.append(SDPAttribute("end-of-candidates")) }
        var s = SDPSessionDescription(origin: "- \(UInt64(audioSSRC) << 8 | 1) 2 IN IP4 127.0.0.1")
        s.attributes = [SDPAttribute("group", "BUNDLE 0"), SDPAttribute("msid-semantic", " WMS \(cname)")]
        s.media = [m]
        return s.text
    }
}
