import Foundation
import Testing

/// GStreamer `webrtcbin` (libnice) as a third WebRTC stack: it joins a call on `callsctl serve` next to an aiortc
/// participant (scripts/peers/gst_webrtc.py). webrtcbin offers a sendonly Opus section plus the server's receive-only
/// audio slots, sends a 660 Hz tone and must decode the aiortc participant's 440 Hz tone from the slot the speakers map
/// names; the aiortc participant must hear 660 Hz. Once over UDP and once over ICE-TCP (`serve --no-udp-candidates`,
/// so webrtcbin's only candidates are TCP; aiortc has no ICE-TCP and is given the server's UDP candidate).
/// Needs aiortc and numpy for python3 and gi with GStreamer's webrtcbin and libnice for /usr/bin/python3; skipped
/// (the script exits 3) when either is missing unless CALLSCTL_REQUIRE_GSTREAMER=1 (scripts/test.sh sets it).
@Suite(.serialized)
struct GStreamerCallTests {
    static let script = repoRoot.appendingPathComponent("scripts/peers/gst_webrtc.py").path

    @Test(arguments: ["udp", "tcp"])
    func webrtcbinParticipantHearsAndIsHeard(_ transport: String) throws {
        // Over UDP the call lasts 40 s: libnice keeps its path alive with Binding indications only (no consent
        // requests), so this also checks that its media keeps the session past the 30 s consent timeout.
        let r = try Self.run(["--transport", transport] + (transport == "udp" ? ["--seconds", "40"] : []))
        if r.exit == 3 {
            try #require(
                ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_GSTREAMER"] != "1",
                "GStreamer webrtcbin or aiortc is required but missing: \(r.output)")
            return
        }
        #expect(r.exit == 0, "\(r.output)")
    }

    static func run(_ args: [String]) throws -> (exit: Int32, output: String) {
        try PeerScript.run(script, args, limit: 200)
    }
}
