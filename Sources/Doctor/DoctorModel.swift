import Foundation

/// How a check ended.
public enum CheckStatus: String, Sendable, CaseIterable {
    case pass, warn, fail, skip
    /// The check itself could not run (bad input, time budget spent): nothing was learned.
    case error
}

/// How much a failure of the check matters; ranks the most likely cause.
public enum CheckSeverity: String, Sendable, Comparable {
    case critical, major, minor, info

    var rank: Int {
        switch self {
        case .critical: 0
        case .major: 1
        case .minor: 2
        case .info: 3
        }
    }

    public static func < (a: CheckSeverity, b: CheckSeverity) -> Bool { a.rank < b.rank }
}

/// One piece of evidence: what was measured or seen.
public enum EvidenceValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)

    public var description: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(format: "%.1f", d)
        case .bool(let b): b ? "true" : "false"
        }
    }
}

/// What a check found.
public struct CheckOutcome: Sendable {
    public var status: CheckStatus
    public var message: String
    public var evidence: [(String, EvidenceValue)]
    /// Steps that fix it, naming the exact setting, file or port.
    public var remediation: [String]

    public init(
        _ status: CheckStatus, _ message: String, evidence: [(String, EvidenceValue)] = [], remediation: [String] = []
    ) {
        self.status = status
        self.message = message
        self.evidence = evidence
        self.remediation = remediation
    }

    public static func pass(_ message: String, evidence: [(String, EvidenceValue)] = []) -> CheckOutcome {
        CheckOutcome(.pass, message, evidence: evidence)
    }

    public static func fail(_ message: String, evidence: [(String, EvidenceValue)] = [], fix: [String])
        -> CheckOutcome
    {
        CheckOutcome(.fail, message, evidence: evidence, remediation: fix)
    }

    public static func warn(_ message: String, evidence: [(String, EvidenceValue)] = [], fix: [String])
        -> CheckOutcome
    {
        CheckOutcome(.warn, message, evidence: evidence, remediation: fix)
    }
}

/// A check: an id, what it proves, what it needs first, and the work.
public struct DoctorCheck: Sendable {
    public let id: String
    public let title: String
    public let severity: CheckSeverity
    /// Checks that must pass (or warn) before this one runs; otherwise it is skipped, with the reason.
    public let dependsOn: [String]
    /// Runs on a thread of its own (checks block on sockets); `deadline` is the run's time budget.
    public let run: @Sendable (_ deadline: ContinuousClock.Instant) async -> CheckOutcome

    public init(
        _ id: String, _ title: String, severity: CheckSeverity, dependsOn: [String] = [],
        run: @escaping @Sendable (_ deadline: ContinuousClock.Instant) async -> CheckOutcome
    ) {
        self.id = id
        self.title = title
        self.severity = severity
        self.dependsOn = dependsOn
        self.run = run
    }
}

/// A check's result in the report.
public struct CheckResult: Sendable {
    public let id: String
    public let title: String
    public let severity: CheckSeverity
    public let dependsOn: [String]
    public let outcome: CheckOutcome
    public let duration: Duration

    public var status: CheckStatus { outcome.status }

    /// The same result with another outcome.
    public func with(_ outcome: CheckOutcome) -> CheckResult {
        CheckResult(id: id, title: title, severity: severity, dependsOn: dependsOn, outcome: outcome, duration: duration)
    }
    public var durationMs: Int { milliseconds(duration) }
}

/// The whole run.
public struct DoctorReport: Sendable {
    public let role: String
    public let startedAt: Date
    public let duration: Duration
    /// In the order the checks were declared.
    public let results: [CheckResult]
    public let strict: Bool

    public func count(_ status: CheckStatus) -> Int { results.filter { $0.status == status }.count }

    /// The failure most likely to be the root cause: failures (then errors, then warnings) whose own prerequisites
    /// all passed, by severity, then in declaration order (earlier checks sit closer to the network).
    public var mostLikelyCause: CheckResult? {
        func rootCause(_ r: CheckResult) -> Bool {
            r.dependsOn.allSatisfy { dep in results.first { $0.id == dep }?.status == .pass }
        }
        for status in [CheckStatus.fail, .error, .warn] {
            let candidates = results.filter { $0.status == status }
            let roots = candidates.filter(rootCause)
            let pool = roots.isEmpty ? candidates : roots
            if let best = pool.enumerated().min(by: { a, b in
                a.element.severity != b.element.severity ? a.element.severity < b.element.severity : a.offset < b.offset
            }) {
                return best.element
            }
        }
        return nil
    }

    /// 0 all pass (warnings allowed unless strict), 1 warnings under strict, 2 a failure, 3 nothing could be checked.
    public var exitCode: Int32 {
        if count(.fail) > 0 { return 2 }
        let ran = results.filter { $0.status == .pass || $0.status == .warn }
        if ran.isEmpty { return 3 }
        if count(.error) > 0 { return 3 }
        if strict && count(.warn) > 0 { return 1 }
        return 0
    }

    /// "pass", "warn", "fail" or "unknown": the one-word verdict.
    public var verdict: String {
        switch exitCode {
        case 0: count(.warn) > 0 ? "warn" : "pass"
        case 1: "warn"
        case 2: "fail"
        default: "unknown"
        }
    }
}
