import CallsTestSupport
import CallsWire
import Foundation
import Testing

@testable import CallsMedia

/// Large audio fan-outs shared with helper threads (`FanoutPool`), on a real `MediaServer` with real clients over
/// loopback: the pool is tuned small (chunks of 3 listeners, from 4 listeners up) so that a call of 18 runs through it.
@Suite(.timeLimit(.minutes(3)))
struct FanoutPoolTests {
    typealias Call = MediaClientCallTests

    /// Two speakers take turns; 14 listeners on UDP and 2 on ICE-TCP (which the pool hands back to the media thread).
    /// Every listener hears every turn in full, in continuous slot streams, and nobody hears itself. With
    /// `helpersOnly` the media thread leaves every chunk to the two helpers, so their path is certainly taken.
    @Test(arguments: [true, false])
    func everyListenerHearsEveryTurnThroughTheHelpers(helpersOnly: Bool) async throws {
        let server = try await MediaTest.server {
            $0.fanoutThreads = 2
            $0.fanoutTuning = FanoutPool.Tuning(chunkSize: 3, minimumFanout: 4, helpersOnly: helpersOnly)
        }
        var participants: [Call.Participant] = []
        var inboxes: [Call.Inbox] = []
        let turns = 4
        let packetsPerTurn = 20
        do {
            var udp = MediaClientConfiguration()
            udp.audioLevelExtensionID = 1
            participants = try await Call.join(server, key: "fanout", count: 16, configuration: udp)
            var tcp = udp
            tcp.transport = .tcp
            for i in 16..<18 {
                let client = try MediaClient(configuration: tcp, logger: MediaTest.logger)
                let (id, answer) = try await server.createSession(
                    offer: client.callOffer(audioReceiveSlots: 3), label: "p\(i)", route: .call("fanout"),
                    participant: "p\(i)")
                try await client.connect(answer: answer)
                participants.append(Call.Participant(client: client, id: id))
            }
            inboxes = participants.map { Call.Inbox($0.client) }
            let boxes = inboxes
            let clients = participants.map(\.client)
            let before = try await server.fanoutHelpers()
            var timestamp: UInt32 = 0
            for t in 0..<turns {
                let speaker = t % 2
                for n in 0..<packetsPerTurn {
                    timestamp &+= 960
                    clients[speaker].sendAudio(
                        payload: Array("p\(speaker) t\(t) n\(n) ".utf8) + [UInt8](repeating: 1, count: 40),
                        timestamp: timestamp, audioLevel: 20)
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            let last = (turns - 1) % 2
            for i in participants.indices where i != last {
                _ = await Call.eventually("participant \(i) to receive the last turn") {
                    boxes[i].count(prefix: "p\(last) t\(turns - 1) ") >= packetsPerTurn - 3
                }
            }
            for i in participants.indices {
                for t in 0..<turns where t % 2 != i {
                    let heard = boxes[i].count(prefix: "p\(t % 2) t\(t) ")
                    // The first packet or two of a turn may come before the ranking takes the speaker in.
                    #expect(heard >= packetsPerTurn - 3, "participant \(i) heard \(heard) of \(packetsPerTurn) packets of turn \(t)")
                    #expect(heard <= packetsPerTurn, "participant \(i) heard turn \(t) \(heard) times")
                }
                #expect(boxes[i].count(prefix: "p\(i) ") == 0, "participant \(i) received its own audio")
                #expect(boxes[i].slotStreamProblems() == [], "participant \(i)")
                #expect(await clients[i].undecryptablePacketCount() == 0)
            }
            let after = try await server.fanoutHelpers()
            #expect(after.threads == 2)
            if helpersOnly {
                // Each packet to 17 listeners is 6 chunks of 3, all taken by the helpers.
                #expect(after.chunks - before.chunks >= (turns * packetsPerTurn - 6) * 6)
            }
            let metrics = server.metrics
            #expect(metrics.sendErrors == 0 && metrics.sendBufferFull == 0)
            #expect(metrics.forwardLatencyBuckets.reduce(0, +) == metrics.forwardLatencyCount)
        } catch {
            Issue.record("call setup failed: \(error)")
        }
        inboxes.forEach { $0.stop() }
        for p in participants {
            await p.client.close()
        }
        await server.shutdown()
    }

    @Test func latencyBucketsHaveMillisecondStepsAndMerge() {
        #expect(ForwardLatencyHistogram.bucket(0) == 0)
        #expect(ForwardLatencyHistogram.bucket(10_000) == 0)
        #expect(ForwardLatencyHistogram.bucket(10_001) == 1)
        #expect(ForwardLatencyHistogram.bucket(1_000_000) == 6)
        #expect(ForwardLatencyHistogram.bucket(1_000_001) == 7)
        #expect(ForwardLatencyHistogram.bucket(4_500_000) == 10)
        #expect(ForwardLatencyHistogram.bucket(5_000_000) == 10)
        #expect(ForwardLatencyHistogram.bucket(5_000_001) == 11)
        #expect(ForwardLatencyHistogram.bucket(6_000_001) == 12)
        #expect(ForwardLatencyHistogram.bucket(20_000_001) == 15)
        // Every bound falls in its own bucket, and just above it in the next.
        for (i, bound) in ForwardLatencyHistogram.boundsNanoseconds.enumerated() {
            #expect(ForwardLatencyHistogram.bucket(bound) == i)
            #expect(ForwardLatencyHistogram.bucket(bound + 1) == i + 1)
        }
        var a = ForwardLatencyHistogram()
        var b = ForwardLatencyHistogram()
        a.record(nanoseconds: 3_500_000)
        b.record(nanoseconds: 3_600_000)
        b.record(nanoseconds: 50_000_000)
        a.merge(b)
        var metrics = MediaMetrics()
        a.write(into: &metrics)
        #expect(metrics.forwardLatencyCount == 3)
        #expect(metrics.forwardLatencyBuckets[9] == 2)
        #expect(metrics.forwardLatencyBuckets[15] == 1)
        #expect(metrics.forwardLatencyBucketBounds.count == 15)
        #expect(abs(metrics.forwardLatencySum - 0.0571) < 1e-9)
    }
}
