import CallsWire
import Testing

/// Hand-written fixtures in the shape of real offers (values invented; structure as Chrome and aiortc write them).
enum SDPFixtures {
    /// Chrome-style Unified Plan offer: audio + video + data channel, session-level BUNDLE, media-level ICE/DTLS.
    static let chrome = """
        v=0\r
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
        s=-\r
        t=0 0\r
        a=group:BUNDLE 0 1 2\r
        a=extmap-allow-mixed\r
        a=msid-semantic: WMS 6f1b2c1e-stream\r
        m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r
        c=IN IP4 0.0.0.0\r
        a=rtcp:9 IN IP4 0.0.0.0\r
        a=candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0 network-id 1\r
        a=candidate:435653019 1 tcp 1845501695 127.0.0.1 9 typ host tcptype active generation 0 network-id 1\r
        a=ice-ufrag:Jq8e\r
        a=ice-pwd:nqM0y3FpJ4rUZ0sQhV2pQk0L\r
        a=ice-options:trickle\r
        a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70:03:E7:43:91:73:23:5E\r
        a=setup:actpass\r
        a=mid:0\r
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
        a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
        a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
        a=sendrecv\r
        a=msid:6f1b2c1e-stream 0a5e7d9c-audio\r
        a=rtcp-mux\r
        a=rtcp-rsize\r
        a=rtpmap:111 opus/48000/2\r
        a=rtcp-fb:111 transport-cc\r
        a=fmtp:111 minptime=10;useinbandfec=1\r
        a=rtpmap:63 red/48000/2\r
        a=fmtp:63 111/111\r
        a=rtpmap:9 G722/8000\r
        a=rtpmap:0 PCMU/8000\r
        a=rtpmap:8 PCMA/8000\r
        a=rtpmap:13 CN/8000\r
        a=rtpmap:110 telephone-event/48000\r
        a=rtpmap:126 telephone-event/8000\r
        a=ssrc:3735928559 cname:kX3bq9d2Lx1T\r
        a=ssrc:3735928559 msid:6f1b2c1e-stream 0a5e7d9c-audio\r
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 45\r
        c=IN IP4 0.0.0.0\r
        a=rtcp:9 IN IP4 0.0.0.0\r
        a=ice-ufrag:Jq8e\r
        a=ice-pwd:nqM0y3FpJ4rUZ0sQhV2pQk0L\r
        a=ice-options:trickle\r
        a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70:03:E7:43:91:73:23:5E\r
        a=setup:actpass\r
        a=mid:1\r
        a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
        a=sendrecv\r
        a=msid:6f1b2c1e-stream 7c1d0f2b-video\r
        a=rtcp-mux\r
        a=rtcp-rsize\r
        a=rtpmap:96 VP8/90000\r
        a=rtcp-fb:96 goog-remb\r
        a=rtcp-fb:96 transport-cc\r
        a=rtcp-fb:96 ccm fir\r
        a=rtcp-fb:96 nack\r
        a=rtcp-fb:96 nack pli\r
        a=rtpmap:97 rtx/90000\r
        a=fmtp:97 apt=96\r
        a=rtpmap:98 VP9/90000\r
        a=fmtp:98 profile-id=0\r
        a=rtpmap:99 rtx/90000\r
        a=fmtp:99 apt=98\r
        a=rtpmap:45 AV1/90000\r
        a=ssrc-group:FID 1111111111 2222222222\r
        a=ssrc:1111111111 cname:kX3bq9d2Lx1T\r
        a=ssrc:1111111111 msid:6f1b2c1e-stream 7c1d0f2b-video\r
        a=ssrc:2222222222 cname:kX3bq9d2Lx1T\r
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
        c=IN IP4 0.0.0.0\r
        a=ice-ufrag:Jq8e\r
        a=ice-pwd:nqM0y3FpJ4rUZ0sQhV2pQk0L\r
        a=ice-options:trickle\r
        a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70:03:E7:43:91:73:23:5E\r
        a=setup:actpass\r
        a=mid:2\r
        a=sctp-port:5000\r
        a=max-message-size:262144\r

        """

    /// aiortc-style offer: LF line ends, session-level BUNDLE, three fingerprints, Opus on payload type 96.
    static let aiortc = """
        v=0
        o=- 3917447129 3917447129 IN IP4 0.0.0.0
        s=-
        t=0 0
        a=group:BUNDLE 0
        a=msid-semantic:WMS *
        m=audio 41513 UDP/TLS/RTP/SAVPF 96 0 8
        c=IN IP4 127.0.0.1
        a=sendrecv
        a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
        a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
        a=mid:0
        a=msid:1c4c2f5e-1b0c-4a4e-9b57-1f6e0e6d7a11 8d0e6b67-ad1d-4d3c-9f2f-7e0b0b0a0c21
        a=rtcp:9 IN IP4 0.0.0.0
        a=rtcp-mux
        a=ssrc:2863311530 cname:3f1e9b7c-5d0a-4e52-8d7f-1a2b3c4d5e6f
        a=rtpmap:96 opus/48000/2
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=candidate:7f1c0b7ad2e54f0b8a1e0a4f1b2c3d4e 1 udp 2130706431 127.0.0.1 41513 typ host
        a=end-of-candidates
        a=ice-ufrag:9s2E
        a=ice-pwd:Yb1c2d3e4f5g6h7i8j9k0lMNOP
        a=fingerprint:sha-256 2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19
        a=fingerprint:sha-384 2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19
        a=setup:actpass

        """

