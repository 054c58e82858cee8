import CallsMedia
import CallsTestSupport
import Foundation
import Logging
import Testing

@testable import LoadTest

#if canImport(Glibc)
import Glibc
#endif

/// Several `callsctl serve` nodes on one real PostgreSQL (issue #18): every channel's call on exactly one node through
/// joins, node failure, draining and a database outage; channel settings reaching every node.
@Suite(.serialized) struct ClusterTests {
    typealias RunningServe = ServeCLITests.RunningServe

    /// The files every node of a test cluster shares, and its database.
    final class Cluster: @unchecked Sendable {
        // @unchecked: `nodes` is changed only by the test's own task.
        let dir = TempDir()
        let server: PostgresServer
        let database: String
        var nodes: [String: (serve: RunningServe, port: Int)] = [:]
        static let heartbeatTimeout = 5

        init(server: PostgresServer? = nil) throws {
            self.server = try server ?? PostgresServer.shared.get()
            database = try self.server.createDatabase(prefix: "cluster")
            try "dGVzdC1zZWNyZXQtZm9yLWNsdXN0ZXItdGVzdHMtMDEyMzQ1Njc4OQ==\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
            chmod(secretFile, 0o600)
            try "cluster-admin-key-0123456789abcdef\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
            chmod(keyFile, 0o600)
        }

        var secretFile: String { dir.path + "/token-secret" }
        var keyFile: String { dir.path + "/admin-key" }
        var url: String { server.url(database: database) }

        func arguments(_ name: String, port: Int, secret: String? = nil) -> [String] {
            [
                "--api-listen", "127.0.0.1:\(port)", "--cluster-db", url, "--cluster-node-id", name,
                "--cluster-public-url", "http://127.0.0.1:\(port)", "--cluster-heartbeat-timeout", "\(Self.heartbeatTimeout)",
                "--token-secret-file", secret ?? secretFile, "--admin-key-file", keyFile, "--drain-timeout", "120",
            ]
        }

        @discardableResult
        func start(_ name: String) throws -> Int {
            // The public URL names the port, so it is chosen before serve binds it; a port taken meanwhile is retried.
            var lastError: (any Error)?
            for _ in 0..<4 {
                let port = Int(try freePort(tcpAndUDP: false))
                do {
                    let serve = try RunningServe(dataDir: dir.path + "/" + name, extraArgs: arguments(name, port: port))
                    nodes[name] = (serve, port)
                    return port
                } catch {
                    lastError = error
                }
            }
            throw lastError ?? ServeCLITests.CLIProblem(description: "node \(name) did not start")
        }

        func port(_ name: String) -> Int { nodes[name]!.port }

        func token(channel: String, user: String) throws -> String {
            let r = try CLI.run(["token", "create", "--channel", channel, "--user", user, "--token-secret-file", secretFile], dataDir: dir.path)
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// One join over a raw WebSocket; the first reply (joined, redirect or error) as JSON. The socket then closes.
        func join(_ name: String, channel: String, user: String = "probe") throws -> [String: Any] {
            let reply = try ServeCLITests.webSocketExchange(
                port: port(name), "{\"v\":2,\"type\":\"join\",\"token\":\"\(try token(channel: channel, user: user))\"}")
            return (try? JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any]) ?? ["raw": reply]
        }

        /// GET /api/v1/calls of a node.
        func calls(_ name: String) throws -> [[String: Any]] {
            let r = try CLI.run(
                ["calls", "list", "--json", "--url", "http://127.0.0.1:\(port(name))", "--admin-key-file", keyFile], dataDir: dir.path)
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            return object?["calls"] as? [[String: Any]] ?? []
        }

        /// A participant with the project's WebRTC client, joined through node `name` (following redirects) and
        /// connected, until ``LoadParticipant/leave()``.
        func participant(via name: String, channel: String, user: String, speaks: Bool = false) async throws -> LoadParticipant {
            var configuration = MediaClientConfiguration()
            configuration.connectTimeout = .seconds(20)
            configuration.audioLevelExtensionID = 1
            let p = LoadParticipant(index: 0, user: user, speaks: speaks)
            await p.join(
                host: "127.0.0.1", port: port(name), token: try token(channel: channel, user: user), channel: channel,
                configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                timeout: .seconds(20))
            return p
        }

