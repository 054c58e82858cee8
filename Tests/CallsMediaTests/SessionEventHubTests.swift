import Testing

@testable import CallsMedia

@Suite struct SessionEventHubTests {
    /// The signaling layer subscribes only after the answer; a renegotiation request made in between reached
    /// nobody, and the participant never got the others' tracks until something else changed.
    @Test func aRenegotiationRequestBeforeSubscribingIsReplayed() async {
        let hub = SessionEventHub()
        hub.emit(.iceConnected(transport: "udp", remote: "127.0.0.1:1"))
        hub.emit(.renegotiationNeeded(audioSlots: 1, videoSlots: 0))
        hub.emit(.renegotiationNeeded(audioSlots: 2, videoSlots: 1))
        let stream = hub.subscribe()
        hub.emit(.closed(reason: "done"))
        var seen: [MediaSessionEvent] = []
        for await e in stream { seen.append(e) }
        // History in order, then only the latest request (not every one), then what came after.
        #expect(
            seen == [
                .iceConnected(transport: "udp", remote: "127.0.0.1:1"),
                .renegotiationNeeded(audioSlots: 2, videoSlots: 1), .closed(reason: "done"),
            ])
    }

    @Test func aClosedSessionReplaysNoRequest() async {
        let hub = SessionEventHub()
        hub.emit(.renegotiationNeeded(audioSlots: 1, videoSlots: 0))
        hub.emit(.closed(reason: "done"))
        var seen: [MediaSessionEvent] = []
        for await e in hub.subscribe() { seen.append(e) }
        #expect(seen == [.closed(reason: "done")])
    }

    @Test func aLiveSubscriberGetsTheLatestPendingRequest() async {
        let hub = SessionEventHub()
        hub.emit(.renegotiationNeeded(audioSlots: 3, videoSlots: 0))
        let stream = hub.subscribe()
        hub.emit(.closed(reason: "done"))
        var seen: [MediaSessionEvent] = []
        for await e in stream { seen.append(e) }
        #expect(seen == [.renegotiationNeeded(audioSlots: 3, videoSlots: 0), .closed(reason: "done")])
    }
}
