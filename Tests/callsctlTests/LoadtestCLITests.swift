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

    /// `callsctl loadtest` against `serve`, with tokens signed by its secret in `dir`, plus `args`.
    static func loadtest(_ serve: ServeCLITests.RunningServe, _ dir: TempDir, _ args: [String]) throws -> CLI.Result {
        try CLI.run(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file",
                dir.url.appendingPathComponent("token-secret").path,
            ] + args, dataDir: dir.path, timeout: 120)
    }

    @Test func aSmallCallHoldsTheLossThreshold() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let page = dir.url.appendingPathComponent("report.html")
        let r = try Self.loadtest(
            serve, dir,
            [
                "--participants", "6", "--speakers", "2",
                "--duration", "3", "--ramp", "20", "--role", "admin", "--max-loss", "2", "--max-join-failures", "0",
                "--server-pid", "\(serve.process.processIdentifier)", "--json", "--report", page.path,
            ])
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        // The participants' sockets are closed before their event loops shut down (NIO complains otherwise).
        #expect(!r.stderr.contains("EventLoop that has already shut down"), "\(r.stderr)")
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
        #expect(server["source"] as? String == "proc")
        // Jitter of the received streams, and one sample per second: media seconds carry loss and server cost.
        let jitter = media["meanJitterMs"] as? Double ?? -1
        #expect(jitter >= 0 && jitter < 100, "\(media)")
        let timeline = report["timeline"] as? [[String: Any]] ?? []
        let mediaSeconds = timeline.filter { $0["phase"] as? String == "media" }
        #expect(mediaSeconds.count >= 2, "\(timeline)")
        #expect(mediaSeconds.allSatisfy { $0["loss"] is Double && $0["serverCores"] is Double && $0["serverRSSBytes"] is Int })
        #expect(mediaSeconds.contains { ($0["receivedPerSecond"] as? Double ?? 0) > 100 }, "\(mediaSeconds)")
        // The HTML report: self-contained (nothing to fetch), five charts, the run's figures.
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.components(separatedBy: "<figure id=").count - 1 == 5)
        #expect(html.components(separatedBy: "<polyline").count - 1 >= 5, "\(html)")
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("<script"))
        #expect(html.contains("6 of 6 (0 failed)"), "\(html)")
    }

    /// Without --server-pid the server's CPU and memory come from its /metrics; the report opens in a real browser
    /// (headless Chromium, in a network namespace of its own) and draws its charts.
    @Test func serverFiguresFromMetricsAndTheReportOpensInABrowser() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let page = dir.url.appendingPathComponent("report.html")
        let r = try Self.loadtest(
            serve, dir,
            [
                "--participants", "4", "--speakers", "1",
                "--duration", "3", "--json", "--report", page.path,
            ])
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let server = Self.json(r)["server"] as? [String: Any] ?? [:]
        #expect(server["source"] as? String == "metrics", "\(server)")
        #expect((server["cpuSeconds"] as? Double ?? 0) > 0, "\(server)")
        #expect((server["rssBytesAfter"] as? Int ?? 0) > 1_000_000, "\(server)")
        guard BrowserHarness.available else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = [
            "-n", "/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--user-data-dir=\(dir.url.appendingPathComponent("chromium").path)", "--dump-dom", page.absoluteString,
        ]
        let out = dir.url.appendingPathComponent("dom.html")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        let dom = try String(contentsOf: out, encoding: .utf8)
        // Chromium parsed the page into a DOM with every chart's SVG and its lines.
        #expect(dom.contains("<figure id=\"throughput\">"), "\(dom.prefix(400))")
        #expect(dom.components(separatedBy: "<svg").count - 1 == 5, "\(dom.prefix(400))")
        #expect(dom.contains("data-name=\"received by listeners\""))
    }

    /// A presenter shares a real VP8 stream (libvpx frames from the fixture): the server takes the screen and every
    /// viewer receives its packets, next to the speaker's audio.
    @Test func aPresentersScreenReachesEveryViewer() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let r = try Self.loadtest(
            serve, dir,
            [
                "--participants", "5", "--speakers", "1",
                "--presenters", "1", "--duration", "3", "--max-loss", "2", "--json",
            ])
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let video = Self.json(r)["video"] as? [String: Any] ?? [:]
        #expect(video["presenting"] as? Int == 1, "\(video)")
        // 15 frames a second of the fixture (16 packets) for 3 s, to 4 viewers.
        let sent = video["sentPackets"] as? Int ?? 0
        #expect(sent >= 40 && sent <= 50, "\(video)")
        #expect(video["expectedPackets"] as? Int == sent * 4, "\(video)")
        let received = video["receivedPackets"] as? Int ?? 0
        #expect(received >= sent * 4 * 98 / 100 && received <= sent * 4, "\(video)")
        let media = Self.json(r)["media"] as? [String: Any] ?? [:]
        #expect(media["expectedPackets"] as? Int == 4 * 150, "\(media)")
    }

    @Test func aWrongTokenSecretEndsWithTheServersReason() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let other = TempDir()
        let wrong = other.url.appendingPathComponent("token-secret")
        try Data("c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1zZXJ2ZXJzLW9uZSEh".utf8).write(to: wrong)
        chmod(wrong.path, 0o600)
        let page = other.url.appendingPathComponent("partial.html")
        let r = try CLI.run(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file", wrong.path,
                "--participants", "2", "--speakers", "1", "--duration", "1", "--report", page.path,
            ], dataDir: dir.path, timeout: 60)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("nobody could join"), "\(r.stderr)")
        #expect(r.stderr.contains("bad_token"), "\(r.stderr)")
        // The report is written all the same, with what went wrong.
        let html = (try? String(contentsOf: page, encoding: .utf8)) ?? ""
        #expect(html.contains("0 of 2 (2 failed)"), "\(html)")
        #expect(html.contains("bad_token"), "\(html)")
    }

    /// Signaling works but media never connects (the answers advertise an address where nothing listens): every
    /// join fails at --join-timeout, the run ends with the reason and a report, and does not hang.
    @Test func aServerWhoseMediaNobodyReachesEndsWithAReport() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path, extraArgs: ["--ice-host-override", "127.0.0.2"])
        defer { _ = serve.stop() }
        let page = dir.url.appendingPathComponent("r.html")
        // A hang would be killed at CLI.run's limit and fail the exit-status check.
        let r = try Self.loadtest(
            serve, dir,
            [
                "--participants", "3", "--duration", "2",
                "--join-timeout", "3", "--report", page.path,
            ])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("nobody could join"), "\(r.stderr)")
        let html = (try? String(contentsOf: page, encoding: .utf8)) ?? ""
        #expect(html.contains("0 of 3 (3 failed)"), "\(html)")
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
        (["--presenters", "2"], "--presenters is 0 or 1"),
        (["--report", "/nonexistent-folder/r.html"], "--report /nonexistent-folder/r.html: the folder /nonexistent-folder does not exist"),
        ([String](), "--token-secret-file"),
    ])
    func badInputIsAUsageError(_ args: [String], _ message: String) throws {
        let base = args.isEmpty ? ["loadtest"] : ["loadtest", "--token-secret-file", "/nonexistent"]
        let r = try CLI.run(base + args, dataDir: TempDir().path)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
