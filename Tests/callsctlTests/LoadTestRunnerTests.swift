import CallsMedia
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import LoadTest

@Suite("Load test runner")
struct LoadTestRunnerTests {
    /// The per-second sampler counts every participant's packets. Asked one after another, each question waits for a
    /// turn of the participant's event loop; on a loop that is busy receiving (or starved by a server at real-time
    /// priority) 1,000 of them took the whole media phase and the timeline had one sample. The runner asks each loop
    /// once for all its clients.
    @Test func countingParticipantsTakesFewEventLoopTurns() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var configuration = MediaClientConfiguration()
        configuration.eventLoopGroup = group
        configuration.consentInterval = nil
        let participants = try (0..<100).map { i in
            let p = LoadParticipant(index: i, user: "u\(i)", speaks: false)
            p.attach(try MediaClient(configuration: configuration, logger: Logger(label: "test")))
            return p
        }
        // The loop is held by a task that waits for the test's leave before every turn: the test counts the turns it
        // lets the loop take until the counts are in (waiting up to 2 s for them after each, however busy the machine).
        let gate = DispatchSemaphore(value: 0)
        let done = Locked(false)
        @Sendable func turn() {
            gate.wait()
            if !done.current { loop.execute { turn() } }
        }
        loop.execute { turn() }
        let counting = Task {
            let counts = await LoadTestRunner.counts(participants)
            done.withLock { $0 = true }
            return counts
        }
        var turns = 0
        while !done.current && turns < 10 {
            gate.signal()
            turns += 1
            for _ in 0..<200 where !done.current { try await Task.sleep(for: .milliseconds(10)) }
        }
        done.withLock { $0 = true }
        gate.signal()
        let counts = await counting.value
        #expect(counts.count == 100)
        #expect(counts.allSatisfy { $0.received == 0 && $0.undecryptable == 0 })
        // One by one: a turn per question (the 10 allowed run out). One question per loop: the next turn answers it.
        #expect(turns <= 2, "counting 100 participants took \(turns) or more event-loop turns")
        for p in participants { await p.client?.close() }
        try await group.shutdownGracefully()
    }
}
