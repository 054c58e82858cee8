import CallsServer
import Foundation
import Probes

/// One second of a load test, as the progress line and the HTML report show it.
public struct LoadTestSample: Sendable, Equatable {
    /// Seconds since the first join started.
    public var seconds: Double
    /// `joining`, `media` or `settling`.
    public var phase: String
    public var joined: Int
    public var failed: Int
    /// RTP packets all listeners received per second, and speakers sent per second.
    public var receivedPerSecond: Double
    public var sentPerSecond: Double
    /// Media phase: 1 - received / expected over the second (nil outside it).
    public var loss: Double?
    /// The server's CPU over the second in cores (1 = one core busy), and its resident memory.
    public var serverCPU: Double?
    public var serverRSSBytes: Int?

    public init(
        seconds: Double, phase: String, joined: Int, failed: Int, receivedPerSecond: Double, sentPerSecond: Double,
        loss: Double? = nil, serverCPU: Double? = nil, serverRSSBytes: Int? = nil
    ) {
        self.seconds = seconds
        self.phase = phase
        self.joined = joined
        self.failed = failed
        self.receivedPerSecond = receivedPerSecond
        self.sentPerSecond = sentPerSecond
        self.loss = loss
        self.serverCPU = serverCPU
        self.serverRSSBytes = serverRSSBytes
    }

    /// The progress line of this second.
    public var progressLine: String {
        var parts = ["\(phase): joined \(joined)" + (failed > 0 ? ", \(failed) failed" : "")]
        parts.append("in \(Int(receivedPerSecond.rounded())) pkt/s, out \(Int(sentPerSecond.rounded())) pkt/s")
        if let loss { parts.append(String(format: "loss %.2f %%", loss * 100)) }
        if let serverCPU { parts.append(String(format: "server %.0f %% CPU", serverCPU * 100)) }
        if let serverRSSBytes { parts.append("\(serverRSSBytes / 1_048_576) MiB") }
        return parts.joined(separator: " | ")
    }
}

/// Where the server's CPU and memory come from: `/proc` of a local process, or the server's `/metrics`
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`).
enum ServerCostSource: Sendable {
    case process(Int32)
    case metrics(ProbeURL)

    /// CPU seconds and resident bytes now; nil fields when unavailable.
    func read() -> (cpuSeconds: Double?, residentBytes: Int?) {
        switch self {
        case .process(let pid):
            return (ProcessSample.cpuSeconds(pid), ProcessSample.residentBytes(pid))
        case .metrics(let api):
            guard
                let response = try? HTTPProbe.request(
                    api.with(path: "/metrics"), method: "GET", headers: [], caFile: nil, timeout: .seconds(2)),
                response.status == 200
            else { return (nil, nil) }
            return Self.parse(response.bodyText)
        }
    }

    /// The two process metrics from Prometheus text.
    static func parse(_ text: String) -> (cpuSeconds: Double?, residentBytes: Int?) {
        var cpu: Double?
        var rss: Int?
        for line in text.split(separator: "\n") where line.hasPrefix("process_") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            if parts[0] == "process_cpu_seconds_total" { cpu = Double(parts[1]) }
            if parts[0] == "process_resident_memory_bytes" { rss = Double(parts[1]).map { Int($0) } }
        }
        return (cpu, rss)
    }
}

/// Samples a running load test once a second: joins, packets in and out, loss, the server's cost.
final class LoadSampler: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`.
    private struct State {
        var phase = "joining"
        var sent = 0
        /// Packets per second the listeners should receive together while the speakers send.
        var expectedRate = 0.0
        var samples: [LoadTestSample] = []
    }

    private let lock = NSLock()
    private var _state = State()
    private let start = ContinuousClock.now
    private let cost: ServerCostSource?

    init(cost: ServerCostSource?) {
        self.cost = cost
    }

    private func withState<T>(_ body: (inout State) -> T) -> T { lock.withLock { body(&_state) } }

    func setPhase(_ phase: String, expectedRate: Double? = nil) {
        withState {
            $0.phase = phase
            if let expectedRate { $0.expectedRate = expectedRate }
        }
    }

    func countSent(_ n: Int) { withState { $0.sent += n } }

    var samples: [LoadTestSample] { withState { $0.samples } }

    /// Samples every second until cancelled; `progress` gets each sample.
    func run(_ participants: [LoadParticipant], progress: (@Sendable (LoadTestSample) -> Void)?) async {
        var lastReceived = await LoadTestRunner.counts(participants).reduce(0) { $0 + $1.received }
        var lastSent = 0
        var lastCPU = cost?.read().cpuSeconds
        var lastTime = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if Task.isCancelled { break }
            let now = ContinuousClock.now
            let dt = max(LoadParticipant.seconds(now - lastTime), 0.001)
            let received = await LoadTestRunner.counts(participants).reduce(0) { $0 + $1.received }
            let server = cost?.read()
            var joined = 0
            var failed = 0
            for p in participants {
                if p.joinSeconds != nil { joined += 1 } else if p.error != nil { failed += 1 }
            }
            let (phase, sent, expectedRate) = withState { ($0.phase, $0.sent, $0.expectedRate) }
            let receivedRate = Double(received - lastReceived) / dt
            var sample = LoadTestSample(
                seconds: LoadParticipant.seconds(now - start), phase: phase, joined: joined, failed: failed,
                receivedPerSecond: receivedRate, sentPerSecond: Double(sent - lastSent) / dt)
            if phase == "media", expectedRate > 0 { sample.loss = max(0, 1 - receivedRate / expectedRate) }
            if let cpu = server?.cpuSeconds, let before = lastCPU { sample.serverCPU = max(0, cpu - before) / dt }
            sample.serverRSSBytes = server?.residentBytes
            lastCPU = server?.cpuSeconds ?? lastCPU
            lastReceived = received
            lastSent = sent
            lastTime = now
            withState { $0.samples.append(sample) }
            progress?(sample)
        }
    }
}
