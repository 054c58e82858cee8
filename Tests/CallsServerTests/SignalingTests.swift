import CallsTestSupport
import Foundation
import Logging
import Testing

@testable import CallsServer

@Suite struct SignalingTests {
    func joined(_ s: RunningServer) async throws -> (TestWebSocket, [String: Any]) {
        let ws = try await TestWebSocket(port: s.port)
        let reply = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        return (ws, reply)
    }

    /// Signaling runs on the server's own control thread, never on Swift's shared cooperative pool, where
    /// CPU-bound or blocking work elsewhere in the process could keep joins from being answered.
    @Test func signalingRunsOnTheControlThread() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (ws, joined) = try await joined(s)
        #expect(joined["type"] as? String == "joined")
        _ = try await ws.request(#"{"type":"offer","sdp":"v=0\r\nfake offer\r\n"}"#)
        try await ws.send(#"{"type":"mute"}"#)
        _ = try await ws.event("muted")
        #expect(s.backend.threads.count == 2)
        #expect(s.backend.threads.allSatisfy { $0 }, "backend calls made on the control thread: \(s.backend.threads)")
    }

    @Test func joinOfferAnswerConnectedLeave() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (ws, joined) = try await joined(s)
        #expect(joined["type"] as? String == "joined")
        #expect(joined["v"] as? Int == 1)
        #expect((joined["sessionId"] as? String)?.count == 16)
        #expect((joined["iceServers"] as? [Any])?.isEmpty == true)
        let answer = try await ws.request(#"{"type":"offer","sdp":"v=0\r\nfake offer\r\n"}"#)
        #expect(answer["type"] as? String == "answer")
        #expect((answer["sdp"] as? String)?.hasPrefix("v=0") == true)
        #expect(s.backend.offers == ["v=0\r\nfake offer\r\n"])
        s.backend.emit(.iceConnected(transport: "tcp", remote: "127.0.0.1:5000"), to: "media-1")
        s.backend.emit(.dtlsConnected(profile: "SRTP_AEAD_AES_128_GCM"), to: "media-1")
        let connected = try await ws.receive()
        #expect(connected["type"] as? String == "connected")
        #expect(connected["transport"] as? String == "tcp")
        #expect(try await ws.request(#"{"type":"ping"}"#)["type"] as? String == "pong")
        let left = try await ws.request(#"{"type":"leave"}"#)
        #expect(left["type"] as? String == "left")
        #expect(s.backend.closed == ["media-1"])
        let metrics = try await httpRequest(port: s.port, "/metrics")
        #expect(metrics.body.contains("callsctl_handshake_seconds_count 1"))
    }

    @Test func closingTheSocketClosesTheMediaSession() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (ws, _) = try await joined(s)
        _ = try await ws.request(#"{"type":"offer","sdp":"v=0"}"#)
        close(ws.socket.fd)
        for _ in 0..<100 where s.backend.closed.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(s.backend.closed == ["media-1"])
    }

    @Test func mediaClosedIsReported() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (ws, _) = try await joined(s)
        _ = try await ws.request(#"{"type":"offer","sdp":"v=0"}"#)
        s.backend.emit(.closed(reason: "consent expired"), to: "media-1")
        let closed = try await ws.receive()
        #expect(closed["type"] as? String == "closed")
        #expect(closed["reason"] as? String == "consent expired")
    }

    func expectError(_ reply: [String: Any], _ code: SignalingErrorCode, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply["type"] as? String == "error", sourceLocation: sourceLocation)
        #expect(reply["code"] as? String == code.rawValue, "\(reply)", sourceLocation: sourceLocation)
        #expect(((reply["message"] as? String)?.count ?? 0) > 20, sourceLocation: sourceLocation)
    }

    @Test func tokensAreChecked() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        expectError(try await ws.request(#"{"v":1,"type":"join","token":"garbage"}"#), .badToken)
        let expired = JoinTokenSigner(secret: testSecret).sign(
            JoinTokenClaims(channel: testChannel, user: "a", ttl: 60, now: Date().addingTimeInterval(-7200)))
        let reply = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(expired)\"}")
        expectError(reply, .expiredToken)
        let forged = JoinTokenSigner(secret: [UInt8](repeating: 1, count: 32)).sign(
            JoinTokenClaims(channel: testChannel, user: "a", ttl: 60))
        let forgedReply = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(forged)\"}")
        expectError(forgedReply, .badToken)
        #expect((forgedReply["message"] as? String)?.contains("signature") == true)
        expectError(try await ws.request(#"{"v":1,"type":"join"}"#), .badToken)
        // After all that, a good token still joins on the same socket.
        let ok = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        #expect(ok["type"] as? String == "joined")
        expectError(try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"), .alreadyJoined)
    }

    @Test func badMessagesGetErrorsNotCrashes() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        expectError(try await ws.request("{not json"), .badMessage)
        expectError(try await ws.request("[1,2]"), .badMessage)
        expectError(try await ws.request(#"{"v":1}"#), .badMessage)
        expectError(try await ws.request(#"{"v":1,"type":"dance"}"#), .badMessage)
        expectError(try await ws.request(#"{"v":3,"type":"join","token":"x"}"#), .unsupportedVersion)
        expectError(try await ws.request(#"{"v":1.5,"type":"join","token":"x"}"#), .unsupportedVersion)
        expectError(try await ws.request(#"{"type":"join","token":"x"}"#), .badMessage)
        expectError(try await ws.request(#"{"type":"offer","sdp":"v=0"}"#), .notJoined)
        expectError(try await ws.request(#"{"type":"ice","candidate":null}"#), .notJoined)
        expectError(try await ws.request(String(repeating: "[", count: 5000)), .badMessage)
        try await ws.sendFrame(opcode: 2, [1, 2, 3])
        expectError(try await ws.receive(), .badMessage)
        try await ws.sendFrame(opcode: 1, [0xFF, 0xFE])
        expectError(try await ws.receive(), .badMessage)
        _ = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        expectError(try await ws.request(#"{"type":"offer"}"#), .badOffer)
        expectError(try await ws.request(#"{"type":"offer","sdp":42}"#), .badOffer)
        #expect(try await ws.request(#"{"type":"ping"}"#)["type"] as? String == "pong")
    }

    @Test func refusedOfferIsBadOffer() async throws {
        let backend = FakeBackend()
        backend.refuseOffers = "the offer has no audio m-line"
        let s = try await RunningServer.start(backend: backend)
        defer { Task { await s.server.shutdown() } }
        let (ws, _) = try await joined(s)
        let reply = try await ws.request(#"{"type":"offer","sdp":"v=0"}"#)
        expectError(reply, .badOffer)
        #expect((reply["message"] as? String)?.contains("no audio m-line") == true)
    }

    @Test func placeholderBackendSaysMediaUnavailable() async throws {
        var config = MediaBackendConfiguration()
        config.udpListen = "127.0.0.1:0"
        config.tcpListen = "127.0.0.1:0"
        let placeholder = PlaceholderMediaBackend(configuration: config)
        try await placeholder.start()
        #expect(placeholder.udpPort != nil && placeholder.udpPort != 0)
        defer { Task { await placeholder.shutdown() } }
        var api = APIServerConfiguration()
        api.listen = ListenAddress(host: "127.0.0.1", port: 0)
        let server = APIServer(
            configuration: api, backend: placeholder, signer: JoinTokenSigner(secret: testSecret),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        let port = try await server.start().port
        defer { Task { await server.shutdown() } }
        let ws = try await TestWebSocket(port: port)
        _ = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        expectError(try await ws.request(#"{"type":"offer","sdp":"v=0"}"#), .mediaUnavailable)
    }

    @Test func oversizeMessagesAreRefused() async throws {
        let s = try await RunningServer.start(maxMessageBytes: 1000)
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let big = "{\"type\":\"ping\",\"pad\":\"" + String(repeating: "x", count: 5000) + "\"}"
        expectError(try await ws.request(big), .messageTooLarge)
        // Fragmented: 3 frames of 600 bytes.
        let chunk = [UInt8](repeating: 0x20, count: 600)
        try await ws.sendFrame(opcode: 1, chunk, fin: false)
        try await ws.sendFrame(opcode: 0, chunk, fin: false)
        try await ws.sendFrame(opcode: 0, chunk, fin: true)
        expectError(try await ws.receive(), .messageTooLarge)
        // A fragmented message under the limit is reassembled.
        try await ws.sendFrame(opcode: 1, Array(#"{"type":"#.utf8), fin: false)
        try await ws.sendFrame(opcode: 0, Array(#""ping"}"#.utf8), fin: true)
        #expect(try await ws.receive()["type"] as? String == "pong")
    }

    @Test func defaultLimitIs256KB() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let big = "{\"type\":\"ping\",\"pad\":\"" + String(repeating: "x", count: 300 * 1024) + "\"}"
        expectError(try await ws.request(big), .messageTooLarge)
        #expect(try await ws.request(#"{"type":"ping"}"#)["type"] as? String == "pong")
    }

    @Test func admissionCanRefuse() async throws {
        let s = try await RunningServer.start(admission: { claims in
            claims.role == .admin ? nil : "calls are disabled in channel \(claims.channel)"
        })
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        expectError(try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"), .callNotAllowed)
        let admin = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken(role: .admin))\"}")
        #expect(admin["type"] as? String == "joined")
    }

    @Test func participantLimitRefusesTheNextJoinUntilSomeoneLeaves() async throws {
        let s = try await RunningServer.start(configure: { $0.maxParticipants = 2 })
        defer { Task { await s.server.shutdown() } }
        let join = "{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"
        let a = try await TestWebSocket(port: s.port)
        #expect(try await a.request(join)["type"] as? String == "joined")
        let b = try await TestWebSocket(port: s.port)
        #expect(try await b.request(join)["type"] as? String == "joined")
        let c = try await TestWebSocket(port: s.port)
        let refused = try await c.request(join)
        expectError(refused, .callFull)
        #expect((refused["message"] as? String)?.contains(testChannel.rawValue) == true)
        #expect(s.server.activeSessions == 2)
        // When someone leaves, the next join fits.
        _ = try? await a.request(#"{"v":1,"type":"leave"}"#)
        for _ in 0..<100 where s.server.activeSessions > 1 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await c.request(join)["type"] as? String == "joined")
    }

    @Test func policyIsCheckedWhenACallStartsNotForLaterJoins() async throws {
        // The first join starts the call and is admitted; then the channel is "disabled": later joins to
        // the running call are not checked again (the Calls plugin's rule), a new call would be.
        let disabled = ManagedFlag()
        let s = try await RunningServer.start(admission: { claims in
            disabled.value ? "calls are disabled in channel \(claims.channel)" : nil
        })
        defer { Task { await s.server.shutdown() } }
        let join = "{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"
        let first = try await TestWebSocket(port: s.port)
        #expect(try await first.request(join)["type"] as? String == "joined")
        disabled.value = true
        let second = try await TestWebSocket(port: s.port)
        #expect(try await second.request(join)["type"] as? String == "joined", "joining a running call is not checked again")
        _ = try? await first.request(#"{"v":1,"type":"leave"}"#)
        _ = try? await second.request(#"{"v":1,"type":"leave"}"#)
        for _ in 0..<100 where s.server.activeSessions > 0 { try await Task.sleep(for: .milliseconds(20)) }
        let third = try await TestWebSocket(port: s.port)
        expectError(try await third.request(join), .callNotAllowed)
    }

    @Test func drainingRefusesJoins() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        s.server.drain()
        let ws = try await TestWebSocket(port: s.port)
        expectError(try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"), .serverDraining)
    }

    /// A token with exp = 2^63-1 used to overflow in the check and kill the whole server; huge numbers in every
    /// numeric field of a message are refused with an error and the server keeps answering.
    @Test func hugeNumbersAreRefusedAndTheServerLives() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        func signed(_ payload: String) -> String {
            let input = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
            return input + "." + HMACTestHelper.mac(input)
        }
        let now = Int(Date().timeIntervalSince1970)
        for (claim, value) in [("exp", "9223372036854775807"), ("exp", "-9223372036854775808"), ("nbf", "9223372036854775807"),
            ("iat", "-9223372036854775808"), ("exp", "1e300"), ("exp", "1e400")] {
            var times = ["iat": "\(now)", "exp": "\(now + 600)"]
            times[claim] = value
            let payload = "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"iat\":\(times["iat"]!),\"exp\":\(times["exp"]!)"
                + (claim == "nbf" ? ",\"nbf\":\(value)" : "") + "}"
            let reply = try await ws.request("{\"v\":2,\"type\":\"join\",\"token\":\"\(signed(payload))\"}")
            expectError(reply, .badToken)
        }
        for v in ["9223372036854775807", "-9223372036854775809", "1e300", "-1e300", "18446744073709551616", "2.0000001", "1e-300"] {
            expectError(try await ws.request("{\"v\":\(v),\"type\":\"join\",\"token\":\"x\"}"), .unsupportedVersion)
            expectError(try await ws.request("{\"v\":\(v),\"type\":\"ping\"}"), .unsupportedVersion)
        }
        for v in ["1e400", "-1e400"] {
            let reply = try await ws.request("{\"v\":\(v),\"type\":\"join\",\"token\":\"x\"}")
            expectError(reply, .badMessage)
            #expect((reply["message"] as? String)?.contains("number too large") == true, "\(reply)")
        }
        let ok = try await ws.request("{\"v\":2,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        #expect(ok["type"] as? String == "joined")
        #expect(ok["v"] as? Int == 2)
        // Numbers where strings or booleans belong, once joined.
        for field in ["sdp", "emoji", "candidate"] {
            // ice with any candidate is accepted silently (ICE-lite learns addresses from checks), so it is left out.
            for type in ["offer", "reaction", "ice"] where !(type == "ice" && field == "candidate") {
                let reply = try await ws.request("{\"type\":\"\(type)\",\"\(field)\":1e308}")
                #expect(reply["type"] as? String == "error", "\(type) \(field): \(reply)")
            }
        }
        #expect(try await ws.request(#"{"type":"ping"}"#)["type"] as? String == "pong")
    }

    @Test func duplicateKeysInMessagesAreRefused() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let reply = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\",\"type\":\"ping\"}")
        expectError(reply, .badMessage)
        #expect((reply["message"] as? String)?.contains("duplicate key \"type\"") == true, "\(reply)")
        let deep = try await ws.request(String(repeating: "[", count: 100_000))
        expectError(deep, .badMessage)
        #expect((deep["message"] as? String)?.contains("nested deeper than 64") == true, "\(deep)")
    }

    /// Every refused join is logged once, with client text escaped, and counted in callsctl_joins_total.
    @Test func everyRefusedJoinIsLoggedAndCounted() async throws {
        let log = CapturedLog()
        let s = try await RunningServer.start(logger: log.logger)
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let hostileUser = "eve\n2026-01-01T00:00:00Z info joined: admin \u{1B}[2J\u{7F}\u{85}"
        let requests: [(String, SignalingErrorCode)] = [
            (#"{"v":1,"type":"join"}"#, .badToken),
            (#"{"v":1,"type":"join","token":42}"#, .badToken),
            (#"{"v":1,"type":"join","token":""}"#, .badToken),
            (#"{"v":1,"type":"join","token":null}"#, .badToken),
            (#"{"v":9,"type":"join","token":"x"}"#, .unsupportedVersion),
            (#"{"type":"join","token":"x"}"#, .badMessage),
            ("{\"v\":1,\"type\":\"join\",\"token\":\"garbage\\n\\u001b[31m\"}", .badToken),
            ("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken(user: hostileUser))\"}", .badToken),
            ("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\",\"channel\":\"x\\ny\\u001b\"}", .badToken),
            ("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\",\"echo\":1}", .badMessage),
            ("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\",\"muted\":\"yes\"}", .badMessage),
        ]
        for (request, code) in requests { expectError(try await ws.request(request), code) }
        let joined = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken(user: "bob"))\"}")
        #expect(joined["type"] as? String == "joined")
        expectError(try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}"), .alreadyJoined)
        let refused = requests.count + 1

        let metrics = try await httpRequest(port: s.port, "/metrics")
        #expect(metrics.body.contains("callsctl_joins_total{result=\"refused\"} \(refused)"), "\(metrics.body)")
        #expect(metrics.body.contains("callsctl_joins_total{result=\"ok\"} 1"))
        let lines = log.lines
        let refusals = lines.filter { $0.hasPrefix("join refused") }
        #expect(refusals.count == refused, "\(refusals.joined(separator: "\n"))")
        for line in lines {
            #expect(UntrustedText.firstControl(in: line) == nil, "raw control character in a log line: \(line.debugDescription)")
        }
        #expect(refusals.contains { $0.contains("control character") && $0.contains("U+000A") })
        #expect(refusals.contains { $0.contains(#"wanted.channel=x\ny\x1B"#) }, "\(refusals)")
    }

    @Test func websocketPingGetsPong() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        try await ws.sendFrame(opcode: 9, [1, 2, 3])
        let (opcode, payload) = try await ws.receiveFrame()
        #expect(opcode == 10)
        #expect(payload == [1, 2, 3])
    }
}

@Suite struct JSONLiteTests {
    @Test(arguments: [
        (#"{"a":[1,2.5,-3e2,true,false,null,"x\n\u00e9\ud83d\ude00"]}"#, true),
        ("{}", true), ("[]", true), ("  1 ", true),
        ("{", false), ("{\"a\":}", false), ("[1,]", false), ("01x", false), ("\"\\ud800\"", false),
        ("\"a\u{01}\"", false), ("tru", false), ("{} x", false),
    ])
    func parses(_ text: String, _ valid: Bool) {
        #expect(((try? JSONLite.parse(text)) != nil) == valid, "\(text)")
    }

    @Test func depthIsLimited() {
        #expect(throws: (any Error).self) { try JSONLite.parse(String(repeating: "[", count: 100_000)) }
        for deep in [String(repeating: "[", count: 100_000), String(repeating: "{\"a\":", count: 100_000)] {
            #expect { try JSONLite.parse(deep) } throws: { "\($0)".contains("nested deeper than 64 levels") }
        }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONLite.parse(ok) }
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: (any Error).self) { try JSONLite.parse(tooDeep) }
    }

    @Test func duplicateKeysAreRefusedNamingTheKey() throws {
        #expect { try JSONLite.parse(#"{"type":"join","type":"ping"}"#) } throws: {
            "\($0)".contains("duplicate key \"type\"")
        }
        #expect { try JSONLite.parse(#"{"a":{"b":1,"b":2}}"#) } throws: { "\($0)".contains("duplicate key \"b\"") }
        // The same key in different objects is fine; \u escapes count as the key they spell.
        #expect(throws: Never.self) { try JSONLite.parse(#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#) }
        #expect(throws: (any Error).self) { try JSONLite.parse(#"{"a":1,"\u0061":2}"#) }
        // A hostile key is escaped in the error.
        #expect { try JSONLite.parse(#"{"x\n\u001b":1,"x\n\u001b":2}"#) } throws: {
            UntrustedText.firstControl(in: "\($0)") == nil && "\($0)".contains("duplicate key")
        }
    }

    @Test(arguments: ["1e400", "-1e400", "1E+999", "123456789e999999999999"])
    func numbersBeyondDoubleAreRefused(_ number: String) {
        #expect { try JSONLite.parse("[\(number)]") } throws: { "\($0)".contains("number too large") }
    }

    @Test func hugeButFiniteNumbersParseAndRenderWithoutTrapping() throws {
        for text in ["9223372036854775807", "-9223372036854775808", "1e300", "-1e300", "18446744073709551616", "1e15",
            String(repeating: "9", count: 300)] {
            let value = try JSONLite.parse(text)
            _ = value.rendered
            #expect(value.integer(in: 0...Int64.max) == nil || text == "1e15", "\(text)")
        }
        #expect(JSONLite.number(2).integer(in: 1...2) == 2)
        #expect(JSONLite.number(2.5).integer(in: 1...3) == nil)
        #expect(JSONLite.number(9.223372036854775807e18).integer(in: .min ... .max) == nil)
        #expect(JSONLite.number(-9.223372036854775808e18).integer(in: .min ... .max) == .min)
        #expect(JSONLite.string("1").integer(in: 0...2) == nil)
    }

    @Test func leadingZerosAndInvalidUTF8AreRefused() {
        #expect(throws: (any Error).self) { try JSONLite.parse("01") }
        #expect(throws: (any Error).self) { try JSONLite.parse("-00") }
        #expect(throws: Never.self) { try JSONLite.parse("[0, -0, 0.5, -0e1]") }
        #expect(throws: (any Error).self) { try JSONLite.parse(bytes: [0x22, 0xFF, 0x22]) }
    }
}

@Suite struct ListenAddressTests {
    @Test(arguments: [
        ("0.0.0.0:8443", "0.0.0.0", 8443), ("127.0.0.1:0", "127.0.0.1", 0), ("[::1]:8045", "::1", 8045), (":8045", "0.0.0.0", 8045),
    ])
    func valid(_ text: String, _ host: String, _ port: Int) throws {
        let a = try ListenAddress(parsing: text)
        #expect(a.host == host)
        #expect(a.port == port)
    }

    @Test(arguments: ["8443", "example.com:8443", "1.2.3.4:99999", "::1:8045", "1.2.3.4:x", "[::1"])
    func invalid(_ text: String) {
        #expect(throws: ListenAddressError.self) { try ListenAddress(parsing: text) }
    }
}

/// A flag the test flips while the server reads it from its own tasks.
final class ManagedFlag: @unchecked Sendable {
    // @unchecked: `stored` is only touched with `lock` held.
    private let lock = NSLock()
    private var stored = false
    var value: Bool {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
