import CallsStore
import Foundation

/// Store writes and reads per second on a real WAL file in a temporary folder.
enum StoreBench {
    static func run() throws -> [BenchResult] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("callsctl-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SettingsStore(path: dir.appendingPathComponent("calls.db").path)
        let ids = (0..<2000).map { i in try! ChannelID(validating: String(format: "bench%021d", i)) }
        var results: [BenchResult] = []

        let writes = 2000
        results.append(
            try measure("store: set one channel (1 txn, audited)", operations: writes) {
                for i in 0..<writes {
                    try store.set(i % 2 == 0 ? .enabled : .disabled, for: [ids[i % ids.count]], actor: "bench")
                }
            })
        results.append(
            try measure("store: set 100 channels per txn (per channel)", operations: 100 * 50) {
                for batch in 0..<50 {
                    let slice = Array(ids[(batch * 100 % 1900)..<(batch * 100 % 1900 + 100)])
                    try store.set(batch % 2 == 0 ? .unset : .enabled, for: slice, actor: "bench")
                }
            })
        let reads = 20000
        results.append(
            try measure("store: status of one channel", operations: reads) {
                for i in 0..<reads { _ = try store.status(of: ids[i % ids.count]) }
            })
        results.append(
            try measure("store: mayStartCall (policy check at call start)", operations: reads) {
                for i in 0..<reads { _ = try store.mayStartCall(in: ids[i % ids.count], isAdmin: false) }
            })
        return results
    }
}