    static let parameters = WebRTCAnswerParameters(
        iceUfrag: "srvU", icePwd: "serverpasswordserverpass", fingerprint: "sha-256 " + Array(repeating: "AB", count: 32).joined(separator: ":"),
        candidates: [
            SDPCandidate(foundation: "1", transport: .udp, priority: 2_130_706_431, address: "192.0.2.10", port: 8443),
            SDPCandidate(
                foundation: "101", transport: .tcp, priority: 2_113_937_151, address: "192.0.2.10", port: 8443,
                tcpType: "passive"),
        ],
        audioSSRC: 12345, cname: "srvcname", streamID: "srvstream", audioTrackID: "srvaudio")
}

@Suite("SDP offers and answers")
struct SDPTests {
    @Test("Chrome offer: audio accepted on PT 111, VP8 video inactive, data channel rejected")
    func chromeOffer() throws {
        let offer = try WebRTCOffer(sdp: SDPFixtures.chrome)
        #expect(offer.iceUfrag == "Jq8e")
        #expect(offer.icePwd == "nqM0y3FpJ4rUZ0sQhV2pQk0L")
        #expect(offer.opus.payloadType == 111)
        #expect(offer.opus.fmtp == "minptime=10;useinbandfec=1")
        #expect(offer.opus.feedback == ["transport-cc"])
        #expect(offer.audio.ssrcs == [3_735_928_559])
        #expect(offer.audio.mid == "0")
        #expect(offer.audio.extmaps.count == 4)
        #expect(offer.parsed.bundleMids == ["0", "1", "2"])
        #expect(offer.parsed.sections[1].ssrcs == [1_111_111_111, 2_222_222_222])
        #expect(offer.parsed.sections[0].candidates.count == 2)
        #expect(offer.parsed.sections[0].candidates[1].tcpType == "active")

        let answer = WebRTCAnswer(offer: offer, parameters: SDPFixtures.parameters)
        #expect(answer.audioPayloadType == 111)
        #expect(answer.bundleMids == ["0", "1"])
        #expect(answer.videoPayloadType == 96)
        #expect(answer.audioExtmaps.map(\.id) == [1, 4])

        let parsed = try WebRTCDescription(sdp: answer.sdp)
        #expect(parsed.iceLite)
        #expect(parsed.bundleMids == ["0", "1"])
        #expect(parsed.sections.count == 3)
        let audio = parsed.sections[0]
        #expect(audio.direction == .sendrecv)
        #expect(audio.setup == "passive")
        #expect(audio.rtcpMux)
        #expect(audio.codecs.map(\.payloadType) == [111])
        #expect(audio.ssrcs == [12345])
        #expect(audio.candidates.count == 2)
        #expect(audio.candidates[1].transport == .tcp && audio.candidates[1].tcpType == "passive")
        #expect(answer.sdp.contains("a=end-of-candidates\r\n"))
        #expect(answer.sdp.contains("a=candidate:101 1 tcp 2113937151 192.0.2.10 8443 typ host tcptype passive\r\n"))
        let video = parsed.sections[1]
        #expect(video.direction == .inactive)
        #expect(video.codecs.map(\.name) == ["VP8"])
        #expect(Set(video.codecs[0].feedback) == ["goog-remb", "ccm fir", "nack", "nack pli"])
        let data = parsed.sections[2]
        #expect(data.isRejected)
        #expect(data.mid == "2")
        #expect(data.kind == .application)
    }

    @Test("aiortc offer: Opus on PT 96, session-level BUNDLE, several fingerprints")
    func aiortcOffer() throws {
        let offer = try WebRTCOffer(sdp: SDPFixtures.aiortc)
        #expect(offer.opus.payloadType == 96)
        #expect(offer.fingerprints.map(\.algorithm) == ["sha-256", "sha-384"])
        #expect(offer.iceUfrag == "9s2E")
        let answer = WebRTCAnswer(offer: offer, parameters: SDPFixtures.parameters)
        #expect(answer.audioPayloadType == 96)
        #expect(answer.sdp.contains("a=rtpmap:96 opus/48000/2\r\n"))
        #expect(!answer.sdp.contains("PCMU"))
        #expect(answer.sdp.contains("a=group:BUNDLE 0\r\n"))
        #expect(answer.sdp.contains("a=ssrc:12345 cname:srvcname\r\n"))
    }

    @Test("Offer direction is mirrored; a sendonly offer gets no server SSRC")
    func directions() throws {
        let sendonly = SDPFixtures.aiortc.replacingOccurrences(of: "a=sendrecv", with: "a=sendonly")
        let answer = WebRTCAnswer(offer: try WebRTCOffer(sdp: sendonly), parameters: SDPFixtures.parameters)
        #expect(answer.audioDirection == .recvonly)
        #expect(!answer.sdp.contains("a=ssrc:"))
        #expect(!answer.sdp.contains("a=msid:"))
    }

