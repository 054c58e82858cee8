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

    /// Three stock aiortc clients (default configuration: bundle policy "balanced", no transceiver retired), written
    /// from docs/protocol.md: they hear each other, and each screen in turn (three presenters, so video slots are
    /// reused with new SSRCs) is decoded by the two others; a participant leaves and joins again.
    @Test func stockAiortcClientsHoldACall() throws {
        if !Self.available {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] != "1", "aiortc is required but missing")
            return
        }
        let (status, output) = try Self.runScript(repoRoot.appendingPathComponent("scripts/peers/aiortc_stock.py").path, [], name: "stock")
        #expect(status == 0, "\(output)")
    }

    @Test(arguments: ["churn", "disabled", "testmode", "disabled-while-running", "limit", "wrong-channel", "vanish", "send-error"])
    func scenario(_ name: String) throws {
        if !Self.available {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] != "1", "aiortc is required but missing")
            return
        }
        let (status, output) = try Self.runScript(Self.script, [name], name: name)
        #expect(status == 0, "\(output)")
    }

    /// Runs a scenario script against the built `callsctl`, bounded in time; its exit status and output.
    static func runScript(_ script: String, _ arguments: [String], name: String) throws -> (Int32, String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("aiortc-\(name)-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: out) }
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--callsctl", CLI.binary.path] + arguments
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        // Bounded: every scenario finishes well within this; a stuck one is killed.
        let deadline = Date().addingTimeInterval(180)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
