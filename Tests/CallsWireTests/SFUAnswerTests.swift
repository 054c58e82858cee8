import CallsWire
import Testing

/// A participant's offer in Chromium's shape: mic (sendonly), two receive-only audio slots, a receive-only
/// VP8 slot, a sendonly screen, and a data channel; one BUNDLE group.
private func offer(micDirection: String = "sendonly", extraAudioSlots: Int = 2) -> String {
    var mids = ["0"]
    var text = ""
    func section(_ kind: String, _ mid: String, _ dir: String, ssrc: UInt32?, pt: Int = 111) {
        mids.append(mid)
        let codec =
            kind == "audio"
            ? "a=rtpmap:\(pt) opus/48000/2\r\na=fmtp:\(pt) minptime=10;useinbandfec=1\r\n"
            : "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
        text += "m=\(kind) 9 UDP/TLS/RTP/SAVPF \(kind == "audio" ? "\(pt)" : "96 97")\r\nc=IN IP4 0.0.0.0\r\n"
        text += "a=ice-ufrag:Jq8e\r\na=ice-pwd:Nq0Zy6rJbLcWxE2DhUSX1pQ4\r\n"
        text += "a=fingerprint:sha-256 " + Array(repeating: "AB", count: 32).joined(separator: ":") + "\r\n"
        text += "a=setup:actpass\r\na=mid:\(mid)\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=\(dir)\r\na=rtcp-mux\r\n" + codec
        if let ssrc { text += "a=ssrc:\(ssrc) cname:abc\r\n" }
    }
    mids = []
    section("audio", "0", micDirection, ssrc: micDirection == "recvonly" ? nil : 1111)
    for i in 0..<extraAudioSlots { section("audio", "\(i + 1)", "recvonly", ssrc: nil, pt: 109) }
    section("video", "v", "recvonly", ssrc: nil)
    section("video", "s", "sendonly", ssrc: 2222)
    mids.append("d")
    text += "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:d\r\na=sctp-port:5000\r\n"
    return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE \(mids.joined(separator: " "))\r\n" + text
}

private func parameters(_ tracks: [SFUTrack], previous: [String: UInt32] = [:], mayPublishVideo: Bool = false)
    -> SFUAnswerParameters
{
    SFUAnswerParameters(
        iceUfrag: "srvU", icePwd: "serverpasswordserverpass",
        fingerprint: "sha-256 " + Array(repeating: "CD", count: 32).joined(separator: ":"),
        candidates: [SDPCandidate(foundation: "1", transport: .udp, priority: 2_130_706_431, address: "192.0.2.10", port: 8443)],
        sessionID: 77, sessionVersion: 5, tracks: tracks, previousAssignments: previous, mayPublishVideo: mayPublishVideo)
}

private func audio(_ ssrc: UInt32, _ who: String) -> SFUTrack {
    SFUTrack(kind: .audio, ssrc: ssrc, streamID: who, trackID: "audio-\(who)", cname: "c-\(who)")
}

/// The lines of the section with `a=mid:<mid>`.
private func section(_ sdp: String, mid: String) -> [String] {
    let sections = sdp.components(separatedBy: "\r\nm=").dropFirst()
    return sections.first { $0.contains("\r\na=mid:\(mid)\r\n") }?.components(separatedBy: "\r\n") ?? []
}

@Suite("SFU answers: publish sections, receive slots, screen share")
struct SFUAnswerTests {
    @Test func micPublishesSlotsCarryOtherParticipants() throws {
        let o = try WebRTCOffer(sdp: offer())
        let a = SFUAnswer(offer: o, parameters: parameters([audio(10, "bob"), audio(20, "carol")]))
        #expect(a.publishedAudio?.mid == "0")
        #expect(a.publishedAudio?.ssrcs == [1111])
        #expect(a.publishedAudio?.payloadType == 111)
        #expect(a.publishedVideo == nil)  // not the presenter
        #expect(a.slots.map(\.mid) == ["1", "2", "v"])
        #expect(a.slots.map(\.ssrc) == [10, 20, nil])
        #expect(a.slots[0].payloadType == 109)  // forwarded packets get the receiver's payload type
        #expect(a.unplaced.isEmpty)
        #expect(section(a.sdp, mid: "0").contains("a=recvonly"))
        let slot = section(a.sdp, mid: "1")
        #expect(slot.contains("a=sendonly"))
        #expect(slot.contains("a=msid:bob audio-bob"))
        #expect(slot.contains("a=ssrc:10 cname:c-bob"))
        #expect(!slot.contains { $0.hasPrefix("a=extmap") })  // no header extensions
        #expect(section(a.sdp, mid: "v").contains("a=inactive"))  // no screen yet, slot kept
        let screen = section(a.sdp, mid: "s")
        #expect(screen.contains("a=inactive"))
        #expect(a.sdp.contains("a=group:BUNDLE 0 1 2 v s\r\n"))
        #expect(a.sdp.contains("o=- 77 5 IN IP4 127.0.0.1"))
        #expect(a.sdp.contains("m=application 0 "))  // data channel rejected
    }

    @Test func presenterPublishesVP8WithoutRTXOrTransportCC() throws {
        let o = try WebRTCOffer(sdp: offer())
        let a = SFUAnswer(offer: o, parameters: parameters([], mayPublishVideo: true))
        #expect(a.publishedVideo?.mid == "s")
        #expect(a.publishedVideo?.ssrcs == [2222])
        let screen = section(a.sdp, mid: "s")
        #expect(screen.contains("a=recvonly"))
        #expect(screen.contains("a=rtpmap:96 VP8/90000"))
        #expect(!screen.contains { $0.contains("rtx") || $0.contains("transport-cc") })
        #expect(screen.contains("a=rtcp-fb:96 nack pli"))
        #expect(screen.contains("a=rtcp-fb:96 goog-remb"))
    }

    @Test func viewersGetTheScreenInTheirVideoSlot() throws {
        let o = try WebRTCOffer(sdp: offer())
        let screen = SFUTrack(kind: .video, ssrc: 30, streamID: "alice", trackID: "screen-alice", cname: "c-alice")
        let a = SFUAnswer(offer: o, parameters: parameters([audio(10, "alice"), screen]))
        #expect(a.slots.first { $0.mid == "v" }?.ssrc == 30)
        #expect(section(a.sdp, mid: "v").contains("a=msid:alice screen-alice"))
    }

    @Test func slotsKeepTheirTracksAcrossRenegotiation() throws {
        let o = try WebRTCOffer(sdp: offer())
        // bob was in slot 2 last time; carol leaves, dave arrives: bob stays, dave takes the free slot.
        let a = SFUAnswer(
            offer: o, parameters: parameters([audio(40, "dave"), audio(10, "bob")], previous: ["1": 20, "2": 10]))
        #expect(a.assignments == ["1": 40, "2": 10])
    }

    @Test func tracksWithoutASlotAreReported() throws {
        let o = try WebRTCOffer(sdp: offer(extraAudioSlots: 1))
        let a = SFUAnswer(offer: o, parameters: parameters([audio(10, "bob"), audio(20, "carol")]))
        #expect(a.assignments == ["1": 10])
        #expect(a.unplaced.map(\.ssrc) == [20])
    }

    @Test func aListenOnlyClientPublishesNothing() throws {
        let o = try WebRTCOffer(sdp: offer(micDirection: "recvonly", extraAudioSlots: 0))
        let a = SFUAnswer(offer: o, parameters: parameters([audio(10, "bob")]))
        #expect(a.publishedAudio == nil)
        #expect(a.assignments == ["0": 10])
    }
}
