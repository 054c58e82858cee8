// Tells a starved test from a broken one: when a wait gives up, what did this process and the machine do
// meanwhile? A test that waited 30 s while its own threads sat runnable with no CPU, or while Swift's
// cooperative pool ran nothing, was starved; one that waited with CPU to spare is waiting for something that
// will not come.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Counters of this process at one instant; two of them bracket a wait.
public struct LoadSnapshot: Sendable {
    /// Monotonic time, nanoseconds.
    public let uptimeNanos: UInt64
    /// User plus system CPU time of every thread of the process, seconds.
    public let cpuSeconds: Double
    /// Time the process's live threads spent runnable but waiting for a CPU (their run-queue delay), seconds.
    /// Threads that ended in between take their share with them, so this is a lower bound.
    public let runQueueSeconds: Double
    /// Idle time of the whole machine (idle + iowait of every CPU, /proc/stat), seconds: with none to spare during a
    /// wait, the process competed for CPU, also with threads that have ended since (which `runQueueSeconds` loses).
    public let machineIdleSeconds: Double

    public static func now() -> LoadSnapshot {
        PoolMonitor.shared.start()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return LoadSnapshot(
            uptimeNanos: monotonicNanos(), cpuSeconds: cpu, runQueueSeconds: runQueueDelay(), machineIdleSeconds: machineIdle())
    }

