import Foundation
import Testing

/// `callsctl doctor` as an admin or CI runs it: against its own self-test server, a closed API port, a disabled
/// channel and a namespace where UDP to the media port is dropped. Every verdict is checked in JSON and in the
/// human output, with the exit code.
@Suite(.serialized) struct DoctorCLITests {
    typealias RunningServe = ServeCLITests.RunningServe

    static func checks(_ r: CLI.Result) throws -> (summary: [String: Any], checks: [String: [String: Any]]) {
        let doc = try #require(r.json as? [String: Any], "not JSON: \(r.stdout) \(r.stderr)")
        #expect(doc["schema"] as? String == "callsctl.doctor/v1")
        let summary = try #require(doc["summary"] as? [String: Any])
        let list = try #require(doc["checks"] as? [[String: Any]])
        var byID: [String: [String: Any]] = [:]
        for c in list { byID[c["id"] as? String ?? "?"] = c }
        return (summary, byID)
    }

    static func status(_ c: [String: Any]?) -> String? { c?["status"] as? String }

    @Test func selfTestPassesEveryCheckWithMediaBothWays() throws {
        let r = try CLI.run(["doctor", "--self-test", "--json"], dataDir: nil, timeout: 90)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let (summary, checks) = try Self.checks(r)
        #expect(summary["exitCode"] as? Int == 0)
        #expect(summary["fail"] as? Int == 0)
        for id in ["API001", "API002", "CLK001", "PT001", "PT002", "J001", "J002", "J003"] {
            #expect(Self.status(checks[id]) == "pass", "\(id): \(checks[id] ?? [:])")
        }
        let udp = try #require(checks["J002"]?["evidence"] as? [String: Any])
        #expect(udp["transport"] as? String == "udp")
        #expect((udp["received"] as? Int ?? 0) >= 45, "\(udp)")
        let tcp = try #require(checks["J003"]?["evidence"] as? [String: Any])
        #expect(tcp["transport"] as? String == "tcp")
        #expect((tcp["received"] as? Int ?? 0) >= 45, "\(tcp)")
        // coturn is installed by the test set-up: the self-test runs it and relays a join over UDP, TCP and TLS.
        for id in ["ST001", "TU001", "TU002", "JT001", "JT002", "JT003"] {
            #expect(Self.status(checks[id]) == "pass", "\(id): \(checks[id] ?? [:])")
        }

        let human = try CLI.run(["doctor", "--self-test"], dataDir: nil, timeout: 90)
        #expect(human.status == 0)
        #expect(human.stdout.contains("Everything checked passed."))
        #expect(human.stdout.contains("J003"))
    }

    @Test func aClosedAPIPortFailsTheAPIChecksAndSkipsWhatNeedsThem() throws {
        let dir = TempDir()
        let secret = "\(dir.path)/token-secret"
        try String(repeating: "ab", count: 32).write(toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o600)
        let port = try closedTCPPort()
        let args = [
            "doctor", "--url", "http://127.0.0.1:\(port)", "--rtc-port", "\(port)", "--token-secret-file", secret,
            "--channel", channelID(7), "--junit", "\(dir.path)/doctor.xml",
        ]
        let r = try CLI.run(args + ["--json"], dataDir: dir.path, timeout: 60)
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        let (summary, checks) = try Self.checks(r)
        #expect(summary["mostLikelyCause"] as? String == "API001")
        #expect(Self.status(checks["API001"]) == "fail")
        #expect((checks["API001"]?["message"] as? String)?.contains("refused") == true, "\(checks["API001"] ?? [:])")
        #expect(((summary["remediation"] as? [String])?.first ?? "").contains("Nothing listens on 127.0.0.1:\(port)"))
        for id in ["API002", "J001", "J002", "J003"] {
            #expect(Self.status(checks[id]) == "skip", "\(id)")
        }
        #expect(checks["API002"]?["message"] as? String == "skipped: API001 (Media server API answers /version) did not pass")
        #expect(checks["J002"]?["message"] as? String == "skipped: API002 was skipped")
        let junit = try String(contentsOfFile: "\(dir.path)/doctor.xml", encoding: .utf8)
        #expect(junit.contains("<testsuite name=\"callsctl doctor\""))
        #expect(junit.contains("API001 Media server API answers /version"))
        #expect(junit.contains("<failure message="))
        #expect(junit.contains("<skipped message=\"skipped: API002 was skipped\"/>"))

        let human = try CLI.run(args, dataDir: dir.path, timeout: 60)
        #expect(human.status == 2)
        #expect(human.stdout.contains("Most likely cause: API001 Media server API answers /version"))
        #expect(human.stdout.contains("fix: Nothing listens on 127.0.0.1:\(port)"))
    }

