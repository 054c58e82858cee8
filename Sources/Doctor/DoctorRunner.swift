import Foundation

/// Runs checks concurrently under one time budget, each as soon as its prerequisites are done; a check whose
/// prerequisite did not pass is skipped with the reason, and one still running when the budget ends is an error.
public struct DoctorRunner: Sendable {
    public let checks: [DoctorCheck]
    public let timeout: Duration
    /// Told when a check starts and when it ends (for a live progress line).
    public let progress: @Sendable (_ finished: Int, _ total: Int, _ running: [String]) -> Void
    /// Adjusts the results once all are in (conclusions drawn from several checks).
    public let review: @Sendable ([CheckResult]) -> [CheckResult]

    public init(
        checks: [DoctorCheck], timeout: Duration, review: @escaping @Sendable ([CheckResult]) -> [CheckResult] = { $0 },
        progress: @escaping @Sendable (Int, Int, [String]) -> Void = { _, _, _ in }
    ) {
        self.checks = checks
        self.timeout = timeout
        self.review = review
        self.progress = progress
    }

    /// - Precondition: ids are unique and every dependency names an earlier check (so there are no cycles).
    public func run(role: String, strict: Bool) async -> DoctorReport {
        let started = Date()
        let start = ContinuousClock.now
        let deadline = start + timeout
        var results: [String: CheckResult] = [:]
        var running: Set<String> = []
        let total = checks.count

        await withTaskGroup(of: CheckResult.self) { group in
            func startReady() {
                for check in checks where results[check.id] == nil && !running.contains(check.id) {
                    let deps = check.dependsOn.compactMap { results[$0] }
                    guard deps.count == check.dependsOn.count else { continue }
                    if let blocker = deps.first(where: { $0.status != .pass && $0.status != .warn }) {
                        let reason =
                            blocker.status == .skip
                            ? "skipped: \(blocker.id) was skipped" : "skipped: \(blocker.id) (\(blocker.title)) did not pass"
                        results[check.id] = CheckResult(
                            id: check.id, title: check.title, severity: check.severity, dependsOn: check.dependsOn,
                            outcome: CheckOutcome(.skip, reason), duration: .zero)
                        startReady()
                        return
                    }
                    running.insert(check.id)
                    group.addTask { await Self.runOne(check, deadline: deadline) }
                }
            }
            startReady()
            progress(results.count, total, running.sorted())
            while let result = await group.next() {
                running.remove(result.id)
                results[result.id] = result
                startReady()
                progress(results.count, total, running.sorted())
            }
        }
        return DoctorReport(
            role: role, startedAt: started, duration: ContinuousClock.now - start,
            results: review(checks.compactMap { results[$0.id] }), strict: strict)
    }

    /// One check, raced against the budget: a check that overruns is reported as an error at once (its work is
    /// left to end by its own socket deadlines, which never outlast the budget by much).
    static func runOne(_ check: DoctorCheck, deadline: ContinuousClock.Instant) async -> CheckResult {
        let begin = ContinuousClock.now
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<CheckOutcome, Never>) in
            let once = ResumeOnce(continuation)
            let work = Task { once.resume(await check.run(deadline)) }
            Task {
                try? await Task.sleep(until: deadline + .milliseconds(250), clock: .continuous)
                work.cancel()
                once.resume(
                    CheckOutcome(
                        .error, "did not finish within the time budget (--timeout)",
                        remediation: ["Raise --timeout, or run this check alone with --only \(check.id)"]))
            }
        }
        return CheckResult(
            id: check.id, title: check.title, severity: check.severity, dependsOn: check.dependsOn, outcome: outcome,
            duration: ContinuousClock.now - begin)
    }
}

/// Resumes a continuation with the first value it is given.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    // @unchecked: `continuation` is taken under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?

    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = continuation }

    func resume(_ value: T) {
        lock.withLock {
            defer { continuation = nil }
            return continuation
        }?.resume(returning: value)
    }
}

/// Runs blocking socket work on a thread of its own, so checks never hold Swift's cooperative pool.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}