        func stopAll() {
            for (_, node) in nodes where node.serve.process.isRunning { _ = node.serve.stop(signal: SIGKILL) }
        }

        deinit { stopAll() }
    }

    /// Polls `condition` (every 100 ms, bounded by `seconds`); true once it held.
    static func eventually(_ seconds: Double = 30, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if try condition() { return true }
            usleep(100_000)
        } while Date() < deadline
        return try condition()
    }

    static let channelA = "clusteraaaaaaaaaaaaaaaaaaa"
    static let channelB = "clusterbbbbbbbbbbbbbbbbbbb"
    static let channelC = "clustercccccccccccccccccc1"

    /// Six participants of one channel joining through three different nodes end up in one call on one node, with
    /// media between them; the calls of other channels start where their first join arrived, so they spread.
    @Test func joinsThroughThreeNodesMeetInOneCallWithMedia() async throws {
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        for name in ["n1", "n2", "n3"] { try cluster.start(name) }
        let urls = ["n1", "n2", "n3"].flatMap { ["--join-url", "http://127.0.0.1:\(cluster.port($0))"] }
        // Loss is not the point here (the load tests judge it, one at a time): a generous bound, so that a starved
        // machine does not fail the test, while a split call (two nodes) would still lose every packet of the other half.
        let one = try CLI.run(
            ["loadtest", "--url", "http://127.0.0.1:\(cluster.port("n1"))", "--token-secret-file", cluster.secretFile,
             "--participants", "6", "--speakers", "2", "--duration", "3", "--channel", Self.channelA, "--max-loss", "40",
             "--max-join-failures", "0", "--json"] + urls,
            dataDir: cluster.dir.path, timeout: 120)
        #expect(one.status == 0, "\(one.stdout)\n\(one.stderr)")
        let report = try #require(one.json as? [String: Any])
        let joinedAt = try #require(report["joinedAt"] as? [String: Int])
        // Whichever join claimed the call first, all six end on its node; the four that reached the two other nodes
        // were redirected.
        #expect(joinedAt.count == 1 && joinedAt.values.first == 6, "all six in one call on one node: \(joinedAt)")
        #expect(report["redirects"] as? Int == 4, "the four joins that reached the other two nodes were redirected")
        let media = try #require(report["media"] as? [String: Any])
        #expect((media["receivedPackets"] as? Int ?? 0) > 0)
        #expect((media["worstLoss"] as? Double ?? 1) < 0.4, "\(media)")

        // Calls of other channels start where their first join arrives: one per node, each listed under its node by
        // every node.
        var held: [LoadParticipant] = []
        for (node, channel) in [("n1", Self.channelA), ("n2", Self.channelB), ("n3", Self.channelC)] {
            let p = try await cluster.participant(via: node, channel: channel, user: "u-\(node)")
            #expect(p.error == nil && p.redirects == 0 && p.joinedAt == "127.0.0.1:\(cluster.port(node))", "\(p.error ?? "")")
            held.append(p)
        }
        let want = [Self.channelA: "n1", Self.channelB: "n2", Self.channelC: "n3"]
        var seen: [String: String] = [:]
        #expect(
            try Self.eventually(30) {
                seen = Dictionary(uniqueKeysWithValues: try cluster.calls("n2").compactMap { c in
                    (c["channel"] as? String).map { ($0, c["node"] as? String ?? "?") }
                })
                return seen == want
            }, "n2 lists \(seen), not \(want)")
        for p in held { await p.leave() }
    }

    /// `callsctl channel disable` against the cluster database refuses the next call on every node, at once; enable
    /// lets it start again everywhere.
    @Test func channelDisableReachesEveryNode() throws {
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        for name in ["n1", "n2", "n3"] { try cluster.start(name) }
        for name in ["n1", "n2", "n3"] {
            #expect(try cluster.join(name, channel: Self.channelB)["type"] as? String == "joined", "before: \(name)")
        }
        let disable = try CLI.run(["channel", "disable", Self.channelB, "--cluster-db", cluster.url, "--actor", "ops"], dataDir: cluster.dir.path)
        #expect(disable.status == 0, "\(disable.stderr)")
        #expect(!disable.stdout.contains(cluster.server.password) && !disable.stderr.contains(cluster.server.password))
        for name in ["n1", "n2", "n3"] {
            var last: [String: Any] = [:]
            let refused = try Self.eventually(20) {
                last = try cluster.join(name, channel: Self.channelB)
                return last["code"] as? String == "call_not_allowed"
            }
            #expect(refused, "\(name) still starts calls in a disabled channel: \(last)")
            #expect((last["message"] as? String)?.contains("disabled") == true, "\(last)")
        }
        // The CLI reads the same database through the environment, and the audit log names the actor.
        let history = try CLI.run(["channel", "history", Self.channelB, "--json"], dataDir: cluster.dir.path, env: ["CALLSCTL_CLUSTER_DB": cluster.url])
        let entries = (try? JSONSerialization.jsonObject(with: Data(history.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(entries.first?["actor"] as? String == "ops" && entries.first?["new"] as? String == "disabled", "\(history.stdout)")
        #expect(try CLI.run(["channel", "enable", Self.channelB, "--cluster-db", cluster.url], dataDir: cluster.dir.path).status == 0)
        for name in ["n1", "n2", "n3"] {
            #expect(try Self.eventually(20) { try cluster.join(name, channel: Self.channelB)["type"] as? String == "joined" }, "\(name) after enable")
        }
    }

    /// SIGKILL of the node holding a call: after the heartbeat timeout the channel's next join starts the call on a
    /// live node, and the admin API of every node lists it there.
    @Test func aKilledNodesCallStartsAgainOnALiveNode() async throws {
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        for name in ["n1", "n2", "n3"] { try cluster.start(name) }
        let first = try await cluster.participant(via: "n1", channel: Self.channelA, user: "alice")
        #expect(first.error == nil, "\(first.error ?? "")")
        #expect(first.joinedAt == "127.0.0.1:\(cluster.port("n1"))")
        // Every node lists the call with its node (each after a heartbeat of its own).
        for node in ["n2", "n3"] {
            #expect(
                try Self.eventually(30) {
                    try cluster.calls(node).contains {
                        $0["channel"] as? String == Self.channelA && $0["node"] as? String == "n1" && $0["participantCount"] as? Int == 1
                    }
                }, "\(node) does not list n1's call: \((try? cluster.calls(node)) ?? [])")
        }
        let listed = try CLI.run(
            ["calls", "list", "--url", "http://127.0.0.1:\(cluster.port("n3"))", "--admin-key-file", cluster.keyFile], dataDir: cluster.dir.path)
        #expect(listed.stdout.contains("\(Self.channelA)  on node n1 (http://127.0.0.1:\(cluster.port("n1")))"), "\(listed.stdout)")
        // Ending it is for its own node: another node says which.
        let end = try CLI.run(
            ["calls", "end", Self.channelA, "--url", "http://127.0.0.1:\(cluster.port("n3"))", "--admin-key-file", cluster.keyFile],
            dataDir: cluster.dir.path)
        #expect(end.status == 2 && end.stderr.contains("runs on node n1"), "\(end.stderr)")

        _ = cluster.nodes["n1"]!.serve.stop(signal: SIGKILL)
        var second: LoadParticipant?
        let deadline = Date().addingTimeInterval(Double(Cluster.heartbeatTimeout) + 25)
        while Date() < deadline {
            let p = try await cluster.participant(via: "n2", channel: Self.channelA, user: "bob")
            if p.error == nil {
                second = p
                break
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        let moved = try #require(second, "no join succeeded within the heartbeat timeout plus 25 s")
        let live = ["n2", "n3"].map { "127.0.0.1:\(cluster.port($0))" }
        #expect(live.contains(moved.joinedAt ?? ""), "the call started on \(moved.joinedAt ?? "?")")
        await moved.leave()
        await first.leave()
    }

    /// SIGTERM: the draining node keeps its call (and takes joins to it) until it ends; new calls go elsewhere; it
    /// then leaves the cluster and exits 0.
    @Test func aDrainingNodeKeepsItsCallsAndSendsNewOnesElsewhere() async throws {
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        for name in ["n1", "n2"] { try cluster.start(name) }
        let alice = try await cluster.participant(via: "n1", channel: Self.channelA, user: "alice")
        #expect(alice.error == nil, "\(alice.error ?? "")")
        let n1 = cluster.nodes["n1"]!.serve
        kill(n1.process.processIdentifier, SIGTERM)
        // Draining shows in the registry within a heartbeat; a new call asked of n1 then goes to n2.
        var newCall: [String: Any] = [:]
        #expect(
            try Self.eventually {
                newCall = try cluster.join("n1", channel: Self.channelB)
                return newCall["type"] as? String == "redirect"
            }, "\(newCall)")
        #expect(newCall["node"] as? String == "n2", "\(newCall)")
        #expect(newCall["ws"] as? String == "ws://127.0.0.1:\(cluster.port("n2"))/ws", "\(newCall)")
        // A join for the running call, through n2, is sent to n1, which takes it.
        let bob = try await cluster.participant(via: "n2", channel: Self.channelA, user: "bob")
        #expect(bob.error == nil, "\(bob.error ?? "")")
        #expect(bob.joinedAt == "127.0.0.1:\(cluster.port("n1"))" && bob.redirects == 1)
        #expect(n1.process.isRunning, "n1 exited while its call ran")
        #expect(try cluster.calls("n1").first { $0["channel"] as? String == Self.channelA }?["participantCount"] as? Int == 2)
        await alice.leave()
        await bob.leave()
        let (status, err) = n1.stop(signal: 0)
        #expect(status == 0, "\(err)")
        #expect(err.contains("left the cluster"), "\(err)")
        #expect(try cluster.server.psql(cluster.database, "SELECT count(*) FROM callsctl_nodes WHERE node_id = 'n1'") == "0")
    }

    /// The database unreachable at start: exit 3 and a message naming the URL without its password. A wrong password
    /// says so; secrets that differ from the running cluster's, or a node id in use, are exit 2.
    @Test func startUpProblemsAreClearErrors() throws {
        let dir = TempDir()
        let closed = try freePort(tcpAndUDP: false)
        let unreachable = try CLI.run(
            ["serve", "--api-listen", "127.0.0.1:0", "--rtc-listen", "127.0.0.1:0", "--cluster-db",
             "postgres://callsctl:hunter2-db-password@127.0.0.1:\(closed)/calls?sslmode=disable",
             "--cluster-public-url", "http://127.0.0.1:8045"],
            dataDir: dir.path, timeout: 60)
        #expect(unreachable.status == 3, "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("postgres://callsctl@127.0.0.1:\(closed)/calls?sslmode=disable"), "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("connection refused") || unreachable.stderr.contains("cannot connect"), "\(unreachable.stderr)")
        #expect(!unreachable.stderr.contains("hunter2") && !unreachable.stdout.contains("hunter2"))
        #expect(!unreachable.stdout.contains("api listening"), "nothing was bound")

        let cluster = try Cluster()
        defer { cluster.stopAll() }
        try cluster.start("n1")
        let wrongURL = cluster.url.replacingOccurrences(of: cluster.server.password, with: "not-the-password")
        var args = cluster.arguments("n2", port: 8045)
        args[args.firstIndex(of: cluster.url)!] = wrongURL
        let wrong = try CLI.run(["serve", "--rtc-listen", "127.0.0.1:0"] + args, dataDir: cluster.dir.path + "/n2", timeout: 60)
        #expect(wrong.status == 3 && wrong.stderr.contains("password authentication failed"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("not-the-password"))

        let other = cluster.dir.path + "/other-secret"
        try "b3RoZXItc2VjcmV0LW9mLWFub3RoZXItY2x1c3Rlci0wMTIzNDU2Nzg=\n".write(toFile: other, atomically: true, encoding: .utf8)
        chmod(other, 0o600)
        let secrets = try CLI.run(
            ["serve", "--rtc-listen", "127.0.0.1:0"] + cluster.arguments("n3", port: 8045, secret: other), dataDir: cluster.dir.path + "/n3",
            timeout: 60)
        #expect(secrets.status == 2, "\(secrets.stderr)")
        #expect(secrets.stderr.contains("token secret") && secrets.stderr.contains("differs from the cluster's"), "\(secrets.stderr)")
        #expect(!secrets.stderr.contains("b3RoZXIt") && !secrets.stderr.contains("dGVzdC1zZWNyZXQt"), "secrets are never printed")

        var sameID = cluster.arguments("n1", port: 8045)
        sameID[sameID.firstIndex(of: "http://127.0.0.1:8045")!] = "http://127.0.0.1:8046"
        let taken = try CLI.run(["serve", "--rtc-listen", "127.0.0.1:0"] + sameID, dataDir: cluster.dir.path + "/n1b", timeout: 60)
        #expect(taken.status == 2 && taken.stderr.contains("node id n1 is in use"), "\(taken.stderr)")
    }

    /// A scripted third-party stack (aiortc, scripts/peers/aiortc_calls.py) follows the redirect too: alice starts the
    /// call on n1 with a 440 Hz tone, dave asks n2, is sent to n1 and hears her.
    @Test func aiortcFollowsARedirectAndHearsTheCall() throws {
        if !CallScenarioTests.available {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] != "1", "aiortc is required but missing")
            return
        }
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        for name in ["n1", "n2"] { try cluster.start(name) }
        let alice = try AiortcParticipant(port: cluster.port("n1"), token: try cluster.token(channel: Self.channelA, user: "alice"), hz: 440)
        defer { alice.stop() }
        let aliceID = try #require(alice.waitFor { $0["type"] as? String == "joined" }?["sessionId"] as? String, "\(alice.lines)")
        let dave = try AiortcParticipant(port: cluster.port("n2"), token: try cluster.token(channel: Self.channelA, user: "dave"), hz: 880)
        defer { dave.stop() }
        let redirect = dave.waitFor { $0["type"] as? String == "redirect" }
        #expect(redirect?["node"] as? String == "n1", "\(dave.lines)")
        #expect(dave.waitFor { $0["type"] as? String == "joined" } != nil, "\(dave.lines)")
        let heard = dave.waitFor(seconds: 30) { line in
            guard line["type"] as? String == "status", let hz = (line["hz"] as? [String: Any])?[aliceID] as? Double else { return false }
            return abs(hz - 440) <= 25
        }
        #expect(heard != nil, "dave did not hear alice's 440 Hz: \(dave.lines.suffix(5))")
        #expect(try cluster.calls("n1").first { $0["channel"] as? String == Self.channelA }?["participantCount"] as? Int == 2)
    }

    /// `doctor --role server` on a node: the database answers (CLU001) and this node heartbeats (CLU002); a killed
    /// node's heartbeat goes stale and CLU002 fails with the age; an unreachable database fails CLU001.
    @Test func theDoctorChecksTheDatabaseAndThisNodesHeartbeat() throws {
        let cluster = try Cluster()
        defer { cluster.stopAll() }
        try cluster.start("n1")
        func doctor(_ node: String, db: String? = nil) throws -> CLI.Result {
            try CLI.run(
                ["doctor", "--role", "server", "--url", "http://127.0.0.1:\(cluster.port("n1"))", "--cluster-db", db ?? cluster.url,
                 "--cluster-node-id", node, "--only", "CLU001,CLU002", "--json"],
                dataDir: cluster.dir.path, timeout: 60)
        }
        func status(_ r: CLI.Result, _ id: String) -> String? {
            ((r.json as? [String: Any])?["checks"] as? [[String: Any]])?.first { $0["id"] as? String == id }?["status"] as? String
        }
        let healthy = try doctor("n1")
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(status(healthy, "CLU001") == "pass" && status(healthy, "CLU002") == "pass", "\(healthy.stdout)")
        #expect(!healthy.stdout.contains(cluster.server.password))
        let stranger = try doctor("n9")
        #expect(stranger.status == 2 && status(stranger, "CLU002") == "fail", "\(stranger.stdout)")

        _ = cluster.nodes["n1"]!.serve.stop(signal: SIGKILL)
        var stale = healthy
        #expect(
            try Self.eventually {
                stale = try doctor("n1")
                return status(stale, "CLU002") == "fail"
            }, "\(stale.stdout)")
        #expect(stale.stdout.contains("last heartbeat was"), "\(stale.stdout)")

        let closed = try freePort(tcpAndUDP: false)
        let down = try doctor("n1", db: "postgres://callsctl:hunter2-doc@127.0.0.1:\(closed)/x?sslmode=disable")
        #expect(down.status == 2 && status(down, "CLU001") == "fail" && status(down, "CLU002") == "skip", "\(down.stdout)")
        #expect(!down.stdout.contains("hunter2") && down.stdout.contains("postgres://callsctl@127.0.0.1:\(closed)/x"), "\(down.stdout)")
    }

    /// The database lost while calls run: running calls go on (and take joins), new calls are refused with the reason,
    /// and new calls start again once it is back.
    @Test func aLostDatabaseRefusesNewCallsUntilItReturns() async throws {
        let server = try PostgresServer()
        let cluster = try Cluster(server: server)
        defer { cluster.stopAll() }
        try cluster.start("n1")
        let alice = try await cluster.participant(via: "n1", channel: Self.channelA, user: "alice", speaks: true)
        #expect(alice.error == nil, "\(alice.error ?? "")")
        server.stop()
        var refused: [String: Any] = [:]
        #expect(
            try Self.eventually {
                refused = try cluster.join("n1", channel: Self.channelB)
                return refused["code"] as? String == "cluster_unavailable"
            }, "\(refused)")
        let message = refused["message"] as? String ?? ""
        #expect(message.contains("postgres://callsctl@127.0.0.1:\(server.port)/") && !message.contains(server.password), "\(message)")
        // The running call goes on: it takes a new participant, and media reaches them.
        let bob = try await cluster.participant(via: "n1", channel: Self.channelA, user: "bob")
        #expect(bob.error == nil, "a join to a running call needs no database: \(bob.error ?? "")")
        let bobClient = try #require(bob.client)
        func received() async -> Int { await MediaClient.receiveCounters(of: [bobClient]).first?.perSSRC.values.reduce(0, +) ?? 0 }
        let before = await received()
        for i in 0..<100 {
            alice.client?.sendAudio(payload: [0xF8, 0xFF, 0xFE], timestamp: UInt32(i * 960), marker: i == 0, audioLevel: 20)
            try await Task.sleep(for: .milliseconds(20))
        }
        var after = before
        for _ in 0..<50 where after - before < 10 {
            try await Task.sleep(for: .milliseconds(100))
            after = await received()
        }
        #expect(after - before >= 10, "bob received \(after - before) of alice's 100 packets while the database was down")
        #expect(cluster.nodes["n1"]!.serve.process.isRunning)
        try server.start()
        var back: [String: Any] = [:]
        #expect(
            try Self.eventually(20) {
                back = try cluster.join("n1", channel: Self.channelB)
                return back["type"] as? String == "joined"
            }, "no new call after the database returned: \(back)")
        await alice.leave()
        await bob.leave()
    }
}

