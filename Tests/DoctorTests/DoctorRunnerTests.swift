import Foundation
import Testing

@testable import Doctor

/// The engine under the checks: dependencies, the time budget, the ranking and the exit code.
@Suite struct DoctorRunnerTests {
    static func check(
        _ id: String, _ status: CheckStatus, severity: CheckSeverity = .major, after deps: [String] = [],
        sleep: Duration = .zero
    ) -> DoctorCheck {
        DoctorCheck(id, "check \(id)", severity: severity, dependsOn: deps) { _ in
            if sleep > .zero { try? await Task.sleep(for: sleep) }
            return CheckOutcome(status, "\(id) \(status.rawValue)", remediation: status == .pass ? [] : ["fix \(id)"])
        }
    }

    @Test func aFailedPrerequisiteSkipsItsDependentsWithTheReason() async {
        let report = await DoctorRunner(
            checks: [
                Self.check("A", .fail, severity: .critical), Self.check("B", .pass, after: ["A"]),
                Self.check("C", .pass, after: ["B"]), Self.check("D", .pass),
            ], timeout: .seconds(10)
        ).run(role: "client", strict: false)
        #expect(report.results.map(\.id) == ["A", "B", "C", "D"])
        #expect(report.results.map(\.status) == [.fail, .skip, .skip, .pass])
        #expect(report.results[1].outcome.message == "skipped: A (check A) did not pass")
        #expect(report.results[2].outcome.message == "skipped: B was skipped")
        #expect(report.mostLikelyCause?.id == "A")
        #expect(report.exitCode == 2)
    }

    /// Five checks that each wait until all five have started: run one after another, none could finish.
    @Test func checksRunConcurrently() async {
        let started = Counter()
        let checks = (0..<5).map { i in
            DoctorCheck("C\(i)", "check \(i)", severity: .major) { _ in
                started.increment()
                for _ in 0..<6000 where started.value < 5 { try? await Task.sleep(for: .milliseconds(10)) }
                return started.value == 5 ? .pass("all five ran at once") : CheckOutcome(.fail, "ran alone")
            }
        }
        let report = await DoctorRunner(checks: checks, timeout: .seconds(120)).run(role: "client", strict: false)
        #expect(report.results.map(\.status) == Array(repeating: .pass, count: 5), "\(report.results.map(\.outcome.message))")
    }

    /// The budget ends the run, not the slow check: a check still busy long after the budget is reported as an
    /// error while the run returns (the 10-minute check would otherwise hold it).
    @Test func aCheckThatOverrunsTheBudgetIsAnErrorAndTheRunEndsInTime() async {
        let start = ContinuousClock.now
        let report = await DoctorRunner(
            checks: [Self.check("SLOW", .pass, sleep: .seconds(600)), Self.check("FAST", .pass)],
            timeout: .seconds(1)
        ).run(role: "client", strict: false)
        #expect(ContinuousClock.now - start < .seconds(300))
        #expect(report.results.first?.status == .error)
        #expect(report.results.first?.outcome.message.contains("time budget") == true)
        #expect(report.results.last?.status == .pass)
        #expect(report.exitCode == 3)
    }

    @Test func theRootCauseOutranksItsConsequencesAndSeverityRanksTheRest() async {
        // B failed with its prerequisite passing, but E is more severe; a critical warning ranks after failures.
        let report = await DoctorRunner(
            checks: [
                Self.check("A", .pass, severity: .major), Self.check("B", .fail, severity: .major, after: ["A"]),
                Self.check("E", .fail, severity: .critical), Self.check("W", .warn, severity: .critical),
            ], timeout: .seconds(10)
        ).run(role: "client", strict: false)
        #expect(report.mostLikelyCause?.id == "E")
        #expect(report.exitCode == 2)
    }

    @Test(arguments: [
        ([CheckStatus.pass, .pass], false, Int32(0)), ([.pass, .warn], false, 0), ([.pass, .warn], true, 1),
        ([.pass, .fail], false, 2), ([.skip, .skip], false, 3), ([.error, .pass], false, 3), ([.warn, .fail], true, 2),
    ])
    func exitCodes(statuses: [CheckStatus], strict: Bool, expected: Int32) async {
        let checks = statuses.enumerated().map { Self.check("X\($0.offset)", $0.element) }
        let report = await DoctorRunner(checks: checks, timeout: .seconds(10)).run(role: "client", strict: strict)
        #expect(report.exitCode == expected)
    }

    @Test func warningsRankAfterFailuresAndErrors() async {
        let report = await DoctorRunner(
            checks: [Self.check("W", .warn, severity: .critical), Self.check("F", .fail, severity: .info)], timeout: .seconds(10)
        ).run(role: "client", strict: false)
        #expect(report.mostLikelyCause?.id == "F")
    }
}

final class Counter: @unchecked Sendable {
    // @unchecked: `count` is read and written under `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// The conclusions drawn from several checks (`DoctorChecks.review`).
@Suite struct DoctorReviewTests {
    static func run(_ statuses: [(String, CheckStatus)]) async -> DoctorReport {
        await DoctorRunner(
            checks: statuses.map { DoctorRunnerTests.check($0.0, $0.1) }, timeout: .seconds(10), review: DoctorChecks.review
        ).run(role: "client", strict: false)
    }

    @Test func onlyTheRelayCarryingMediaMeansTURNRequiredAsWarnings() async {
        let report = await Self.run([("PT001", .fail), ("PT002", .fail), ("J002", .fail), ("J003", .fail), ("JT001", .pass)])
        #expect(report.results.map(\.status) == [.warn, .warn, .warn, .warn, .pass])
        #expect(report.results.filter { $0.status == .warn }.allSatisfy { $0.outcome.message.hasPrefix("TURN required") })
        #expect(report.exitCode == 0)
        #expect(DoctorReport(role: "client", startedAt: Date(), duration: .zero, results: report.results, strict: true).exitCode == 1)
    }

    @Test func withoutAWorkingRelayDirectFailuresStayFailures() async {
        let report = await Self.run([("J002", .fail), ("J003", .fail), ("JT001", .fail)])
        #expect(report.results.map(\.status) == [.fail, .fail, .fail])
        #expect(report.exitCode == 2)
    }

    @Test func udpFailingWhileTCPWorksIsAWarningOnUDP() async {
        let report = await Self.run([("J002", .fail), ("J003", .pass)])
        #expect(report.results.map(\.status) == [.warn, .pass])
        #expect(report.mostLikelyCause?.id == "J002")
    }
}
