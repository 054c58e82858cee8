import CallsTestSupport
import Foundation
import Testing

/// The verdict a timed-out wait gives: starved (the process could not run) or not (it waited for nothing).
/// Runs in the suite's CPU-bound phase, one test at a time (scripts/test.sh).
@Suite struct StarvationReportTests {
    @Test(arguments: [
        // waited, cpu, run queue, pool stall, machine idle, starved?
        (30.0, 0.2, 0.0, 0.0, 50.0, false),  // idle: what it waited for never came
        (30.0, 55.0, 0.5, 0.1, 2.0, true),  // both cores busy with the process's own work
        (30.0, 3.0, 20.0, 0.0, 0.0, true),  // runnable threads queued behind other processes
        (30.0, 3.0, 0.0, 25.0, 10.0, true),  // the cooperative pool held by blocking or CPU-bound tests
        (30.0, 3.0, 0.0, 0.0, 1.0, true),  // no idle CPU on the machine (threads that ended took their queueing along)
    ])
    func verdict(waited: Double, cpu: Double, runQueue: Double, poolStall: Double, idle: Double, starved: Bool) {
        let r = StarvationReport(
            waitedSeconds: waited, cpuSeconds: cpu, runQueueSeconds: runQueue, poolStallSeconds: poolStall,
            machineIdleSeconds: idle, cores: 2, loadAverage: "1.00 1.00 1.00")
        #expect(r.starved == starved)
        #expect(r.description.contains(starved ? "STARVED" : "NOT starved"))
        #expect(r.description.contains(String(format: "%.1f s of CPU", cpu)))
    }

    /// Measured, not assumed: threads of this process spinning on every core for a second make a wait "starved",
    /// and the timeout names what was awaited.
    @Test func aWaitBesideSpinningThreadsIsStarved() {
        let start = LoadSnapshot.now()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let done = DispatchGroup()
        for _ in 0..<(cores + 1) {
            done.enter()
            Thread.detachNewThread {
                let end = Date().addingTimeInterval(1)
                var x = 0
                while Date() < end { x &+= 1 }
                _ = x
                done.leave()
            }
        }
        done.wait()
        let timeout = WaitTimeout(waitingFor: "the joined reply", since: start)
        #expect(timeout.report.starved, "\(timeout)")
        #expect(timeout.report.cpuSeconds > 0.5)
        #expect(timeout.description.hasPrefix("gave up after 1."), "\(timeout)")
        #expect(timeout.description.contains("waiting for the joined reply"))
    }
}
