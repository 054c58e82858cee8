/// Media direction (RFC 8866 §6.7, RFC 3264 §6.1).
public enum SDPDirection: String, Hashable, Sendable {
    case sendrecv, sendonly, recvonly, inactive

    /// The direction an answerer uses when it is willing to do both (RFC 3264 §6.1): the mirror image.
    public var reversed: SDPDirection {
        switch self {
        case .sendrecv: .sendrecv
        case .sendonly: .recvonly
        case .recvonly: .sendonly
        case .inactive: .inactive
        }
    }

    public var sends: Bool { self == .sendrecv || self == .sendonly }
    public var receives: Bool { self == .sendrecv || self == .recvonly }
}

/// One RTP payload format of a media section: `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` joined by payload type.
public struct SDPCodec: Hashable, Sendable {
    public var payloadType: UInt8
    /// Encoding name as written (`opus`, `VP8`, `rtx`, ...).
    public var name: String
    public var clockRate: Int
    public var channels: Int?
    public var fmtp: String?
    public var feedback: [String]

    public init(
        payloadType: UInt8, name: String, clockRate: Int, channels: Int? = nil, fmtp: String? = nil,
        feedback: [String] = []
    ) {
        self.payloadType = payloadType
        self.name = name
        self.clockRate = clockRate
        self.channels = channels
        self.fmtp = fmtp
        self.feedback = feedback
    }

    /// The `a=rtpmap` value: `111 opus/48000/2`.
    public var rtpmapValue: String {
        "\(payloadType) \(name)/\(clockRate)" + (channels.map { "/\($0)" } ?? "")
    }
}

/// A header extension mapping (`a=extmap:<id>[/<direction>] <uri>`, RFC 8285 §5).
public struct SDPExtmap: Hashable, Sendable {
    public var id: Int
    public var uri: String

    public init(id: Int, uri: String) {
        self.id = id
        self.uri = uri
    }
}

/// A certificate fingerprint as written in SDP (`a=fingerprint:<hash> <hex>`, RFC 8122 §5). CallsWire keeps the
/// text; the DTLS layer turns it into bytes.
public struct SDPFingerprint: Hashable, Sendable {
    /// Lower-cased hash function name, e.g. `sha-256`.
    public var algorithm: String
    public var value: String

    public init?(sdp text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        algorithm = parts[0].lowercased()
        value = String(parts[1])
    }

    /// `sha-256 AB:CD:...`
    public var sdpValue: String { "\(algorithm) \(value)" }
}

/// What the WebRTC media path needs from one media section of a description.
public struct WebRTCMediaSection: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case audio, video, application
        case other(String)
    }

    /// Position of the section in the description (answers keep the order, RFC 3264 §6).
    public var index: Int
    public var kind: Kind
    public var mid: String?
    /// The `m=` line's port: 0 for a section that is rejected or stopped, or that is offered `a=bundle-only`.
    public var port: Int
    /// `a=bundle-only` (RFC 8843 §6): the section is offered only as part of the BUNDLE group; its port is 0 in an
    /// initial offer (Firefox offers every receive-only section after the first this way).
    public var bundleOnly: Bool
    /// True when the port is 0 and the section is not `a=bundle-only`: the offerer rejected or stopped it.
    public var isRejected: Bool
    public var proto: String
    public var formats: [String]
    public var direction: SDPDirection
    public var codecs: [SDPCodec]
    public var extmaps: [SDPExtmap]
    /// SSRCs announced with `a=ssrc` (first-seen order, without duplicates).
    public var ssrcs: [UInt32]
    public var rtcpMux: Bool
    public var iceUfrag: String?
    public var icePwd: String?
    public var fingerprints: [SDPFingerprint]
    public var setup: String?
    public var candidates: [SDPCandidate]

    init(index: Int, section m: SDPMediaDescription) {
        self.index = index
        switch m.media {
        case "audio": kind = .audio
        case "video": kind = .video
        case "application": kind = .application
        default: kind = .other(m.media)
        }
        mid = m.mid
        port = m.port
        bundleOnly = m.hasAttribute("bundle-only")
        isRejected = m.port == 0 && !bundleOnly
        proto = m.proto
        formats = m.formats
        direction = .sendrecv
        for a in m.attributes where a.value == nil {
            if let d = SDPDirection(rawValue: a.name) { direction = d }
        }
        rtcpMux = m.hasAttribute("rtcp-mux")
        iceUfrag = m.attribute("ice-ufrag")
        icePwd = m.attribute("ice-pwd")
        fingerprints = m.attributes(named: "fingerprint").compactMap(SDPFingerprint.init(sdp:))
        setup = m.attribute("setup")
        candidates = m.attributes(named: "candidate").compactMap(SDPCandidate.init(sdp:))

        var codecs: [SDPCodec] = []
        for value in m.attributes(named: "rtpmap") {
            // a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>] (RFC 8866 §6.6)
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let pt = UInt8(parts[0]), pt < 128 else { continue }
            let enc = parts[1].split(separator: "/")
            guard enc.count >= 2, let rate = Int(enc[1]), rate > 0 else { continue }
            let channels = enc.count >= 3 ? Int(enc[2]) : nil
            guard !codecs.contains(where: { $0.payloadType == pt }) else { continue }
            codecs.append(SDPCodec(payloadType: pt, name: String(enc[0]), clockRate: rate, channels: channels))
        }
        for value in m.attributes(named: "fmtp") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let pt = UInt8(parts[0]), let i = codecs.firstIndex(where: { $0.payloadType == pt })
            else { continue }
            codecs[i].fmtp = String(parts[1])
        }
        for value in m.attributes(named: "rtcp-fb") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let pt = UInt8(parts[0]), let i = codecs.firstIndex(where: { $0.payloadType == pt })
            else { continue }
            codecs[i].feedback.append(String(parts[1]))
        }
        // Keep the m= line's preference order.
        let order = formats.compactMap { UInt8($0) }
        self.codecs = codecs.sorted { a, b in
            (order.firstIndex(of: a.payloadType) ?? Int.max) < (order.firstIndex(of: b.payloadType) ?? Int.max)
        }

        extmaps = m.attributes(named: "extmap").compactMap { value in
            let parts = value.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let idText = parts[0].split(separator: "/").first, let id = Int(idText),
                (1...255).contains(id)
            else { return nil }
            return SDPExtmap(id: id, uri: String(parts[1]))
        }
        var ssrcs: [UInt32] = []
        for value in m.attributes(named: "ssrc") {
            guard let first = value.split(separator: " ").first, let ssrc = UInt32(first), !ssrcs.contains(ssrc)
            else { continue }
            ssrcs.append(ssrc)
        }
        self.ssrcs = ssrcs
    }

    /// The first codec named `name` (case-insensitive).
    public func codec(named name: String) -> SDPCodec? {
        codecs.first { $0.name.lowercased() == name.lowercased() }
    }
}

