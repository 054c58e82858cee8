import CallsTestSupport
import Foundation
import Testing

/// `callsctl calls list|end|remove` against a real `callsctl serve`: participants joined through its signaling
/// (WebSockets held open by the test) and a real call with media (`callsctl loadtest` in the background).
@Suite(.serialized) struct CallsCLITests {
    typealias RunningServe = ServeCLITests.RunningServe
    typealias OpenSocket = ServeOpsTests.OpenSocket

    /// `callsctl calls ARGS --url <serve>` with serve's data directory, so the default admin key is serve's.
    static func calls(_ serve: RunningServe, _ dir: TempDir, _ args: [String]) throws -> CLI.Result {
        try CLI.run(["calls"] + args + ["--url", "http://127.0.0.1:\(serve.apiPort)"], dataDir: dir.path)
    }

    static func json(_ r: CLI.Result) -> [String: Any] { r.json as? [String: Any] ?? [:] }

    /// Joins `user` to the call in `channel`; returns the open signaling socket and its session id.
    static func join(_ serve: RunningServe, _ dir: TempDir, channel: String, user: String) throws -> (OpenSocket, String) {
        let token = try CLI.run(["token", "create", "--channel", channel, "--user", user], dataDir: dir.path)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let ws = try OpenSocket(port: serve.apiPort)
        let joined = try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(token)\"}")
        let id = try #require(joined["sessionId"] as? String, "\(joined)")
        return (ws, id)
    }

    /// Reads `ws` until the server closes the connection; returns what came (the last messages, as raw frames).
    static func waitUntilClosed(_ ws: OpenSocket) throws -> String {
        let deadline = TestDeadline()
        var seen: [UInt8] = []
        while true {
            var p = pollfd(fd: ws.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, deadline.remainingMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw deadline.timeout(waitingFor: "serve to close a removed participant's WebSocket") }
            var buf = [UInt8](repeating: 0, count: 4096)
            let got = buf.withUnsafeMutableBytes { recv(ws.fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return String(decoding: seen, as: UTF8.self) }
            seen += buf[0..<got]
        }
    }

    /// The participants `calls list --json` shows, by channel.
    static func listed(_ serve: RunningServe, _ dir: TempDir) throws -> [String: [[String: Any]]] {
        let r = try calls(serve, dir, ["list", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        var out: [String: [[String: Any]]] = [:]
        for call in json(r)["calls"] as? [[String: Any]] ?? [] {
            out[call["channel"] as? String ?? "?"] = call["participants"] as? [[String: Any]] ?? []
        }
        return out
    }

    @Test func listShowsTheCallsWithTheirParticipants() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let empty = try Self.calls(serve, dir, ["list"])
        #expect(empty.status == 0, "\(empty.stderr)")
        #expect(empty.stdout == "no calls running\n")
        let emptyJSON = try Self.calls(serve, dir, ["list", "--json"])
        #expect(Self.json(emptyJSON)["calls"] as? [Any] != nil && (Self.json(emptyJSON)["calls"] as? [Any])?.isEmpty == true, "\(emptyJSON.stdout)")

        let (alice, aliceID) = try Self.join(serve, dir, channel: channelID(11), user: "alice")
        let (bob, bobID) = try Self.join(serve, dir, channel: channelID(11), user: "bob")
        let (carol, carolID) = try Self.join(serve, dir, channel: channelID(12), user: "carol")
        defer { [alice, bob, carol].forEach { $0.close() } }

        let table = try Self.calls(serve, dir, ["list"])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("CHANNEL") == true && lines.first?.contains("SESSION") == true, "\(table.stdout)")
        for (channel, id, user) in [(channelID(11), aliceID, "alice"), (channelID(11), bobID, "bob"), (channelID(12), carolID, "carol")] {
            let row = lines.first { $0.contains(id) }
            #expect(row?.hasPrefix(channel) == true, "\(table.stdout)")
            #expect(row?.contains(" \(user) ") == true && row?.contains(" joined ") == true, "\(table.stdout)")
        }
        #expect(lines.last == "2 calls, 3 participants", "\(table.stdout)")
        // The key is the data directory's admin-key, and it is never printed.
        let key = try String(contentsOfFile: dir.url.appendingPathComponent("admin-key").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!table.stdout.contains(key) && !table.stderr.contains(key))

        let machine = try Self.calls(serve, dir, ["list", "--json"])
        let document = Self.json(machine)
        #expect(document["url"] as? String == "http://127.0.0.1:\(serve.apiPort)/")
        let calls = try #require(document["calls"] as? [[String: Any]], "\(machine.stdout)")
        #expect(calls.map { $0["channel"] as? String } == [channelID(11), channelID(12)])
        let first = calls[0]["participants"] as? [[String: Any]] ?? []
        #expect(first.map { $0["id"] as? String } == [aliceID, bobID])
        #expect(first.map { $0["user"] as? String } == ["alice", "bob"])
        #expect(first.allSatisfy { $0["state"] as? String == "joined" && $0["role"] as? String == "user" && $0["echo"] as? Bool == false })
        #expect(first.allSatisfy { $0["transport"] is NSNull && $0["peer"] is String && $0["joinedAt"] is String })
        #expect((calls[1]["participants"] as? [[String: Any]])?.map { $0["user"] as? String } == ["carol"])
    }

    @Test func removeTakesOneParticipantOutOfItsCall() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let (alice, aliceID) = try Self.join(serve, dir, channel: channelID(13), user: "alice")
        let (bob, bobID) = try Self.join(serve, dir, channel: channelID(13), user: "bob")
        defer { [alice, bob].forEach { $0.close() } }

        let r = try Self.calls(serve, dir, ["remove", aliceID])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "removed session \(aliceID) (alice in \(channelID(13)))\n")
        // Alice is told why, and her WebSocket is closed by the server.
        #expect(try Self.waitUntilClosed(alice).contains("removed by an administrator"))
        let left = try Self.listed(serve, dir)
        #expect(left[channelID(13)]?.map { $0["id"] as? String } == [bobID], "\(left)")

        // Again: the server's message, exit 2.
        let again = try Self.calls(serve, dir, ["remove", aliceID])
        #expect(again.status == 2)
        #expect(again.stderr.hasPrefix("error: no session \(aliceID); list the current ones with GET /api/v1/calls\n"), "\(again.stderr)")
        #expect(again.stdout.isEmpty)

        let machine = try Self.calls(serve, dir, ["remove", bobID, "--json"])
        #expect(machine.status == 0, "\(machine.stderr)")
        let answer = Self.json(machine)
        #expect(answer["removed"] as? String == bobID && answer["channel"] as? String == channelID(13) && answer["user"] as? String == "bob")
        _ = try Self.waitUntilClosed(bob)
        #expect(try Self.listed(serve, dir).isEmpty)
    }

    @Test func endRemovesEveryParticipantOfTheCall() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let (alice, _) = try Self.join(serve, dir, channel: channelID(14), user: "alice")
        let (bob, _) = try Self.join(serve, dir, channel: channelID(14), user: "bob")
        let (carol, carolID) = try Self.join(serve, dir, channel: channelID(15), user: "carol")
        defer { [alice, bob, carol].forEach { $0.close() } }

        let r = try Self.calls(serve, dir, ["end", channelID(14), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let answer = Self.json(r)
        #expect(answer["ended"] as? String == channelID(14) && answer["participants"] as? Int == 2, "\(r.stdout)")
        for ws in [alice, bob] {
            let last = try Self.waitUntilClosed(ws)
            #expect(last.contains("call_ended") && last.contains("removed by an administrator"), "\(last)")
        }
        // The other call goes on.
        let left = try Self.listed(serve, dir)
        #expect(left.keys.sorted() == [channelID(15)] && left[channelID(15)]?.first?["id"] as? String == carolID, "\(left)")

        let human = try Self.calls(serve, dir, ["end", channelID(15)])
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stdout == "ended the call in \(channelID(15)): 1 participant removed\n")
        _ = try Self.waitUntilClosed(carol)
        #expect(try Self.calls(serve, dir, ["list"]).stdout == "no calls running\n")

        let none = try Self.calls(serve, dir, ["end", channelID(15)])
        #expect(none.status == 2)
        #expect(none.stderr.hasPrefix("error: no call in channel \(channelID(15)); list the current ones with GET /api/v1/calls\n"), "\(none.stderr)")
    }

    /// A call with media (`callsctl loadtest` participants: ICE, DTLS-SRTP, Opus): listed as connected over UDP, and
    /// `calls end` closes their media sessions on the server.
    @Test func endClosesTheMediaSessionsOfARealCall() async throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let call = try LiveCall(serve, dir, channel: channelID(16), participants: 2)
        defer { call.stop() }
        let deadline = TestDeadline()
        var participants: [[String: Any]] = []
        try await deadline.until("both loadtest participants to be connected", every: .milliseconds(200)) {
            participants = try Self.listed(serve, dir)[channelID(16)] ?? []
            return participants.count == 2 && participants.allSatisfy { $0["state"] as? String == "connected" }
        }
        #expect(participants.allSatisfy { $0["transport"] as? String == "udp" && $0["mediaSession"] is String && $0["connectedSince"] is String })
        let table = try Self.calls(serve, dir, ["list"])
        #expect(table.stdout.split(separator: "\n").filter { $0.contains(" connected ") && $0.contains(" udp ") }.count == 2, "\(table.stdout)")
        #expect(try Self.sessionsGauge(serve) == 2)

        let r = try Self.calls(serve, dir, ["end", channelID(16)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ended the call in \(channelID(16)): 2 participants removed\n")
        try await deadline.until("serve to close the ended call's media sessions", every: .milliseconds(100)) {
            try Self.sessionsGauge(serve) == 0
        }
        #expect(try Self.listed(serve, dir).isEmpty)
    }

    /// `callsctl_sessions` (media sessions open) from serve's /metrics.
    static func sessionsGauge(_ serve: RunningServe) throws -> Int? {
        let (status, text) = try ServeCLITests.get(serve.apiPort, "/metrics")
        guard status == 200 else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("callsctl_sessions ") }.flatMap { Int($0.split(separator: " ")[1]) }
    }

    @Test func aWrongKeyIsRefusedAndNeverPrinted() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let wrong = dir.url.appendingPathComponent("wrong-key")
        let wrongKey = "not-the-key-of-this-server-0123456789"
        try (wrongKey + "\n").write(to: wrong, atomically: true, encoding: .utf8)
        chmod(wrong.path, 0o600)
        for args in [["list"], ["end", channelID(17)], ["remove", "abc123"]] {
            let r = try Self.calls(serve, dir, args + ["--admin-key-file", wrong.path])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(
                r.stderr.hasPrefix(
                    "error: the admin API at http://127.0.0.1:\(serve.apiPort)/ refused the admin key (HTTP 401): the admin API needs the header"),
                "\(r.stderr)")
            #expect(r.stderr.contains("--admin-key-file FILE"))
            #expect(!r.stderr.contains(wrongKey) && !r.stdout.contains(wrongKey))
        }
        // The environment names the file too; the flag wins.
        let viaEnv = try CLI.run(
            ["calls", "list", "--url", "http://127.0.0.1:\(serve.apiPort)"], dataDir: dir.path, env: ["CALLSCTL_ADMIN_KEY_FILE": wrong.path])
        #expect(viaEnv.status == 2, "\(viaEnv.stderr)")
        let flagWins = try CLI.run(
            ["calls", "list", "--url", "http://127.0.0.1:\(serve.apiPort)", "--admin-key-file", dir.url.appendingPathComponent("admin-key").path],
            dataDir: dir.path, env: ["CALLSCTL_ADMIN_KEY_FILE": wrong.path])
        #expect(flagWins.status == 0, "\(flagWins.stderr)")

        // A path in --url is a prefix: here one that serve does not answer, which is said (exit 3) with serve's message.
        let prefixed = try CLI.run(["calls", "list", "--url", "http://127.0.0.1:\(serve.apiPort)/calls-admin"], dataDir: dir.path)
        #expect(prefixed.status == 3)
        #expect(
            prefixed.stderr.hasPrefix(
                "error: http://127.0.0.1:\(serve.apiPort)/calls-admin/api/v1/calls is not a callsctl admin API endpoint (HTTP 404): no such endpoint"),
            "\(prefixed.stderr)")

        // No key file at all: exit 3, naming where it looked and how to fix it.
        let elsewhere = TempDir()
        let missing = try CLI.run(["calls", "list", "--url", "http://127.0.0.1:\(serve.apiPort)"], dataDir: elsewhere.path)
        #expect(missing.status == 3)
        #expect(missing.stderr.hasPrefix("error: no admin key at \(elsewhere.path)/admin-key:"), "\(missing.stderr)")
        #expect(missing.stderr.contains("--admin-key-file FILE"))
        let noFile = try Self.calls(serve, dir, ["list", "--admin-key-file", "/nonexistent/admin-key"])
        #expect(noFile.status == 3)
        #expect(noFile.stderr.hasPrefix("error: --admin-key-file: the admin key file /nonexistent/admin-key does not exist."), "\(noFile.stderr)")
    }

    /// serve took its admin key file from its config file: `calls` finds it there (CALLSCTL_CONFIG, or callsctl.toml
    /// in the data directory), as serve does.
    @Test func theKeyFileOfServesConfigFileIsUsed() throws {
        let dir = TempDir()
        let key = dir.url.appendingPathComponent("ops-admin-key").path
        try "ops-key-0123456789abcdef0123456789\n".write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        let config = dir.url.appendingPathComponent("callsctl.toml").path
        try "[api]\nsecurity.admin_key_file = \"\(key)\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        // callsctl.toml in the data directory is serve's config too.
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("admin-key").path))
        let listed = try Self.calls(serve, dir, ["list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        // And through CALLSCTL_CONFIG from another data directory.
        let elsewhere = TempDir()
        let viaEnv = try CLI.run(
            ["calls", "list", "--url", "http://127.0.0.1:\(serve.apiPort)"], dataDir: elsewhere.path, env: ["CALLSCTL_CONFIG": config])
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
    }

    @Test func anUnreachableServerIsSaidSo() throws {
        let dir = TempDir()
        let key = dir.url.appendingPathComponent("admin-key")
        try "0123456789abcdef0123456789abcdef\n".write(to: key, atomically: true, encoding: .utf8)
        chmod(key.path, 0o600)
        let port = try closedTCPPort()
        for args in [["list"], ["end", channelID(18)], ["remove", "abc123"], ["list", "--json"]] {
            let r = try CLI.run(["calls"] + args + ["--url", "http://127.0.0.1:\(port)"], dataDir: dir.path)
            #expect(r.status == 3, "\(args): \(r.stderr)")
            #expect(
                r.stderr.hasPrefix(
                    "error: cannot reach the media server's admin API at http://127.0.0.1:\(port)/: nothing listens there (connection refused)\n"),
                "\(r.stderr)")
            #expect(r.stderr.contains("--api-listen"))
            #expect(r.stdout.isEmpty)
        }
    }

    @Test(arguments: [
        ["end", "not-a-channel"], ["remove", "a/b"], ["remove", ""], ["list", "--url", "ftp://127.0.0.1"], ["list", "--url", "http://127.0.0.1:8045/?x"],
        ["list", "--timeout", "0"],
        ["end"],
    ])
    func usageErrorsExit64(_ args: [String]) throws {
        let r = try CLI.run(["calls"] + args, dataDir: TempDir().path)
        #expect(r.status == 64, "\(r.stderr)")
    }

    @Test func helpHasExamples() throws {
        for command in [["calls"], ["calls", "list"], ["calls", "end"], ["calls", "remove"]] {
            let r = try CLI.run(command + ["--help"], dataDir: nil)
            #expect(r.status == 0)
            #expect(r.stdout.contains("callsctl calls "), "\(command)")
            #expect(r.stdout.contains("--admin-key-file") || command == ["calls"])
        }
    }
}

/// `callsctl loadtest` running in the background: participants with media in one call, until `stop()`.
final class LiveCall {
    let process: Process

    init(_ serve: ServeCLITests.RunningServe, _ dir: TempDir, channel: String, participants: Int, seconds: Int = 120) throws {
        process = CLI.process(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file",
                dir.url.appendingPathComponent("token-secret").path, "--channel", channel, "--participants", "\(participants)",
                "--speakers", "\(participants)", "--duration", "\(seconds)", "--role", "admin", "--json", "--quiet",
            ], dataDir: dir.path)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Ends the load generator (SIGTERM, then SIGKILL after a bounded wait).
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