    @Test func aDisabledChannelIsNamedWithTheCommandThatFixesIt() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let channel = channelID(42)
        #expect(try CLI.run(["channel", "disable", channel], dataDir: dir.path).status == 0)
        let r = try CLI.run(
            [
                "doctor", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file", "\(dir.path)/token-secret",
                "--channel", channel, "--only", "API001,API002,J001,J002", "--json",
            ], dataDir: dir.path, timeout: 60)
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        let (summary, checks) = try Self.checks(r)
        #expect(summary["mostLikelyCause"] as? String == "J001")
        #expect(Self.status(checks["J001"]) == "fail")
        let fix = (checks["J001"]?["remediation"] as? [String])?.first ?? ""
        #expect(fix.hasPrefix("callsctl channel enable \(channel)"), "\(fix)")
        // An echo test is not a call: the channel policy does not stop it.
        #expect(Self.status(checks["J002"]) == "pass", "\(checks["J002"] ?? [:])")
        #expect(checks.keys.sorted() == ["API001", "API002", "J001", "J002"])
    }

    /// UDP to the media port is dropped inside a network namespace of the test's own: the UDP media path fails,
    /// ICE-TCP carries the call, and the doctor warns, naming the UDP port to open.
    @Test(.enabled(if: getuid() == 0, "needs root for a network namespace"))
    func udpBlockedFallsBackToTCPWithAWarning() throws {
        let dir = TempDir()
        let script = """
            set -e
            ip link set lo up
            nft add table inet doctorlab
            nft add chain inet doctorlab in '{ type filter hook input priority 0; }'
            nft add rule inet doctorlab in udp dport 8443 drop
            "$CALLSCTL" serve --api-listen 127.0.0.1:8045 --rtc-listen 127.0.0.1:8443 --data-dir "$DIR" >"$DIR/serve.log" 2>&1 &
            for i in $(seq 200); do [ -s "$DIR/token-secret" ] && (exec 3<>/dev/tcp/127.0.0.1/8045) 2>/dev/null && break; sleep 0.1; done
            set +e
            "$CALLSCTL" doctor --url http://127.0.0.1:8045 --token-secret-file "$DIR/token-secret" --timeout 25 --json >"$DIR/doctor.json"
            echo $? >"$DIR/rc"
            "$CALLSCTL" doctor --url http://127.0.0.1:8045 --token-secret-file "$DIR/token-secret" --timeout 25 --strict --only J002,J003 >"$DIR/strict.txt"
            echo $? >"$DIR/strict-rc"
            kill %1
            wait
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["-n", "bash", "-c", script]
        p.environment = ProcessInfo.processInfo.environment.merging(
            ["CALLSCTL": CLI.binary.path, "DIR": dir.path, "NO_COLOR": "1"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let rc = try String(contentsOfFile: "\(dir.path)/rc", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try String(contentsOfFile: "\(dir.path)/doctor.json", encoding: .utf8)
        #expect(rc == "0", "\(out)")
        let (summary, checks) = try Self.checks(CLI.Result(status: 0, stdout: out, stderr: ""))
        #expect(Self.status(checks["J002"]) == "warn", "\(checks["J002"] ?? [:])")
        #expect(Self.status(checks["J003"]) == "pass", "\(checks["J003"] ?? [:])")
        #expect(((checks["J002"]?["remediation"] as? [String])?.first ?? "").contains("Open UDP 8443"))
        #expect(summary["mostLikelyCause"] as? String == "J002")
        let strictRC = try String(contentsOfFile: "\(dir.path)/strict-rc", encoding: .utf8)
        #expect(strictRC.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let strict = try String(contentsOfFile: "\(dir.path)/strict.txt", encoding: .utf8)
        #expect(strict.contains("Most likely cause: J002"))
        #expect(strict.contains("fix: Open UDP 8443"))
    }

    @Test(arguments: [
        (["doctor"], "nothing to check"),
        (["doctor", "--url", "ftp://calls.example.com"], "--url: \"ftp://calls.example.com\" is not an http(s)://"),
        (["doctor", "--url", "http://127.0.0.1:99999"], "is not a port"),
        (["doctor", "--url", "http://127.0.0.1:8045", "--channel", "nope"], "--channel"),
        (["doctor", "--url", "http://127.0.0.1:8045", "--role", "both"], "--role must be client or server"),
        (["doctor", "--url", "http://127.0.0.1:8045", "--only", "XX9"], "no check XX9; the checks are"),
        (["doctor", "--self-test", "--url", "http://127.0.0.1:8045"], "--self-test checks its own server"),
        (["doctor", "--url", "http://127.0.0.1:8045", "--stun-url", "stun:"], "--stun-url"),
    ])
    func badInputIsAUsageErrorWithTheFlagNamed(args: [String], message: String) throws {
        let r = try CLI.run(args, dataDir: nil, timeout: 30)
        #expect(r.status == 64, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func anUnresolvableHostIsAFailureWithinTheTimeout() throws {
        let start = Date()
        let r = try CLI.run(
            ["doctor", "--url", "http://no-such-host.invalid:8045", "--timeout", "10", "--json"], dataDir: nil, timeout: 30)
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        let (_, checks) = try Self.checks(r)
        #expect(Self.status(checks["API001"]) == "fail")
        #expect(((checks["API001"]?["remediation"] as? [String])?.first ?? "").contains("does not resolve"))
    }
}

/// `doctor --config`: a callsctl.toml or a bundle folder is the target; flags win over the file.
@Suite struct DoctorConfigTests {
    typealias RunningServe = ServeCLITests.RunningServe

    @Test func aGeneratedBundleIsTheTargetAndItsEditsAreCaught() throws {
        let dir = TempDir()
        let bundle = "\(dir.path)/deploy"
        let gen = try CLI.run(
            [
                "config", "generate", "bundle", "--domain", "calls.example.com", "--public-ip", "203.0.113.7", "--out", bundle,
                "--mattermost-url", "https://chat.example.com", "--chat-server-cidr", "10.0.0.5/32",
            ], dataDir: dir.path)
        try #require(gen.status == 0, "\(gen.stderr)")
        var r = try CLI.run(["doctor", "--config", bundle, "--only", "CFG001", "--json"], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let doc = try #require(r.json as? [String: Any])
        let target = try #require(doc["target"] as? [String: Any])
        #expect(target["mediaHost"] as? String == "203.0.113.7")
        #expect(target["url"] as? String == "http://203.0.113.7:8045/")
        #expect(target["turnURLs"] as? [String] == [
            "turn:calls.example.com:3478?transport=udp", "turn:calls.example.com:3478?transport=tcp",
            "turns:calls.example.com:5349?transport=tcp",
        ])
        var (_, checks) = try DoctorCLITests.checks(r)
        #expect(checks["CFG001"]?["status"] as? String == "pass", "\(checks["CFG001"] ?? [:])")

        // An edit that makes the bundle disagree with itself: named with file and line.
        let toml = "\(bundle)/callsctl/callsctl.toml"
        let text = try String(contentsOfFile: toml, encoding: .utf8)
        try text.replacingOccurrences(of: "ice_host_override = \"203.0.113.7\"", with: "ice_host_override = \"203.0.113.8\"")
            .write(toFile: toml, atomically: true, encoding: .utf8)
        r = try CLI.run(["doctor", "--config", bundle, "--only", "CFG001", "--json"], dataDir: dir.path)
        #expect(r.status == 2)
        (_, checks) = try DoctorCLITests.checks(r)
        let message = checks["CFG001"]?["message"] as? String ?? ""
        #expect(message.contains("callsctl/callsctl.toml:"), "\(message)")
        #expect(message.contains("203.0.113.8"), "\(message)")
    }

    @Test func aConfigPointingAtARunningServeDrivesTheJoin() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let toml = "\(dir.path)/callsctl.toml"
        try """
            [api]
            http.listen_address = "127.0.0.1:\(serve.apiPort)"
            security.token_secret_file = "\(dir.path)/token-secret"
            """.write(toFile: toml, atomically: true, encoding: .utf8)
        let r = try CLI.run(["doctor", "--config", toml, "--only", "CFG001,API001,API002,J002", "--json"], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let (_, checks) = try DoctorCLITests.checks(r)
        for id in ["CFG001", "API001", "API002", "J002"] {
            #expect(checks[id]?["status"] as? String == "pass", "\(id): \(checks[id] ?? [:])")
        }
    }

    @Test func theAdminKeyMintsTheJoinToken() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let args = ["doctor", "--url", "http://127.0.0.1:\(serve.apiPort)", "--only", "API001,API002,J002", "--json"]
        var r = try CLI.run(args + ["--admin-key-file", "\(dir.path)/admin-key"], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        var (_, checks) = try DoctorCLITests.checks(r)
        #expect(checks["J002"]?["status"] as? String == "pass", "\(checks["J002"] ?? [:])")
        // A wrong key mints nothing: the join is skipped, naming the flags.
        let wrong = "\(dir.path)/wrong-key"
        try "not-the-key".write(toFile: wrong, atomically: true, encoding: .utf8)
        chmod(wrong, 0o600)
        r = try CLI.run(args + ["--admin-key-file", wrong], dataDir: dir.path)
        (_, checks) = try DoctorCLITests.checks(r)
        #expect(checks["J002"]?["status"] as? String == "skip")
        #expect((checks["J002"]?["message"] as? String)?.contains("--admin-key-file") == true)
    }

    @Test func aFolderThatIsNotABundleAndABrokenFileAreToldApart() throws {
        let dir = TempDir()
        let r = try CLI.run(["doctor", "--config", dir.path], dataDir: dir.path)
        #expect(r.status == 64)
        #expect(r.stderr.contains("not a bundle from `callsctl config generate bundle`"), "\(r.stderr)")
        // A cluster bundle (one callsctl.toml per node) is named as such, with the file to give.
        let cluster = TempDir()
        for node in ["calls-1", "calls-2"] {
            try FileManager.default.createDirectory(atPath: "\(cluster.path)/callsctl/\(node)", withIntermediateDirectories: true)
            try "[cluster]\nnode_id = \"\(node)\"\n".write(toFile: "\(cluster.path)/callsctl/\(node)/callsctl.toml", atomically: true, encoding: .utf8)
        }
        let clustered = try CLI.run(["doctor", "--config", cluster.path], dataDir: dir.path)
        #expect(clustered.status == 64)
        #expect(clustered.stderr.contains("a cluster bundle, with one callsctl.toml per node (calls-1, calls-2)"), "\(clustered.stderr)")
        #expect(clustered.stderr.contains("--config \(cluster.path)/callsctl/calls-1/callsctl.toml"), "\(clustered.stderr)")
        let missing = try CLI.run(["doctor", "--config", "\(dir.path)/nope.toml"], dataDir: dir.path)
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("no such file or folder"))
        let bad = "\(dir.path)/bad.toml"
        try "[rtc]\nice_port_udp = 99999\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let broken = try CLI.run(["doctor", "--config", bad, "--only", "CFG001"], dataDir: dir.path)
        #expect(broken.status == 2)
        #expect(broken.stdout.contains("bad.toml:2"), "\(broken.stdout)")
        #expect(broken.stdout.contains("Check it with: callsctl config validate \(bad)"))
    }
}