/// The WebRTC transport and media parameters of a description (offer or answer), without policy: ICE
/// credentials and fingerprints resolved from the media level first, then the session level (RFC 8839 §5.4,
/// RFC 8122 §5).
public struct WebRTCDescription: Hashable, Sendable {
    public var sections: [WebRTCMediaSection]
    /// Mids of the first `a=group:BUNDLE` (RFC 9143), empty when there is none.
    public var bundleMids: [String]
    public var iceLite: Bool
    /// Session-level values, used where a section has none.
    public var sessionIceUfrag: String?
    public var sessionIcePwd: String?
    public var sessionFingerprints: [SDPFingerprint]
    public var sessionSetup: String?

    public init(sdp: String) throws(SDPError) {
        try self.init(description: SDPSessionDescription(parsing: sdp))
    }

    public init(description d: SDPSessionDescription) {
        sections = d.media.enumerated().map { WebRTCMediaSection(index: $0.offset, section: $0.element) }
        bundleMids = []
        for group in d.attributes(named: "group") {
            let parts = group.split(separator: " ", omittingEmptySubsequences: true)
            if parts.first == "BUNDLE" {
                bundleMids = parts.dropFirst().map(String.init)
                break
            }
        }
        iceLite = d.hasAttribute("ice-lite")
        sessionIceUfrag = d.attribute("ice-ufrag")
        sessionIcePwd = d.attribute("ice-pwd")
        sessionFingerprints = d.attributes(named: "fingerprint").compactMap(SDPFingerprint.init(sdp:))
        sessionSetup = d.attribute("setup")
    }

    /// The offerer-tagged section (RFC 8843 §7.2): the one the first mid of the BUNDLE group names. Its transport
    /// (ICE credentials, fingerprint, DTLS role, rtcp-mux) is the transport of every section of the group; other
    /// bundled sections may repeat or omit those attributes, and may carry their own (a client with bundle policy
    /// "balanced" gives each media kind its own), which the answer overrides by accepting BUNDLE.
    public var taggedSection: WebRTCMediaSection? {
        guard let first = bundleMids.first else { return nil }
        return sections.first { $0.mid == first }
    }

    /// Mids that more than one section carries (each section needs its own, RFC 8843 §7.1), in first-seen order.
    public var duplicatedMids: [String] {
        var seen = Set<String>()
        var out: [String] = []
        for s in sections {
            guard let mid = s.mid else { continue }
            if !seen.insert(mid).inserted, !out.contains(mid) { out.append(mid) }
        }
        return out
    }

    /// True when section `s` belongs to the BUNDLE group and is usable there: not rejected or stopped by the offerer
    /// (port 0 without `a=bundle-only`). A bundle-only section outside the group is rejected.
    public func isBundled(_ s: WebRTCMediaSection) -> Bool {
        guard !s.isRejected, let mid = s.mid else { return false }
        return bundleMids.contains(mid)
    }

    /// ICE ufrag for a section: its own, else the session's.
    public func iceUfrag(for s: WebRTCMediaSection) -> String? { s.iceUfrag ?? sessionIceUfrag }
    public func icePwd(for s: WebRTCMediaSection) -> String? { s.icePwd ?? sessionIcePwd }
    public func fingerprints(for s: WebRTCMediaSection) -> [SDPFingerprint] {
        s.fingerprints.isEmpty ? sessionFingerprints : s.fingerprints
    }
    public func setup(for s: WebRTCMediaSection) -> String? { s.setup ?? sessionSetup }

