import Foundation
import Testing

/// Firefox ESR as a third WebRTC stack on the built-in call page (scripts/peers/browser_firefox.py): headless Firefox
/// (fake microphone at 660 Hz, audio into a PulseAudio null sink), headless Chromium (440 Hz, shares its fake camera as
/// the screen) and an aiortc participant (880 Hz) join one call in a private network namespace. Each hears the two
/// other tones and not its own, Firefox decodes Chromium's screen, then Firefox mutes and Chromium and aiortc both see
/// its audio stop. Needs root (`unshare -n`), chromium, firefox-esr, pulseaudio and aiortc with numpy for python3;
/// skipped when firefox-esr or pulseaudio is missing unless CALLSCTL_REQUIRE_FIREFOX=1.
@Suite(.serialized)
struct FirefoxCallTests {
    static let script = repoRoot.appendingPathComponent("scripts/peers/browser_firefox.py").path

    static var firefoxInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/firefox-esr")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/pulseaudio")
    }

    @Test func firefoxChromiumAndAiortcInOneCall() throws {
        if !Self.firefoxInstalled {
            try #require(
                ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_FIREFOX"] != "1",
                "firefox-esr and pulseaudio are required but missing")
            return
        }
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try Self.run(["--seconds", "4"])
        #expect(r.exit == 0, "\(r.output)")
    }

    /// A cluster (scripts/peers/browser_cluster.py): two serve nodes on one PostgreSQL; Chromium starts the call on
    /// n1, then Firefox and a second Chromium open the page on n2, follow the `redirect` to n1 and all three hear each
    /// other there.
    @Test func chromiumAndFirefoxFollowARedirectToTheCallsNode() throws {
        if !Self.firefoxInstalled {
            try #require(
                ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_FIREFOX"] != "1",
                "firefox-esr and pulseaudio are required but missing")
            return
        }
        try #require(BrowserHarness.available, "needs chromium (scripts/install-deps.sh --test installs it) and root for unshare -n")
        let r = try PeerScript.run(repoRoot.appendingPathComponent("scripts/peers/browser_cluster.py").path, ["--seconds", "4"], limit: 240)
        #expect(r.exit == 0, "\(r.output)")
    }

    static func run(_ args: [String]) throws -> (exit: Int32, output: String) {
        try PeerScript.run(script, args, limit: 240)
    }
}
