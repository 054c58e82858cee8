import Foundation
import Testing

/// Scripted calls on a real `callsctl serve` with aiortc participants (scripts/peers/aiortc_calls.py):
/// join/leave churn, the channel policy (disabled, test mode, disabled while a call runs), the
/// participant limit, a token for another channel, a participant that vanishes without leaving, and
/// datagrams the kernel refuses to one participant (the call goes on for the others).
/// Needs aiortc and numpy (scripts/install-deps.sh --test); skipped without them unless
/// CALLSCTL_REQUIRE_AIORTC=1.
@Suite(.serialized)
struct CallScenarioTests {
    static let script = repoRoot.appendingPathComponent("scripts/peers/aiortc_calls.py").path

    static let available: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import aiortc, numpy"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test(arguments: ["churn", "disabled", "testmode", "disabled-while-running", "limit", "wrong-channel", "vanish", "send-error"])
    func scenario(_ name: String) throws {
        if !Self.available {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] != "1", "aiortc is required but missing")
            return
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("aiortc-\(name)-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: out) }
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.script, "--callsctl", CLI.binary.path, name]
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        // Bounded: every scenario finishes well within this; a stuck one is killed.
        let deadline = Date().addingTimeInterval(180)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(output)")
    }
}
