import Foundation
import Testing

/// `callsctl loadtest` against a real `callsctl serve` on loopback: real participants (the project's WebRTC client
/// through the server's signaling), speakers sending Opus tones. A small run, as CI runs it, and the errors a user
/// meets first.
@Suite(.serialized)
struct LoadtestCLITests {
    static func json(_ r: CLI.Result) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func aSmallCallHoldsTheLossThreshold() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let r = try CLI.run(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file",
                dir.url.appendingPathComponent("token-secret").path, "--participants", "6", "--speakers", "2",
                "--duration", "3", "--ramp", "20", "--role", "admin", "--max-loss", "2", "--max-join-failures", "0",
                "--server-pid", "\(serve.process.processIdentifier)", "--json",
            ], dataDir: dir.path, timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let report = Self.json(r)
        let joins = report["joins"] as? [String: Any] ?? [:]
        #expect(joins["joined"] as? Int == 6, "\(joins)")
        #expect(joins["failed"] as? Int == 0)
        // Fixed audio slots: six joins, no renegotiation asked of anyone.
        #expect(report["renegotiations"] as? Int == 0)
        let media = report["media"] as? [String: Any] ?? [:]
        // Four listeners hear both speakers and each speaker hears the other: 10 streams of 150 packets.
        #expect(media["expectedPackets"] as? Int == 10 * 150, "\(media)")
        let received = media["receivedPackets"] as? Int ?? 0
        #expect(received >= 10 * 150 * 98 / 100 && received <= 10 * 150, "\(media)")
        #expect(media["undecryptable"] as? Int == 0)
        // Every participant's speaker map named the speakers it should hear.
        #expect(media["listenersWithFullSpeakerMap"] as? Int == 6, "\(media)")
        let server = report["server"] as? [String: Any] ?? [:]
        #expect((server["cpuSeconds"] as? Double ?? 0) > 0, "\(server)")
        #expect((server["rssBytesAfter"] as? Int ?? 0) > 1_000_000)
    }

    @Test func aWrongTokenSecretEndsWithTheServersReason() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let other = TempDir()
        let wrong = other.url.appendingPathComponent("token-secret")
        try Data("c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1zZXJ2ZXJzLW9uZSEh".utf8).write(to: wrong)
        chmod(wrong.path, 0o600)
        let r = try CLI.run(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file", wrong.path,
                "--participants", "2", "--speakers", "1", "--duration", "1",
            ], dataDir: dir.path, timeout: 60)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("nobody could join"), "\(r.stderr)")
        #expect(r.stderr.contains("bad_token"), "\(r.stderr)")
    }

    @Test func anUnreachableServerIsAClearError() throws {
        let dir = TempDir()
        let secret = dir.url.appendingPathComponent("token-secret")
        _ = try CLI.run(["token", "create", "--channel", channelID(1), "--user", "x"], dataDir: dir.path)
        let port = try closedTCPPort()
        let r = try CLI.run(
            [
                "loadtest", "--url", "http://127.0.0.1:\(port)", "--token-secret-file", secret.path, "--participants", "2",
                "--duration", "1",
            ], dataDir: dir.path, timeout: 60)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("nobody could join"), "\(r.stderr)")
        #expect(r.stderr.contains("doctor"), "\(r.stderr)")
    }

    @Test(arguments: [
        (["--transport", "sctp"], "--transport must be udp or tcp"),
        (["--speakers", "5", "--participants", "2"], "--speakers needs 0 to --participants"),
        ([String](), "--token-secret-file"),
    ])
    func badInputIsAUsageError(_ args: [String], _ message: String) throws {
        let base = args.isEmpty ? ["loadtest"] : ["loadtest", "--token-secret-file", "/nonexistent"]
        let r = try CLI.run(base + args, dataDir: TempDir().path)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
