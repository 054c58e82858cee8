import CallsMedia
import CallsTestSupport
import CallsWire
import Foundation
import Testing

/// Three `MediaClient`s in one call on a real `MediaServer` over loopback UDP: each hears the other two (and never
/// itself), and a participant muted at the server stops reaching the others. Every wait is bounded.
@Suite(.timeLimit(.minutes(3)))
struct MediaClientCallTests {
    struct Participant {
        let client: MediaClient
        let id: String
    }

    /// Polls `condition` every 10 ms for at most `timeout` (generous: a starved suite delays packets); true once it
    /// holds. A timeout is recorded with what was awaited and whether the process was starved meanwhile.
    static func eventually(
        _ what: String, _ timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: @Sendable () async -> Bool
    ) async -> Bool {
        let start = LoadSnapshot.now()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        if await condition() { return true }
        Issue.record("\(WaitTimeout(waitingFor: what, since: start))", sourceLocation: sourceLocation)
        return false
    }

    /// Sends `rounds` packets from each of `senders`, interleaved, 5 ms apart.
    static func talk(_ senders: [MediaClient], rounds: Int, base: Int) async {
        for i in 0..<rounds {
            for c in senders {
                c.sendAudio(payload: Array("call-\(base + i)".utf8) + [UInt8](repeating: 7, count: 60), timestamp: UInt32((base + i) * 960))
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func threeParticipantsHearEachOtherAndMuteStopsForwarding() async throws {
        let server = try await MediaTest.server(tcpCandidates: false)
        var participants: [Participant] = []
        do {
            for i in 0..<3 {
                let client = try MediaClient(logger: MediaTest.logger)
                let offer = client.callOffer(audioReceiveSlots: 2)
                let (id, answer) = try await server.createSession(
                    offer: offer, label: "p\(i)", route: .call("c1"), participant: "p\(i)")
                try await client.connect(answer: answer)
                participants.append(Participant(client: client, id: id))
            }
            // Earlier joiners learn about later ones by renegotiating (same offer shape, a new answer).
            for p in participants {
                let answer = try await server.renegotiate(p.id, offer: p.client.callOffer(audioReceiveSlots: 2))
                try p.client.applyAnswer(answer)
            }
            let ssrcs = participants.map(\.client.audioSSRC)
            for (i, p) in participants.enumerated() {
                let others = Set(ssrcs.enumerated().filter { $0.offset != i }.map(\.element))
                #expect(p.client.announcedSSRCs == others, "participant \(i) slots: \(p.client.receiveSlots)")
                #expect(p.client.receiveSlots.count == 2)
                #expect(Set(p.client.receiveSlots.compactMap(\.streamID)) == Set((0..<3).filter { $0 != i }.map { "p\($0)" }))
            }

            // Everyone talks: each receives both others' SSRCs and never its own.
            let rounds = 20
            await Self.talk(participants.map(\.client), rounds: rounds, base: 0)
            for (i, p) in participants.enumerated() {
                let others = ssrcs.enumerated().filter { $0.offset != i }.map(\.element)
                let complete = await Self.eventually("participant \(i) to hear both others") {
                    let counts = await p.client.receivedPacketCounts()
                    return others.allSatisfy { (counts[$0] ?? 0) >= rounds }
                }
                let counts = await p.client.receivedPacketCounts()
                #expect(complete, "participant \(i) received \(counts)")
                #expect(counts[ssrcs[i]] == nil, "participant \(i) received its own audio")
                #expect(Set(counts.keys).isSubset(of: Set(others)))
                #expect(await p.client.undecryptablePacketCount() == 0)
            }
            // The payload made it through unchanged (decrypted with the receiver's SRTP keys).
            let stream = participants[1].client.receivedAudio
            let sample = await MediaTest.expectWithin("a packet of participant 0 at participant 1") { () async -> ReceivedRTPPacket? in
                for await packet in stream where packet.header.ssrc == ssrcs[0] { return packet }
                return nil
            } ?? nil
            #expect(sample.map { String(decoding: $0.payload.prefix(5), as: UTF8.self) } == "call-")

            // Mute participant 0 at the server: the others keep hearing each other, but no longer 0.
            let clients = participants.map(\.client)
            await server.setAudioForwarding(participants[0].id, false)
            let before1 = await clients[1].receivedPacketCounts()
            let before2 = await clients[2].receivedPacketCounts()
            let mutedBefore = server.metrics.mutedDropped
            await Self.talk(clients, rounds: rounds, base: 1000)
            let flowing = await Self.eventually("participants 1 and 2 to hear each other after the mute") {
                let c1 = await clients[1].receivedPacketCounts()
                let c2 = await clients[2].receivedPacketCounts()
                return (c1[ssrcs[2]] ?? 0) >= (before1[ssrcs[2]] ?? 0) + rounds
                    && (c2[ssrcs[1]] ?? 0) >= (before2[ssrcs[1]] ?? 0) + rounds
            }
            #expect(flowing)
            // Every packet of 0 reached the server before the last packets of 1 and 2 (one socket, one event loop),
            // so once the server counted all of them as muted, none can still be on its way.
            let allMuted = await Self.eventually("every packet of muted participant 0 to be dropped") { server.metrics.mutedDropped >= mutedBefore + UInt64(rounds) }
            #expect(allMuted, "muted drops: \(server.metrics.mutedDropped - mutedBefore)")
            let after1 = await participants[1].client.receivedPacketCounts()
            let after2 = await participants[2].client.receivedPacketCounts()
            #expect(after1[ssrcs[0]] == before1[ssrcs[0]])
            #expect(after2[ssrcs[0]] == before2[ssrcs[0]])
            // Participant 0 still hears the others while muted.
            let c0 = await participants[0].client.receivedPacketCounts()
            #expect((c0[ssrcs[1]] ?? 0) >= rounds && (c0[ssrcs[2]] ?? 0) >= rounds)

            // The server timed each forwarded packet.
            let metrics = server.metrics
            #expect(metrics.forwardLatencyCount >= UInt64(6 * rounds))
            #expect(metrics.forwardLatencyBuckets.count == metrics.forwardLatencyBucketBounds.count + 1)
            #expect(metrics.forwardLatencyBuckets.reduce(0, +) == metrics.forwardLatencyCount)
            #expect(metrics.forwardLatencySum > 0)
        } catch {
            Issue.record("call setup failed: \(error)")
        }
        for p in participants {
            await p.client.close()
        }
        await server.shutdown()
    }

    @Test func callOfferKeepsSectionsAndGrows() throws {
        let client = try MediaClient(logger: MediaTest.logger)
        let first = try WebRTCOffer(sdp: client.callOffer(audioReceiveSlots: 1, videoReceiveSlots: 1))
        #expect(first.parsed.sections.map(\.mid) == ["0", "1", "2"])
        #expect(first.parsed.sections.map(\.direction) == [.sendonly, .recvonly, .recvonly])
        #expect(first.audio.ssrcs == [client.audioSSRC])
        let second = try WebRTCOffer(sdp: client.callOffer(audioReceiveSlots: 3, audioDirection: .sendrecv))
        #expect(second.parsed.sections.map(\.mid) == ["0", "1", "2", "3", "4"])
        #expect(second.parsed.sections.map(\.kind) == [.audio, .audio, .video, .audio, .audio])
        #expect(second.parsed.sections.first?.direction == .sendrecv)
        #expect(second.iceUfrag == first.iceUfrag)
    }
}
