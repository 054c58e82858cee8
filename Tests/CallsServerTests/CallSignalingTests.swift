import Foundation
import Testing

@testable import CallsServer

/// Calls over signaling: membership, events to everyone in the call, mute, one presenter, hands,
/// reactions, renegotiation, echo tests kept out of calls.
@Suite struct CallSignalingTests {
    func join(_ s: RunningServer, _ user: String, extra: String = "", version: Int = 1) async throws -> (TestWebSocket, [String: Any]) {
        let ws = try await TestWebSocket(port: s.port)
        let reply = try await ws.request("{\"v\":\(version),\"type\":\"join\",\"token\":\"\(goodToken(user: user))\"\(extra)}")
        #expect(reply["type"] as? String == "joined", "\(reply)")
        return (ws, reply)
    }

    func expectError(_ reply: [String: Any], _ code: SignalingErrorCode, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply["type"] as? String == "error", sourceLocation: sourceLocation)
        #expect(reply["code"] as? String == code.rawValue, "\(reply)", sourceLocation: sourceLocation)
        #expect(((reply["message"] as? String)?.count ?? 0) > 20, sourceLocation: sourceLocation)
    }

    @Test func eventsReachEveryoneInTheCall() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (alice, aliceJoined) = try await join(s, "alice")
        #expect((aliceJoined["participants"] as? [[String: Any]])?.count == 1)
        // The server's fixed audio slots, whatever the size of the call.
        #expect(aliceJoined["audioSlots"] as? Int == 3)
        let started = try await alice.event("call_started")
        #expect(started["user"] as? String == "alice")
        #expect((started["at"] as? String)?.hasSuffix("Z") == true)
        let aliceID = aliceJoined["sessionId"] as? String

        let (bob, bobJoined) = try await join(s, "bob", extra: #","muted":true"#)
        let people = bobJoined["participants"] as? [[String: Any]] ?? []
        #expect(people.map { $0["user"] as? String } == ["alice", "bob"])
        #expect(bobJoined["audioSlots"] as? Int == 3)
        #expect(bobJoined["videoSlots"] as? Int == 0)
        let bobJoinedEvent = try await alice.event("joined", user: "bob")
        #expect(bobJoinedEvent["user"] as? String == "bob")
        #expect(bobJoinedEvent["muted"] as? Bool == true)
        #expect(bobJoinedEvent["participant"] as? String == bobJoined["sessionId"] as? String)

        try await bob.send(#"{"type":"unmute"}"#)
        #expect(try await alice.event("unmuted")["user"] as? String == "bob")
        try await alice.send(#"{"type":"raise_hand"}"#)
        #expect(try await bob.event("hand_raised")["participant"] as? String == aliceID)
        try await alice.send(#"{"type":"lower_hand"}"#)
        #expect(try await bob.event("hand_lowered")["user"] as? String == "alice")
        try await alice.send(#"{"type":"reaction","emoji":"🎉"}"#)
        let reaction = try await bob.event("reaction")
        #expect(reaction["emoji"] as? String == "🎉")
        expectError(try await alice.request(#"{"type":"reaction","emoji":""}"#), .badMessage)
        expectError(try await alice.request(#"{"type":"reaction","emoji":"this is not an emoji at all"}"#), .badMessage)

        _ = try await bob.request(#"{"type":"leave"}"#)
        #expect(try await alice.event("left")["user"] as? String == "bob")
        try await alice.send(#"{"type":"leave"}"#)
        #expect(try await alice.event("call_ended")["user"] as? String == "alice")
    }

    @Test func onePresenterAtATime() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (alice, _) = try await join(s, "alice")
        let (bob, _) = try await join(s, "bob")
        _ = try await alice.request(#"{"type":"offer","sdp":"v=0\r\nalice\r\n"}"#)
        #expect(try await alice.request(#"{"type":"screen_start"}"#)["type"] as? String == "screen_ok")
        #expect(try await bob.event("screen_on")["user"] as? String == "alice")
        let busy = try await bob.request(#"{"type":"screen_start"}"#)
        expectError(busy, .screenBusy)
        #expect((busy["message"] as? String)?.contains("alice is already sharing") == true)
        try await alice.send(#"{"type":"screen_stop"}"#)
        #expect(try await bob.event("screen_off")["user"] as? String == "alice")
        #expect(try await bob.request(#"{"type":"screen_start"}"#)["type"] as? String == "screen_ok")
        // The presenter leaving turns the screen off for the others.
        try await bob.send(#"{"type":"leave"}"#)
        #expect(try await alice.event("screen_off", user: "bob")["participant"] != nil)
        #expect(s.backend.calls.prefix(3) == ["media-1 create:\(testChannel)", "media-1 present", "media-1 unpresent"])
    }

    @Test func muteReachesTheMediaLayerAndRenegotiationIsAnswered() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (alice, _) = try await join(s, "alice", extra: #","muted":true"#)
        let answer = try await alice.request(#"{"type":"offer","sdp":"v=0\r\nfirst\r\n"}"#)
        #expect(answer["type"] as? String == "answer")
        try await alice.send(#"{"type":"unmute"}"#)
        try await alice.send(#"{"type":"mute"}"#)
        let again = try await alice.request(#"{"type":"offer","sdp":"v=0\r\nsecond\r\n"}"#)
        #expect((again["sdp"] as? String)?.contains("renegotiated") == true)
        // A version 1 client gets no speaker map (it does not know the message): the next message is the request.
        s.backend.emit(.speakers([SlotSpeaker(slot: 0, mid: "1", ssrc: 7, participant: "someone")]), to: "media-1")
        s.backend.emit(.renegotiationNeeded(audioSlots: 2, videoSlots: 1), to: "media-1")
        let ask = try await alice.receive()
        #expect(ask["v"] as? Int == 1)
        #expect(ask["type"] as? String == "renegotiate")
        #expect(ask["audioSlots"] as? Int == 2)
        #expect(ask["videoSlots"] as? Int == 1)
        #expect(
            s.backend.calls == [
                "media-1 create:\(testChannel)", "media-1 mute", "media-1 unmute", "media-1 mute", "media-1 renegotiate",
            ])
    }

    @Test func versionTwoClientsGetTheSpeakerMap() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (alice, joined) = try await join(s, "alice", version: 2)
        #expect(joined["v"] as? Int == 2)
        _ = try await alice.request(#"{"v":2,"type":"offer","sdp":"v=0\r\nfirst\r\n"}"#)
        s.backend.emit(
            .speakers([
                SlotSpeaker(slot: 0, mid: "1", ssrc: 11, participant: "ktlvts55sc5359of"),
                SlotSpeaker(slot: 1, mid: "2", ssrc: 12, participant: nil),
                SlotSpeaker(slot: 2, mid: nil, ssrc: 13, participant: nil),
            ]), to: "media-1")
        let map = try await alice.receive()
        #expect(map["type"] as? String == "speakers", "\(map)")
        let slots = map["slots"] as? [[String: Any]] ?? []
        #expect(slots.count == 3)
        #expect(slots.first?["participant"] as? String == "ktlvts55sc5359of")
        #expect(slots.first?["mid"] as? String == "1")
        #expect(slots.first?["ssrc"] as? Int == 11)
        #expect(slots.dropFirst().allSatisfy { $0["participant"] is NSNull })
        #expect(slots.last?["mid"] is NSNull)
        // Versions outside 1...2 are refused, naming the current one.
        let (other, _) = try await join(s, "bob", version: 2)
        let refused = try await other.request(#"{"v":3,"type":"ping"}"#)
        expectError(refused, .unsupportedVersion)
        #expect((refused["message"] as? String)?.contains("version 2") == true)
    }

    @Test func echoTestsStayOutOfCalls() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let (echo, joined) = try await join(s, "tester", extra: #","echo":true"#)
        #expect(joined["echo"] as? Bool == true)
        #expect(joined["participants"] == nil)
        expectError(try await echo.request(#"{"type":"mute"}"#), .notInCall)
        _ = try await echo.request(#"{"type":"offer","sdp":"v=0\r\necho\r\n"}"#)
        expectError(try await echo.request(#"{"type":"offer","sdp":"v=0\r\nagain\r\n"}"#), .alreadyOffered)
        let (alice, aliceJoined) = try await join(s, "alice")
        #expect((aliceJoined["participants"] as? [[String: Any]])?.count == 1)
        _ = try await alice.event("call_started")
        #expect(s.backend.calls == ["media-1 create:echo"])
    }

    @Test func aTokenForAnotherChannelIsRefused() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let other = "zzzzzzzzzzzzzzzzzzzzzzzzzz"
        let reply = try await ws.request(#"{"v":1,"type":"join","token":"\#(goodToken())","channel":"\#(other)"}"#)
        expectError(reply, .badToken)
        #expect(
            reply["message"] as? String
                == "the token is for channel \(testChannel), not \(other); create one for \(other) with `callsctl token create --channel \(other) --user NAME`")
        let ok = try await ws.request(#"{"v":1,"type":"join","token":"\#(goodToken())","channel":"\#(testChannel)"}"#)
        #expect(ok["type"] as? String == "joined")
    }

    @Test func aSilentClientIsDisconnectedAndTheCallIsTold() async throws {
        let s = try await RunningServer.start(configure: { $0.webSocketPingInterval = .seconds(3) })
        defer { Task { await s.server.shutdown() } }
        // bob joins first and answers pings while he waits; alice joins, offers, then reads nothing and answers
        // no pings, like a peer whose network vanished.
        let (bob, _) = try await join(s, "bob")
        let (alice, aliceJoined) = try await join(s, "alice")
        _ = try await alice.request(#"{"type":"offer","sdp":"v=0\r\nalice\r\n"}"#)
        let left = try await bob.event("left", user: "alice")
        #expect(left["participant"] as? String == aliceJoined["sessionId"] as? String)
        // bob, who answers, is still there.
        #expect(try await bob.request(#"{"type":"ping"}"#)["type"] as? String == "pong")
        for _ in 0..<100 where s.backend.closed.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(s.backend.closed == ["media-1"])
        _ = alice
    }

    @Test func callMessagesNeedAJoin() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        for type in ["mute", "unmute", "screen_start", "screen_stop", "raise_hand", "lower_hand"] {
            expectError(try await ws.request("{\"type\":\"\(type)\"}"), .notJoined)
        }
        expectError(try await ws.request(#"{"v":1,"type":"join","token":"\#(goodToken())","echo":"yes"}"#), .badMessage)
        expectError(try await ws.request(#"{"v":1,"type":"join","token":"\#(goodToken())","muted":1}"#), .badMessage)
    }
}
