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

    @Test func checksRunConcurrently() async {
        let checks = (0..<5).map { Self.check("C\($0)", .pass, sleep: .milliseconds(400)) }
        let start = ContinuousClock.now
        let report = await DoctorRunner(checks: checks, timeout: .seconds(20)).run(role: "client", strict: false)
        #expect(report.count(.pass) == 5)
        // One after another would take 2 s.
        #expect(ContinuousClock.now - start < .milliseconds(1900))
    }

    @Test func aCheckThatOverrunsTheBudgetIsAnErrorAndTheRunEndsInTime() async {
        let start = ContinuousClock.now
        let report = await DoctorRunner(
            checks: [Self.check("SLOW", .pass, sleep: .seconds(30)), Self.check("FAST", .pass)],
            timeout: .milliseconds(500)
        ).run(role: "client", strict: false)
        #expect(ContinuousClock.now - start < .seconds(5))
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