    @Test(
        "Unusable offers throw an error naming what is missing",
        arguments: [
            ("a=group:BUNDLE 0\n", "", SDPError.Code.missingBundle, "BUNDLE"),
            ("a=rtcp-mux\n", "", .missingRTCPMux, "rtcp-mux"),
            ("a=rtpmap:96 opus/48000/2\n", "", .noOpus, "opus"),
            ("a=ice-ufrag:9s2E\n", "", .missingICECredentials, "ice-ufrag"),
            ("a=ice-pwd:Yb1c2d3e4f5g6h7i8j9k0lMNOP\n", "a=ice-pwd:short\n", .missingICECredentials, "ice-pwd"),
            ("a=setup:actpass\n", "a=setup:passive\n", .unsupported, "setup:passive"),
            ("m=audio 41513", "m=video 41513", .missingAudio, "m=audio"),
        ])
    func badOffers(remove: String, insert: String, code: SDPError.Code, needle: String) {
        let text = SDPFixtures.aiortc.replacingOccurrences(of: remove, with: insert)
        #expect(text != SDPFixtures.aiortc)
        do {
            _ = try WebRTCOffer(sdp: text)
            Issue.record("accepted an offer without \(needle)")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains(needle), "\(error.message)")
        }
    }

    @Test("Missing fingerprint is reported")
    func noFingerprint() {
        let text = SDPFixtures.aiortc.split(separator: "\n").filter { !$0.hasPrefix("a=fingerprint") }
            .joined(separator: "\n")
        #expect(throws: SDPError.self) { try WebRTCOffer(sdp: text) }
        do {
            _ = try WebRTCOffer(sdp: text)
        } catch {
            #expect(error.code == .missingFingerprint)
        }
    }

    @Test("Malformed text never traps", arguments: [
        "", "v=1\r\n", "hello", "v=0\r\nm=\r\n", "v=0\r\no=- 1 1 IN IP4 x\r\nm=audio x RTP 0\r\n", "v=0\r\n=\r\n",
        "v=0\r\no=- 1 1 IN IP4 x\r\nm=audio 70000 RTP 0\r\n", "v=0\r\n\u{0}\u{1}\r\n",
    ])
    func malformed(text: String) {
        #expect(throws: SDPError.self) { try WebRTCOffer(sdp: text) }
    }

    @Test("A CR inside a line is refused, so parse, write and parse again agree (found by the sdp fuzz target)")
    func carriageReturnInsideALine() throws {
        // The fuzzer's input had an m= line ending in "96 97 98 91\r " (CR, then a space): the format "91\r" was
        // kept, written back as "91\r\r\n" and re-read as "91".
        let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 91\r \r\n"
        #expect(throws: SDPError.self) { try SDPSessionDescription(parsing: text) }
        #expect(throws: SDPError.self) { try SDPSessionDescription(parsing: "v=0\r\no=- 1\r2 IN IP4 x\r\n") }
        // Line ends stay accepted: CRLF, LF alone, and extra CRs before the line end.
        let fine = try SDPSessionDescription(parsing: "v=0\r\no=- 1 1 IN IP4 x\ns=-\r\r\nm=audio 9 RTP 0\r\n")
        #expect(fine.media.map(\.formats) == [["0"]])
        #expect(try SDPSessionDescription(parsing: fine.text) == fine)
    }

    @Test("Random mutations of a real offer never trap")
    func fuzz() {
        var rng = SeededGenerator(seed: 5)
        let base = Array(SDPFixtures.chrome.utf8)
        for _ in 0..<300 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...127, using: &rng)
            }
            if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            _ = try? WebRTCOffer(sdp: String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test("Candidate lines round-trip")
    func candidates() throws {
        let text = "candidate:1 1 tcp 2113937151 192.0.2.10 8443 typ host tcptype passive"
        let c = try #require(SDPCandidate(sdp: text))
        #expect(c.transport == .tcp && c.port == 8443 && c.tcpType == "passive" && c.type == "host")
        #expect("candidate:" + c.sdpValue == text)
        #expect(SDPCandidate(sdp: "candidate:1 1 sctp 1 1.2.3.4 5 typ host") == nil)
        #expect(SDPCandidate(sdp: "candidate:1 1 udp 1 1.2.3.4 99999 typ host") == nil)
        #expect(SDPCandidate.priority(typePreference: 126, localPreference: 65535) == 2_130_706_431)
    }

    @Test("The client's audio offer is a valid offer for the server")
    func clientOffer() throws {
        let sdp = WebRTCAudioOffer(
            iceUfrag: "cliU", icePwd: "clientpasswordclientpass", fingerprint: SDPFixtures.parameters.fingerprint,
            audioSSRC: 777, cname: "cli"
        ).sdp
        let offer = try WebRTCOffer(sdp: sdp)
        #expect(offer.opus.payloadType == 111)
        #expect(offer.audio.ssrcs == [777])
    }
}