    /// Fields 4 and 5 (idle, iowait) of the "cpu" line of /proc/stat, in clock ticks of 1/100 s.
    private static func machineIdle() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return 0 }
        return (fields[3] + fields[4]) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The sum of field 2 of /proc/self/task/*/schedstat (nanoseconds spent on a run queue).
    private static func runQueueDelay() -> Double {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return 0 }
        var total: UInt64 = 0
        for task in tasks {
            guard let text = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8) else {
                continue
            }
            let fields = text.split(separator: " ")
            if fields.count >= 2, let waited = UInt64(fields[1]) { total &+= waited }
        }
        return Double(total) / 1e9
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// What happened between a snapshot and now, and what it suggests.
public struct StarvationReport: Sendable, CustomStringConvertible {
    public let waitedSeconds: Double
    public let cpuSeconds: Double
    public let runQueueSeconds: Double
    /// The longest time a job handed to Swift's cooperative pool waited to start, during the interval.
    public let poolStallSeconds: Double
    /// Idle CPU time of the whole machine during the wait (nil: not measured).
    public let machineIdleSeconds: Double?
    public let cores: Int
    public let loadAverage: String

    public init(since start: LoadSnapshot) {
        let end = LoadSnapshot.now()
        self.init(
            waitedSeconds: Double(end.uptimeNanos &- start.uptimeNanos) / 1e9,
            cpuSeconds: max(0, end.cpuSeconds - start.cpuSeconds),
            runQueueSeconds: max(0, end.runQueueSeconds - start.runQueueSeconds),
            poolStallSeconds: PoolMonitor.shared.longestStall(since: start.uptimeNanos),
            machineIdleSeconds: max(0, end.machineIdleSeconds - start.machineIdleSeconds),
            cores: ProcessInfo.processInfo.activeProcessorCount,
            loadAverage: (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ")
                .prefix(3).joined(separator: " ") ?? "?")
    }

    public init(
        waitedSeconds: Double, cpuSeconds: Double, runQueueSeconds: Double, poolStallSeconds: Double,
        machineIdleSeconds: Double? = nil, cores: Int, loadAverage: String
    ) {
        self.waitedSeconds = waitedSeconds
        self.cpuSeconds = cpuSeconds
        self.runQueueSeconds = runQueueSeconds
        self.poolStallSeconds = poolStallSeconds
        self.machineIdleSeconds = machineIdleSeconds
        self.cores = cores
        self.loadAverage = loadAverage
    }

    /// The process could not run for a good part of the wait: its threads queued for a CPU, or the cooperative
    /// pool was held, or it used every core itself, or the machine had (almost) no idle CPU at all.
    public var starved: Bool {
        let w = max(waitedSeconds, 0.001)
        return poolStallSeconds >= 0.25 * w || runQueueSeconds >= 0.25 * w
            || cpuSeconds >= 0.8 * Double(cores) * w
            || (machineIdleSeconds.map { $0 < 0.1 * Double(cores) * w } ?? false)
    }

    public var description: String {
        let busy = Int((cpuSeconds / (max(waitedSeconds, 0.001) * Double(cores)) * 100).rounded())
        let facts = String(
            format: "in %.1f s this process used %.1f s of CPU (%d %% of %d cores), its threads waited %.1f s for a CPU, "
                + "Swift's cooperative pool left a job waiting up to %.1f s, the machine had %@ s of idle CPU, load average %@",
            waitedSeconds, cpuSeconds, busy, cores, runQueueSeconds, poolStallSeconds,
            machineIdleSeconds.map { String(format: "%.1f", $0) } ?? "?", loadAverage)
        return starved
            ? "\(facts): STARVED, not necessarily broken (the process could not run for much of the wait)"
            : "\(facts): NOT starved (the process had CPU to spare, so what it waited for did not come)"
    }
}

/// Samples how long Swift's cooperative pool takes to start a job: one probe job at a time, every 50 ms.
final class PoolMonitor: @unchecked Sendable {
    // @unchecked: every field is accessed with `lock` held.
    static let shared = PoolMonitor()

    private let lock = NSLock()
    private var started = false
    /// (when submitted, how long until it ran), oldest first; at most `capacity`.
    private var samples: [(submitted: UInt64, lag: UInt64)] = []
    private var outstanding: UInt64?
    private let capacity = 12_000

    func start() {
        let first: Bool = lock.withLock {
            defer { started = true }
            return !started
        }
        guard first else { return }
        let thread = Thread { [self] in
            while true {
                usleep(50_000)
                let submitted: UInt64? = lock.withLock {
                    guard outstanding == nil else { return nil }
                    let now = monotonicNanos()
                    outstanding = now
                    return now
                }
                guard let submitted else { continue }
                Task.detached { [self] in
                    let ran = monotonicNanos()
                    lock.withLock {
                        outstanding = nil
                        samples.append((submitted, ran &- submitted))
                        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
                    }
                }
            }
        }
        thread.name = "pool-monitor"
        thread.start()
    }

    /// The longest wait of a probe submitted since `since` (or still waiting), seconds.
    func longestStall(since: UInt64) -> Double {
        lock.withLock {
            var longest: UInt64 = 0
            for s in samples.reversed() {
                if s.submitted &+ s.lag < since { break }
                longest = max(longest, s.lag)
            }
            if let outstanding { longest = max(longest, monotonicNanos() &- outstanding) }
            return Double(longest) / 1e9
        }
    }
}

/// A wait that gave up: what it waited for, for how long, and whether the process was starved meanwhile.
public struct WaitTimeout: Error, CustomStringConvertible {
    public let what: String
    public let report: StarvationReport

    public init(waitingFor what: String, since start: LoadSnapshot) {
        self.what = what
        report = StarvationReport(since: start)
    }

    public var description: String {
        String(format: "gave up after %.1f s waiting for %@; ", report.waitedSeconds, what) + report.description
    }
}

/// One generous bound for everything a test waits for, started when the test starts waiting.
public struct TestDeadline: Sendable {
    public static let defaultBound: Duration = .seconds(90)

    public let start: LoadSnapshot
    public let bound: Duration
    private let end: ContinuousClock.Instant

    public init(_ bound: Duration = TestDeadline.defaultBound) {
        start = LoadSnapshot.now()
        self.bound = bound
        end = .now + bound
    }

    public var remaining: Duration { max(.zero, end - .now) }
    public var expired: Bool { ContinuousClock.now >= end }

    /// Milliseconds left, for poll(2).
    public var remainingMilliseconds: Int32 {
        let c = remaining.components
        return Int32(clamping: c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
    }

    public func timeout(waitingFor what: String) -> WaitTimeout {
        WaitTimeout(waitingFor: what, since: start)
    }

    /// Polls `condition` every `interval` until it holds; throws ``WaitTimeout`` naming `what` past the deadline.
    public func until(
        _ what: @autoclosure () -> String, every interval: Duration = .milliseconds(20),
        _ condition: () async throws -> Bool
    ) async throws {
        while try await !condition() {
            if expired { throw timeout(waitingFor: what()) }
            try await Task.sleep(for: interval)
        }
    }

    /// The result of `body`, or ``WaitTimeout`` naming `what` when the deadline comes first (`body` is cancelled).
    public func value<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let remaining = self.remaining
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: remaining)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw timeout(waitingFor: what)
            }
            return value
        }
    }
}
