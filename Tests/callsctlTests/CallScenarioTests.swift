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
        let (status, output) = try PeerScript.run(repoRoot.appendingPathComponent("scripts/peers/aiortc_stock.py").path, limit: 180)
        #expect(status == 0, "\(output)")
    }

    @Test(arguments: ["churn", "disabled", "testmode", "disabled-while-running", "limit", "wrong-channel", "vanish", "send-error"])
    func scenario(_ name: String) throws {
        if !Self.available {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] != "1", "aiortc is required but missing")
            return
        }
        let (status, output) = try PeerScript.run(Self.script, [name], limit: 180)
        #expect(status == 0, "\(output)")
    }
}