/// One `aiortc_calls.py participant`: its JSON lines as they come.
final class AiortcParticipant: @unchecked Sendable {
    // @unchecked: `process` is set up in init and then only read; the lines are JSON objects, read-only once parsed.
    private let process = Process()
    private let received = Locked<[[String: Any]]>([])

    init(port: Int, token: String, hz: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repoRoot.appendingPathComponent("scripts/peers/aiortc_calls.py").path, "participant", "--api", "\(port)",
            "--token", token, "--hz", "\(hz)", "--timeout", "90",
        ]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = Pipe()
        try process.run()
        let handle = out.fileHandleForReading
        Thread.detachNewThread { [weak self] in
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 0x0A) {
                    let line = buffer[buffer.startIndex..<nl]
                    buffer.removeSubrange(buffer.startIndex...nl)
                    if let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] {
                        guard let self else { return }
                        self.received.withLock { $0.append(object) }
                    }
                }
            }
        }
    }

    var lines: [[String: Any]] { received.current }

    /// The first line that satisfies `predicate`, waiting up to `seconds`.
    func waitFor(seconds: Double = 20, _ predicate: ([String: Any]) -> Bool) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let hit = lines.first(where: predicate) { return hit }
            usleep(100_000)
        } while Date() < deadline && process.isRunning
        return lines.first(where: predicate)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
