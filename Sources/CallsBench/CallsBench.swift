import Foundation

/// One measured operation.
struct BenchResult {
    let name: String
    let operations: Int
    let seconds: Double
    var perSecond: Double { Double(operations) / seconds }
    var nanosPerOp: Double { seconds * 1e9 / Double(operations) }
}

/// `swift run -c release callsctl-bench [store|wire|media|echo|sfu|large|all]` prints a table (and JSON with --json).
/// `large` (one call of 1,000 participants) is not part of `all`: it takes a minute and most of the machine.
@main
enum CallsBenchMain {
    static func main() async throws {
        let args = CommandLine.arguments.dropFirst()
        let json = args.contains("--json")
        let groups = args.filter { !$0.hasPrefix("--") }
        let selected = Set(groups.isEmpty ? ["all"] : groups)
        var results: [BenchResult] = []
        if selected.contains("all") || selected.contains("store") { results += try StoreBench.run() }
        if selected.contains("all") || selected.contains("wire") { results += WireBench.run(iterations: 300_000) }
        if selected.contains("all") || selected.contains("media") { results += MediaBench.run() }
        if selected.contains("all") || selected.contains("echo") { results += await EchoPathBench.run() }
        if selected.contains("all") || selected.contains("sfu") { results += await SFUBench.run() }
        // The forwarding ceiling on one core: SRTP protect + sendmmsg of 160-byte packets (for bench/scale.sh).
        if selected.contains("ceiling") { results.append(try EchoPathBench.measureCeiling(packets: 200_000, unprotectToo: false).row) }
        if selected.contains("memory") { results += MemoryBench.run() }
        if selected.contains("flood") {
            let rate = args.first { $0.hasPrefix("--rate=") }.flatMap { Int($0.dropFirst("--rate=".count)) }
            let hogs = args.first { $0.hasPrefix("--hogs=") }.flatMap { Int($0.dropFirst("--hogs=".count)) }
            let rt = args.first { $0.hasPrefix("--realtime-priority=") }.flatMap { Int($0.dropFirst("--realtime-priority=".count)) }
            results += await FloodBench.run(
                rate: rate ?? 200_000, hogs: hogs ?? ProcessInfo.processInfo.activeProcessorCount, realtimePriority: rt ?? 0)
        }
        if selected.contains("large") {
            let n = args.first { $0.hasPrefix("--participants=") }.flatMap { Int($0.dropFirst("--participants=".count)) }
            let f = args.first { $0.hasPrefix("--fanout-threads=") }.flatMap { Int($0.dropFirst("--fanout-threads=".count)) }
            let rt = args.first { $0.hasPrefix("--realtime-priority=") }.flatMap { Int($0.dropFirst("--realtime-priority=".count)) }
            results += await LargeCallBench.run(participants: n ?? 1000, fanoutThreads: f, realtimePriority: rt ?? 10)
        }
        report(results, json: json)
    }

    static func report(_ results: [BenchResult], json: Bool) {
        if json {
            let items = results.map {
                "{\"name\":\"\($0.name)\",\"operations\":\($0.operations),\"seconds\":\($0.seconds),\"perSecond\":\(Int($0.perSecond)),\"nsPerOp\":\(Int($0.nanosPerOp))}"
            }
            print("[" + items.joined(separator: ",") + "]")
            return
        }
        print(pad("benchmark", 52) + pad("ops/s", 14) + "ns/op")
        for r in results {
            print(pad(r.name, 52) + pad(String(Int(r.perSecond)), 14) + String(Int(r.nanosPerOp)))
        }
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}

/// Times `body` over `operations` operations.
func measure(_ name: String, operations: Int, _ body: () throws -> Void) rethrows -> BenchResult {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return BenchResult(name: name, operations: operations, seconds: seconds)
}
