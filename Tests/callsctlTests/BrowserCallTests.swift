import Foundation
import Testing

/// Headless Chromium joins an echo call on `callsctl serve` in a private network namespace
/// (scripts/peers/browser_echo.py), hears its own 440 Hz tone back, once over UDP and once with the
/// server offering only its TCP candidate. Needs chromium (scripts/peers/install-chromium.sh) and root
/// for `unshare -n`; skipped when either is missing.
@Suite(.serialized)
struct BrowserCallTests {
    @Test func pagePeerConnectionLoopbackHearsTheTone() throws {
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try BrowserHarness.run(["--mode", "loopback"])
        #expect(r.exit == 0, "\(r.output)")
    }

    /// Three participants (440, 660, 880 Hz): each hears the other two and not itself; alice shares a
    /// screen that bob and carol decode; bob mutes and the others stop receiving his audio. 3 % of the
    /// server's datagrams are dropped on the way, so NACKs, PLIs, receiver reports and REMB are exercised.
    @Test func threeParticipantGroupCall() throws {
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try BrowserHarness.run(["--seconds", "4", "--loss", "3"], script: BrowserHarness.groupScript)
        #expect(r.exit == 0, "\(r.output)")
    }

    /// Chromium joins a call of 200 scripted participants (`callsctl loadtest`: the project's WebRTC client through
    /// signaling, real Opus), two of them speaking 440 and 550 Hz: it hears both in its audio slots, the speaker map
    /// names them, and none of the 200 joins made anyone renegotiate.
    @Test func chromiumInACallOf200ScriptedParticipants() throws {
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try BrowserHarness.run(["--participants", "200"], script: BrowserHarness.largeScript)
        #expect(r.exit == 0, "\(r.output)")
    }

    @Test(arguments: ["udp", "tcp"])
    func echoCallOverTransport(_ transport: String) throws {
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try BrowserHarness.run(["--mode", "echo", "--transport", transport])
        #expect(r.exit == 0, "\(r.output)")
    }
}

enum BrowserHarness {
    static let script = repoRoot.appendingPathComponent("scripts/peers/browser_echo.py").path
    static let groupScript = repoRoot.appendingPathComponent("scripts/peers/browser_group.py").path
    static let largeScript = repoRoot.appendingPathComponent("scripts/peers/browser_large.py").path

    static var available: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    }

    static func run(_ args: [String], script: String = script) throws -> (exit: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--callsctl", CLI.binary.path] + (args.contains("--seconds") ? [] : ["--seconds", "5"]) + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
