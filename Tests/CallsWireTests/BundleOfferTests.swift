import CallsWire
import Foundation
import Testing

/// Offers of the shapes other stacks than Chromium write: Firefox's bundle-only receive sections (RFC 8843 §6),
/// a "balanced" bundle policy that gives a later section its own transport, duplicated mids, and sections the
/// server cannot use (each rejected with a stated reason).
@Suite("BUNDLE offers: bundle-only sections, tagged transport, rejections with reasons")
struct BundleOfferTests {
    static func firefoxOffer() throws -> String {
        guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw FixtureError(message: "Fixtures folder missing from test bundle")
        }
        return try String(contentsOf: dir.appendingPathComponent("firefox-153esr-offer.sdp"), encoding: .utf8)
    }

    static func parameters(_ tracks: [SFUTrack]) -> SFUAnswerParameters {
        SFUAnswerParameters(
            iceUfrag: "srvU", icePwd: "serverpasswordserverpass",
            fingerprint: "sha-256 " + Array(repeating: "CD", count: 32).joined(separator: ":"),
            candidates: [SDPCandidate(foundation: "1", transport: .udp, priority: 2_130_706_431, address: "192.0.2.10", port: 8443)],
            sessionID: 7, sessionVersion: 2, tracks: tracks)
    }

    static let slotTracks = (0..<3).map {
        SFUTrack(kind: .audio, ssrc: UInt32(100 + $0), streamID: "slot-\($0)", trackID: "audio-slot-\($0)", cname: "callsctl")
    }
    static let screen = SFUTrack(kind: .video, ssrc: 555, streamID: "alice", trackID: "screen-alice", cname: "c")

    /// The lines of the answer section with `a=mid:<mid>`.
    static func section(_ sdp: String, mid: String) -> [String] {
        sdp.components(separatedBy: "\r\nm=").dropFirst()
            .first { $0.contains("\r\na=mid:\(mid)\r\n") }?.components(separatedBy: "\r\n") ?? []
    }

    @Test func firefoxBundleOnlyReceiveSectionsBecomeSlots() throws {
        let text = try Self.firefoxOffer()
        // The real offer: three receive sections with port 0 and a=bundle-only.
        #expect(text.components(separatedBy: "a=bundle-only").count - 1 == 3)
        let offer = try WebRTCOffer(sdp: text)
        #expect(offer.parsed.sections.filter(\.bundleOnly).map(\.mid) == ["1", "2", "3"])
        #expect(offer.parsed.sections.allSatisfy { !$0.isRejected })
        #expect(offer.audio.mid == "0")
        #expect(offer.opus.payloadType == 109)

        let answer = SFUAnswer(offer: offer, parameters: Self.parameters(Self.slotTracks + [Self.screen]))
        #expect(answer.rejected.isEmpty)
        #expect(answer.unplaced.isEmpty)
        #expect(answer.publishedAudio?.mid == "0")
        #expect(answer.slots.map(\.mid) == ["1", "2", "3", "4"])
        #expect(answer.slots.map(\.ssrc) == [100, 101, 102, 555])
        #expect(answer.sdp.contains("a=group:BUNDLE 0 1 2 3 4\r\n"))
        for mid in ["1", "2", "3"] {
            let lines = Self.section(answer.sdp, mid: mid)
            #expect(lines.first?.hasPrefix("audio 9 ") == true, "mid \(mid): \(lines.first ?? "none")")
            #expect(lines.contains("a=sendonly"))
            #expect(lines.contains("a=rtpmap:109 opus/48000/2"))
        }
        let video = Self.section(answer.sdp, mid: "4")
        #expect(video.first?.hasPrefix("video 9 UDP/TLS/RTP/SAVPF 120") == true)
        #expect(video.contains("a=ssrc:555 cname:c"))
    }

    @Test func bundleOnlySectionOutsideTheGroupIsRejectedWithAReason() throws {
        // Firefox's offer with mid 3 left out of the BUNDLE group: port 0 and bundle-only, so it can only be rejected.
        let text = try Self.firefoxOffer().replacingOccurrences(of: "a=group:BUNDLE 0 1 2 3 4", with: "a=group:BUNDLE 0 1 2 4")
        let answer = SFUAnswer(offer: try WebRTCOffer(sdp: text), parameters: Self.parameters(Self.slotTracks))
        #expect(answer.rejected.map(\.mid) == ["3"])
        #expect(answer.rejected.map(\.reason) == [.notBundled])
        #expect(Self.section(answer.sdp, mid: "3").first?.hasPrefix("audio 0 ") == true)
        #expect(answer.unplaced.map(\.ssrc) == [102])
    }

    @Test func duplicatedMidIsRefused() throws {
        let text = try Self.firefoxOffer().replacingOccurrences(of: "a=mid:2\r\n", with: "a=mid:1\r\n")
        #expect {
            try WebRTCOffer(sdp: text)
        } throws: { error in
            guard let e = error as? SDPError else { return false }
            return e.code == .duplicateMid && e.message.contains("a=mid:1") && e.message.contains("sections 2 and 3")
        }
    }

    @Test func theTaggedSectionCarriesTheTransport() throws {
        // Bundle policy "balanced" (aiortc's default): a later video section brings its own ICE credentials and no
        // rtcp-mux. The bundle transport is the first mid's; the video section is still a bundled slot.
        var text = try Self.firefoxOffer()
        let videoStart = try #require(text.range(of: "m=video"))
        var video = String(text[videoStart.lowerBound...])
        video = video.replacingOccurrences(of: "a=ice-ufrag:f91876e3", with: "a=ice-ufrag:othr")
            .replacingOccurrences(of: "a=ice-pwd:fffb020eab16ed88ad88969247dbbf52", with: "a=ice-pwd:otherpasswordotherpassword")
            .replacingOccurrences(of: "a=rtcp-mux\r\n", with: "")
        text = String(text[..<videoStart.lowerBound]) + video
        let offer = try WebRTCOffer(sdp: text)
        #expect(offer.iceUfrag == "f91876e3")
        let answer = SFUAnswer(offer: offer, parameters: Self.parameters(Self.slotTracks + [Self.screen]))
        #expect(answer.rejected.isEmpty)
        #expect(answer.slots.last?.mid == "4")
        #expect(answer.slots.last?.ssrc == 555)

        // Without rtcp-mux on the tagged section the offer is refused, naming that section.
        let noMux = try Self.firefoxOffer().replacingOccurrences(
            of: "a=rtcp-mux\r\na=rtpmap:109 opus/48000/2\r\na=rtpmap:9 G722/8000/1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=setup:actpass\r\na=ssrc:1569932114",
            with: "a=rtpmap:109 opus/48000/2\r\na=rtpmap:9 G722/8000/1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=setup:actpass\r\na=ssrc:1569932114")
        #expect(noMux != (try Self.firefoxOffer()))
        #expect {
            try WebRTCOffer(sdp: noMux)
        } throws: { ($0 as? SDPError)?.code == .missingRTCPMux && "\($0)".contains("mid 0") }

        // The tagged section must not be bundle-only.
        let taggedBundleOnly = try Self.firefoxOffer().replacingOccurrences(of: "a=group:BUNDLE 0 1 2 3 4", with: "a=group:BUNDLE 1 0 2 3 4")
        #expect {
            try WebRTCOffer(sdp: taggedBundleOnly)
        } throws: { ($0 as? SDPError)?.code == .missingBundle && "\($0)".contains("port 0") }
    }

    @Test func unusableSectionsAreRejectedWithTheirReasons() throws {
        // Firefox's offer plus: an audio section without Opus, an H264-only video section and a data channel, all
        // bundled, and a video section with no mid.
        let extra =
            "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:pcmu\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n"
            + "m=video 9 UDP/TLS/RTP/SAVPF 126\r\nc=IN IP4 0.0.0.0\r\na=mid:h264\r\na=recvonly\r\na=rtpmap:126 H264/90000\r\n"
            + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:dc\r\na=sctp-port:5000\r\n"
            + "m=video 9 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:120 VP8/90000\r\n"
        let text = try Self.firefoxOffer().replacingOccurrences(
            of: "a=group:BUNDLE 0 1 2 3 4", with: "a=group:BUNDLE 0 1 2 3 4 pcmu h264 dc") + extra
        let answer = SFUAnswer(offer: try WebRTCOffer(sdp: text), parameters: Self.parameters(Self.slotTracks))
        #expect(answer.rejected.map(\.reason) == [.noOpus, .noVP8, .unsupportedMedia, .notBundled])
        #expect(answer.rejected.map(\.mid) == ["pcmu", "h264", "dc", nil])
        #expect(answer.rejected.map(\.media) == ["audio", "video", "application", "video"])
        #expect(answer.rejected.map(\.index) == [5, 6, 7, 8])
        for mid in ["pcmu", "h264", "dc"] {
            #expect(Self.section(answer.sdp, mid: mid).first?.contains(" 0 ") == true, "mid \(mid)")
        }
        #expect(answer.sdp.contains("a=group:BUNDLE 0 1 2 3 4\r\n"))
    }
}
