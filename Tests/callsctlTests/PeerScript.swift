import Foundation

/// Runs a real-peer scenario script (scripts/peers/*.py) against the built `callsctl`: `python3 SCRIPT --callsctl
/// BIN ARGS...`. Output goes through a file (no pipe to fill up); the run is bounded by `limit` seconds, after which
/// it is killed (each script also bounds its own waits). Exit 0 pass, 1 fail, 3 could not run.
enum PeerScript {
    static func run(_ script: String, _ arguments: [String] = [], limit: TimeInterval) throws -> (exit: Int32, output: String) {
        let name = URL(fileURLWithPath: script).deletingPathExtension().lastPathComponent
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: out) }
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--callsctl", CLI.binary.path] + arguments
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(limit)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