    /// Every candidate of the sections in the BUNDLE group (or of all sections without one), deduplicated.
    public var candidates: [SDPCandidate] {
        var out: [SDPCandidate] = []
        for s in sections where !s.isRejected && s.port != 0 {
            for c in s.candidates where !out.contains(c) { out.append(c) }
        }
        return out
    }
}

/// A browser's offer, checked for what the `callsctl` media server needs: one BUNDLE transport (with rtcp-mux)
/// carrying an Opus audio section, ICE credentials, and a DTLS fingerprint with a role the server can answer as
/// DTLS server.
public struct WebRTCOffer: Hashable, Sendable {
    public var parsed: WebRTCDescription
    /// The audio section the server answers (the first bundled audio section with Opus).
    public var audio: WebRTCMediaSection
    public var opus: SDPCodec
    public var iceUfrag: String
    public var icePwd: String
    /// Every usable fingerprint of the bundle transport, in the offer's order.
    public var fingerprints: [SDPFingerprint]

    public init(sdp: String) throws(SDPError) {
        try self.init(description: WebRTCDescription(sdp: sdp))
    }

    public init(description d: WebRTCDescription) throws(SDPError) {
        self.parsed = d
        if let mid = d.duplicatedMids.first {
            let positions = d.sections.filter { $0.mid == mid }.map { "\($0.index + 1)" }.joined(separator: " and ")
            throw SDPError(
                .duplicateMid,
                "a=mid:\(String(mid.prefix(32))) is given to m= sections \(positions); every section needs its own mid (RFC 8843 §7.1)")
        }
        let audioSections = d.sections.filter { $0.kind == .audio && !$0.isRejected }
        guard !audioSections.isEmpty else {
            throw SDPError(.missingAudio, "the offer has no m=audio section (with a non-zero port); add an audio track")
        }
        guard !d.bundleMids.isEmpty else {
            throw SDPError(.missingBundle, "the offer has no a=group:BUNDLE line; use bundlePolicy 'max-bundle' or 'balanced'")
        }
        guard let tagged = d.taggedSection else {
            throw SDPError(
                .missingBundle,
                "the first mid of a=group:BUNDLE (\(String(d.bundleMids[0].prefix(32)))) names no m= section")
        }
        guard tagged.port != 0 else {
            throw SDPError(
                .missingBundle,
                "the BUNDLE group's first section (mid \(tagged.mid ?? "?")) has port 0; the offerer-tagged section carries the transport and must not be bundle-only (RFC 8843 §7.2)")
        }
        guard let bundled = audioSections.first(where: { d.isBundled($0) }) else {
            throw SDPError(
                .missingBundle,
                "no m=audio section is in the BUNDLE group (a=group:BUNDLE \(d.bundleMids.joined(separator: " ")))")
        }
        guard let opus = bundled.codec(named: "opus"), opus.clockRate == 48000 else {
            let names = bundled.codecs.map(\.name).joined(separator: ", ")
            throw SDPError(.noOpus, "the audio section (mid \(bundled.mid ?? "?")) offers no opus/48000 codec (offered: \(names.isEmpty ? "none" : names))")
        }
        guard tagged.rtcpMux else {
            throw SDPError(.missingRTCPMux, "the BUNDLE transport's section (mid \(tagged.mid ?? "?")) lacks a=rtcp-mux")
        }
        guard let ufrag = d.iceUfrag(for: tagged), let pwd = d.icePwd(for: tagged) else {
            throw SDPError(.missingICECredentials, "the offer has no a=ice-ufrag and a=ice-pwd (neither session nor media level)")
        }
        // RFC 8839 §5.4: ufrag 4–256 ice-chars, pwd 22–256 ice-chars. The colon would break USERNAME splitting.
        guard (4...256).contains(ufrag.count), (22...256).contains(pwd.count), Self.isICEChars(ufrag),
            Self.isICEChars(pwd)
        else {
            throw SDPError(
                .missingICECredentials,
                "a=ice-ufrag must be 4-256 and a=ice-pwd 22-256 characters of [A-Za-z0-9+/] (got \(ufrag.count) and \(pwd.count))")
        }
        let fingerprints = d.fingerprints(for: tagged)
        guard !fingerprints.isEmpty else {
            throw SDPError(.missingFingerprint, "the offer has no a=fingerprint (neither session nor media level)")
        }
        let setup = d.setup(for: tagged) ?? "actpass"
        guard setup == "actpass" || setup == "active" else {
            throw SDPError(
                .unsupported, "the offer says a=setup:\(setup); the server is always the DTLS server, so offer actpass or active")
        }
        self.audio = bundled
        self.opus = opus
        self.iceUfrag = ufrag
        self.icePwd = pwd
        self.fingerprints = fingerprints
    }

    static func isICEChars(_ s: String) -> Bool {
        s.utf8.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: "/")
        }
    }
}
