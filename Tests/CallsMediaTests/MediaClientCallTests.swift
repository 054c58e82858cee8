import CallsMedia
import CallsTestSupport
import CallsWire
import Foundation
import NIOCore
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

    /// Every packet a client decrypted, kept in arrival order by a task that drains `receivedAudio`.
    final class Inbox: @unchecked Sendable {
        private let lock = NSLock()
        private var packets: [ReceivedRTPPacket] = []
        private var task: Task<Void, Never>?

        init(_ client: MediaClient) {
            let stream = client.receivedAudio
            task = Task { [weak self] in
                for await packet in stream { self?.append(packet) }
            }
        }

        private func append(_ p: ReceivedRTPPacket) { lock.withLock { packets.append(p) } }
        var all: [ReceivedRTPPacket] { lock.withLock { packets } }
        func stop() { task?.cancel() }

        /// Packets whose payload starts with `prefix`.
        func count(prefix: String) -> Int {
            let bytes = Array(prefix.utf8)
            return all.filter { $0.payload.starts(with: bytes) }.count
        }

        /// Each slot stream (by SSRC) in arrival order: sequence numbers go up by one and timestamps never go back.
        func slotStreamProblems() -> [String] {
            var bySSRC: [UInt32: [RTPHeader]] = [:]
            for p in all { bySSRC[p.header.ssrc, default: []].append(p.header) }
            var problems: [String] = []
            for (ssrc, headers) in bySSRC {
                for (a, b) in zip(headers, headers.dropFirst()) {
                    if b.sequenceNumber != a.sequenceNumber &+ 1 {
                        problems.append("SSRC \(ssrc): sequence \(a.sequenceNumber) then \(b.sequenceNumber)")
                    }
                    if Int32(bitPattern: b.timestamp &- a.timestamp) <= 0 {
                        problems.append("SSRC \(ssrc): timestamp \(a.timestamp) then \(b.timestamp)")
                    }
                }
            }
            return problems
        }
    }

    /// The latest speaker map and every renegotiation request the server sent one session.
    final class SessionWatch: @unchecked Sendable {
        private let lock = NSLock()
        private var speakers: [AudioSlotSpeaker] = []
        private var renegotiations = 0
        private var task: Task<Void, Never>?

        init(_ events: AsyncStream<MediaSessionEvent>) {
            task = Task { [weak self] in
                for await e in events {
                    switch e {
                    case .speakers(let s): self?.lock.withLock { self?.speakers = s }
                    case .renegotiationNeeded: self?.lock.withLock { self?.renegotiations += 1 }
                    default: break
                    }
                }
            }
        }

        var latestSpeakers: [AudioSlotSpeaker] { lock.withLock { speakers } }
        var renegotiationRequests: Int { lock.withLock { renegotiations } }
        func stop() { task?.cancel() }
    }

    /// Joins `count` clients to call `key` with the server's 3 audio slots in their first offer.
    static func join(
        _ server: MediaServer, key: String, count: Int, configuration: MediaClientConfiguration = MediaClientConfiguration()
    ) async throws -> [Participant] {
        var participants: [Participant] = []
        for i in 0..<count {
            let client = try MediaClient(configuration: configuration, logger: MediaTest.logger)
            let (id, answer) = try await server.createSession(
                offer: client.callOffer(audioReceiveSlots: 3), label: "p\(i)", route: .call(key), participant: "p\(i)")
            try await client.connect(answer: answer)
            participants.append(Participant(client: client, id: id))
        }
        return participants
    }

    @Test func threeParticipantsHearEachOtherAndMuteStopsForwarding() async throws {
        let server = try await MediaTest.server(tcpCandidates: false)
        var participants: [Participant] = []
        var inboxes: [Inbox] = []
        var watches: [SessionWatch] = []
        do {
            // Clients without audio levels: the server ranks them by activity.
            participants = try await Self.join(server, key: "c1", count: 3)
            inboxes = participants.map { Inbox($0.client) }
            watches = participants.map { SessionWatch(server.sessionEvents($0.id)) }
            let boxes = inboxes, sw = watches
            // The first offer's three slots are all the server wants: nobody renegotiates when others join.
            for (i, p) in participants.enumerated() {
                #expect(p.client.receiveSlots.count == 3)
                #expect(p.client.announcedSSRCs.count == 3, "participant \(i) slots: \(p.client.receiveSlots)")
                #expect(!p.client.announcedSSRCs.contains(p.client.audioSSRC))
                #expect(Set(p.client.receiveSlots.compactMap(\.streamID)) == ["slot-0", "slot-1", "slot-2"])
            }

            // Everyone talks: each hears both others (by payload marker) in its slots, and never itself.
            let rounds = 20
            let clients = participants.map(\.client)
            for r in 0..<rounds {
                for (i, c) in clients.enumerated() {
                    c.sendAudio(payload: Array("p\(i) r\(r) ".utf8) + [UInt8](repeating: 7, count: 60), timestamp: UInt32(r * 960))
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            for (i, p) in participants.enumerated() {
                let others = (0..<3).filter { $0 != i }
                let complete = await Self.eventually("participant \(i) to hear both others") {
                    others.allSatisfy { boxes[i].count(prefix: "p\($0) r") >= rounds - 2 }
                }
                #expect(complete, "participant \(i) received \(others.map { boxes[i].count(prefix: "p\($0) r") })")
                #expect(boxes[i].count(prefix: "p\(i) ") == 0, "participant \(i) received its own audio")
                #expect(Set(boxes[i].all.map(\.header.ssrc)).isSubset(of: p.client.announcedSSRCs))
                #expect(boxes[i].slotStreamProblems() == [])
                #expect(await p.client.undecryptablePacketCount() == 0)
                let named = await Self.eventually("participant \(i)'s speaker map to name both others") {
                    Set(sw[i].latestSpeakers.compactMap(\.participant)) == Set(others.map { "p\($0)" })
                }
                #expect(named, "\(sw[i].latestSpeakers)")
                #expect(sw[i].latestSpeakers.allSatisfy { $0.mid != nil })
            }

            // Mute participant 0 at the server: the others keep hearing each other, but no longer 0, and 0 leaves
            // the speaker maps.
            await server.setAudioForwarding(participants[0].id, false)
            let mutedBefore = server.metrics.mutedDropped
            let heard0 = boxes.map { $0.count(prefix: "p0 ") }
            for r in 0..<rounds {
                for (i, c) in clients.enumerated() {
                    c.sendAudio(payload: Array("p\(i) m\(r) ".utf8) + [UInt8](repeating: 7, count: 60), timestamp: UInt32((rounds + r) * 960))
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            let flowing = await Self.eventually("participants 1 and 2 to hear each other after the mute") {
                boxes[1].count(prefix: "p2 m") >= rounds - 2 && boxes[2].count(prefix: "p1 m") >= rounds - 2
            }
            #expect(flowing)
            // Every packet of 0 reached the server before the last packets of 1 and 2 (one socket, one event loop),
            // so once the server counted all of them as muted, none can still be on its way.
            let allMuted = await Self.eventually("every packet of muted participant 0 to be dropped") { server.metrics.mutedDropped >= mutedBefore + UInt64(rounds) }
            #expect(allMuted, "muted drops: \(server.metrics.mutedDropped - mutedBefore)")
            #expect(boxes.map { $0.count(prefix: "p0 ") } == heard0)
            for i in 1..<3 {
                let gone = await Self.eventually("p0 to leave participant \(i)'s speaker map") {
                    !sw[i].latestSpeakers.contains { $0.participant == "p0" }
                }
                #expect(gone)
            }
            // Participant 0 still hears the others while muted.
            #expect(boxes[0].count(prefix: "p1 m") >= rounds - 2 && boxes[0].count(prefix: "p2 m") >= rounds - 2)
            #expect(sw.map(\.renegotiationRequests) == [0, 0, 0])

            // Each client's first SRTP packet proved its handshake complete, so the server freed its DTLS state;
            // media went on under the SRTP keys.
            #expect(server.metrics.dtlsReleased == 3)

            // The server timed each forwarded packet.
            let metrics = server.metrics
            #expect(metrics.forwardLatencyCount >= UInt64(6 * rounds))
            #expect(metrics.forwardLatencyBuckets.count == metrics.forwardLatencyBucketBounds.count + 1)
            #expect(metrics.forwardLatencyBuckets.reduce(0, +) == metrics.forwardLatencyCount)
            #expect(metrics.forwardLatencySum > 0)
        } catch {
            Issue.record("call setup failed: \(error)")
        }
        inboxes.forEach { $0.stop() }
        watches.forEach { $0.stop() }
        for p in participants {
            await p.client.close()
        }
        await server.shutdown()
    }

    /// Three slots, five speakers taking turns (RFC 6464 levels; the others send silence), a listener, and a muted
    /// participant who shouts all along: every listener hears each turn's speaker in one of its slots, never itself
    /// and never the muted one, and each slot stays one continuous stream across the speaker changes.
    @Test func fiveSpeakersTakeTurnsInThreeSlots() async throws {
        let server = try await MediaTest.server(tcpCandidates: false) { $0.dtlsReleaseDelay = .seconds(1) }
        var participants: [Participant] = []
        var inboxes: [Inbox] = []
        var watches: [SessionWatch] = []
        let turns = 10
        let packetsPerTurn = 30
        do {
            var configuration = MediaClientConfiguration()
            configuration.audioLevelExtensionID = 1
            participants = try await Self.join(server, key: "turns", count: 7, configuration: configuration)
            inboxes = participants.map { Inbox($0.client) }
            watches = participants.map { SessionWatch(server.sessionEvents($0.id)) }
            let boxes = inboxes, sw = watches
            let muted = 6
            await server.setAudioForwarding(participants[muted].id, false)
            let clients = participants.map(\.client)
            var timestamp: UInt32 = 0
            for t in 0..<turns {
                let speaker = t % 5
                for n in 0..<packetsPerTurn {
                    timestamp &+= 960
                    for (i, c) in clients.enumerated() {
                        if i == speaker || i == muted {
                            c.sendAudio(payload: Array("p\(i) t\(t) n\(n) ".utf8) + [UInt8](repeating: 1, count: 40), timestamp: timestamp, audioLevel: 20)
                        } else if i < 5 {
                            c.sendAudio(payload: Array("p\(i) quiet ".utf8) + [UInt8](repeating: 0, count: 10), timestamp: timestamp, audioLevel: 127)
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            let lastSpeaker = (turns - 1) % 5
            for i in 0..<7 where i != lastSpeaker {
                _ = await Self.eventually("participant \(i) to receive the last turn") {
                    boxes[i].count(prefix: "p\(lastSpeaker) t\(turns - 1) ") >= packetsPerTurn - 3
                }
            }
            for i in 0..<7 {
                for t in 0..<turns where t % 5 != i {
                    let heard = boxes[i].count(prefix: "p\(t % 5) t\(t) ")
                    // The first packet or two of a turn may come before the ranking takes the new speaker in.
                    #expect(heard >= packetsPerTurn - 3, "participant \(i) heard \(heard) of \(packetsPerTurn) packets of turn \(t) (p\(t % 5))")
                }
                #expect(boxes[i].count(prefix: "p\(i) ") == 0, "participant \(i) received its own audio")
                #expect(boxes[i].count(prefix: "p\(muted) ") == 0, "participant \(i) received the muted participant")
                #expect(Set(boxes[i].all.map(\.header.ssrc)).isSubset(of: clients[i].announcedSSRCs))
                #expect(boxes[i].slotStreamProblems() == [], "participant \(i)")
                #expect(await clients[i].undecryptablePacketCount() == 0)
                let map = sw[i].latestSpeakers
                #expect(map.count == 3)
                #expect(!map.contains { $0.participant == "p\(i)" || $0.participant == "p\(muted)" }, "\(map)")
                if i != lastSpeaker { #expect(map.contains { $0.participant == "p\(lastSpeaker)" }, "participant \(i): \(map)") }
            }
            // Seven joins, and nobody was asked to renegotiate.
            #expect(sw.map(\.renegotiationRequests) == [Int](repeating: 0, count: 7))
            // Every DTLS state was freed: six at their first SRTP packet, the silent listener (p5) after the delay.
            #expect(server.metrics.dtlsReleased == 7)
        } catch {
            Issue.record("call setup failed: \(error)")
        }
        inboxes.forEach { $0.stop() }
        watches.forEach { $0.stop() }
        for p in participants {
            await p.client.close()
        }
        await server.shutdown()
    }

    /// A listener's receiver reports about its audio slots are read as that slot's loss and summed per call (the slot
    /// is one stream, whoever speaks in it); reports about other SSRCs are not.
    @Test func receiverReportsOnSlotsAreTheCallsListenerLoss() async throws {
        let server = try await MediaTest.server(tcpCandidates: false)
        var participants: [Participant] = []
        do {
            participants = try await Self.join(server, key: "rr", count: 2)
            let listener = participants[1].client
            let slots = listener.receiveSlots.compactMap(\.ssrc)
            #expect(slots.count == 3)
            func report(_ blocks: [RTCPReportBlock]) throws {
                var buffer = ByteBuffer()
                _ = try RTCPBuilder.writeReceiverReport(senderSSRC: listener.audioSSRC, reportBlocks: blocks, into: &buffer)
                listener.sendRTCP(Array(buffer.readableBytesView))
            }
            try report([RTCPReportBlock(ssrc: slots[0], cumulativeLost: 7), RTCPReportBlock(ssrc: 12345, cumulativeLost: 900)])
            try report([RTCPReportBlock(ssrc: slots[1], cumulativeLost: 4)])
            let summed = await Self.eventually("the call's listener loss to be 11") {
                server.metrics.calls.first { $0.key == "rr" }?.listenerReportedLost == 11
            }
            #expect(summed, "\(server.metrics.calls)")
            // A later report of the same slot replaces the earlier figure (cumulative, not added).
            try report([RTCPReportBlock(ssrc: slots[0], cumulativeLost: 9)])
            let replaced = await Self.eventually("the call's listener loss to be 13") {
                server.metrics.calls.first { $0.key == "rr" }?.listenerReportedLost == 13
            }
            #expect(replaced, "\(server.metrics.calls)")
        } catch {
            Issue.record("call setup failed: \(error)")
        }
        for p in participants { await p.client.close() }
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
