import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `callsctl config show|validate|import-rtcd` and `serve --config`, run as a user would.
@Suite(.serialized) struct ConfigCLITests {
    static func write(_ dir: TempDir, _ name: String, _ text: String, mode: Int = 0o600) -> String {
        let path = dir.url.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode_t(mode))
        return path
    }

    // MARK: validate

    @Test func validateGoodFileExitsZero() throws {
        let dir = TempDir()
        let file = Self.write(dir, "good.toml", "[api]\nhttp.listen_address = \"127.0.0.1:8045\"\n[rtc]\nice_port_udp = 9443\n")
        let r = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok: \(file)\n")
    }

    @Test func validateReportsEveryErrorWithFileLineAndExits2() throws {
        let dir = TempDir()
        let file = Self.write(
            dir, "bad.toml", "[rtc]\nice_port_udp = 70000\nice_port_upd = 1\n[service]\ndrain_timeout = -1\n")
        let r = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(r.status == 2)
        #expect(
            r.stdout == """
                \(file):2: error: rtc.ice_port_udp: 70000 is not a port number; allowed: a whole number from 1 to 65535
                \(file):3: error: rtc.ice_port_upd: unknown key; did you mean rtc.ice_port_udp?
                \(file):5: error: service.drain_timeout: -1 is out of range; allowed: a whole number, 0 or more
                3 errors, 0 warnings in \(file)

                """)
        #expect(r.stderr == "error: config validate: 3 errors\n")
    }

    @Test func validateWarningsExit0Or1WithStrict() throws {
        let dir = TempDir()
        let secret = Self.write(dir, "token-secret", "x\n", mode: 0o640)
        let file = Self.write(dir, "warn.toml", "[api]\nsecurity.token_secret_file = \"\(secret)\"\n")
        let plain = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(plain.status == 0)
        #expect(plain.stdout.contains("\(file):2: warning: api.security.token_secret_file: \"\(secret)\" is readable by its group (mode 0640)"))
        let strict = try CLI.run(["config", "validate", "--strict", file], dataDir: dir.path)
        #expect(strict.status == 1)
        let json = try CLI.run(["config", "validate", "--strict", "--json", file], dataDir: dir.path)
        #expect(json.status == 1)
        let doc = try #require(json.json as? [String: Any])
        #expect(doc["ok"] as? Bool == false)
        #expect(doc["errors"] as? Int == 0)
        #expect(doc["warnings"] as? Int == 1)
        let d = try #require((doc["diagnostics"] as? [[String: Any]])?.first)
        #expect(d["severity"] as? String == "warning")
        #expect(d["file"] as? String == file)
        #expect(d["line"] as? Int == 2)
        #expect(d["key"] as? String == "api.security.token_secret_file")
        #expect(d["fix"] as? String == "chmod 600 \(secret), unless the group is meant to read it")
    }

    @Test func validateWorldReadableSecretIsAnError() throws {
        let dir = TempDir()
        let secret = Self.write(dir, "turn-secret", "x\n", mode: 0o644)
        let file = Self.write(
            dir, "c.toml", "[rtc]\nice_servers = [\"turn:turn.example.com:3478\"]\nturn.static_auth_secret_file = \"\(secret)\"\n")
        let r = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(r.status == 2)
        #expect(r.stdout.contains("\(file):3: error: rtc.turn.static_auth_secret_file: \"\(secret)\" is readable by everyone (mode 0644); allowed: the path of a readable file that only its owner can read\n  fix: chmod 600 \(secret)\n"))
    }

    @Test func validateResolveChecksHostNames() throws {
        let dir = TempDir()
        let good = Self.write(dir, "good.toml", "[rtc]\nice_host_override = \"localhost\"\n")
        #expect(try CLI.run(["config", "validate", "--resolve", good], dataDir: dir.path).status == 0)
        let bad = Self.write(dir, "bad.toml", "[rtc]\nice_host_override = \"no-such-host.invalid\"\n")
        #expect(try CLI.run(["config", "validate", bad], dataDir: dir.path).status == 0)
        let r = try CLI.run(["config", "validate", "--resolve", bad], dataDir: dir.path, timeout: 30)
        #expect(r.status == 2)
        #expect(r.stdout.contains("\(bad):2: error: rtc.ice_host_override: \"no-such-host.invalid\" does not resolve: "))
    }

    @Test func validateSeveralFilesAndUsage() throws {
        let dir = TempDir()
        let a = Self.write(dir, "a.toml", "[rtc\n")
        let b = Self.write(dir, "b.toml", "[limits]\nmax_participants = 0\n")
        let r = try CLI.run(["config", "validate", a, b, dir.url.appendingPathComponent("missing.toml").path], dataDir: dir.path)
        #expect(r.status == 2)
        #expect(r.stdout.contains("\(a):1: error: TOML syntax: expected ']' to close the table header, found end of line (column 5)"))
        #expect(r.stdout.contains("\(b):2: error: limits.max_participants: 0 is out of range; allowed: a whole number, 1 or more"))
        #expect(r.stdout.contains("missing.toml: error: cannot read the config file: No such file or directory"))
        #expect(r.stdout.contains("3 errors, 0 warnings"))
        // Reported in the order the files were given.
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.firstIndex { $0.hasPrefix(b) }! > lines.firstIndex { $0.hasPrefix(a) }!)
        let reversed = try CLI.run(["config", "validate", b, a], dataDir: dir.path)
        let rlines = reversed.stdout.split(separator: "\n").map(String.init)
        #expect(rlines.firstIndex { $0.hasPrefix(b) }! < rlines.firstIndex { $0.hasPrefix(a) }!)
        let latin1 = dir.url.appendingPathComponent("latin1.toml").path
        FileManager.default.createFile(atPath: latin1, contents: Data([0x61, 0x20, 0x3D, 0x20, 0x22, 0xE9, 0x22, 0x0A]))
        let enc = try CLI.run(["config", "validate", latin1], dataDir: dir.path)
        #expect(enc.status == 2)
        #expect(enc.stdout.contains("\(latin1): error: cannot read the config file: it is not UTF-8 text"))
        let usage = try CLI.run(["config", "validate"], dataDir: dir.path)
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("give at least one config file, or --bundle DIR."))
    }

    // MARK: show

    @Test func showNamesTheSourceOfEachValue() throws {
        let dir = TempDir()
        _ = Self.write(dir, "callsctl.toml", "[api]\nhttp.listen_address = \"127.0.0.1:9045\"\n\n[rtc]\nice_port_udp = 9443\n")
        let r = try CLI.run(["config", "show"], dataDir: dir.path, env: ["CALLSCTL_SERVICE_DRAIN_TIMEOUT": "12"])
        #expect(r.status == 0, "\(r.stderr)")
        let file = dir.url.appendingPathComponent("callsctl.toml").path
        #expect(r.stdout.contains("# config file: \(file) (from the data directory)\n"))
        #expect(r.stdout.contains("[api]\nhttp.listen_address = \"127.0.0.1:9045\"  # \(file):2\n"))
        #expect(r.stdout.contains("ice_port_udp = 9443  # \(file):5\n"))
        #expect(r.stdout.contains("[service]\ndrain_timeout = 12  # environment CALLSCTL_SERVICE_DRAIN_TIMEOUT\n"))
        #expect(!r.stdout.contains("ice_port_tcp"))
        let missing = try CLI.run(["config", "show", "--config", dir.url.appendingPathComponent("nope.toml").path], dataDir: dir.path)
        #expect(missing.status == 2)
        #expect(missing.stdout.contains("nope.toml: error: cannot read the config file: No such file or directory"))
        let all = try CLI.run(["config", "show", "--effective"], dataDir: dir.path)
        #expect(all.stdout.contains("ice_port_tcp = 8443  # default\n"))
        #expect(all.stdout.contains("max_participants = (unset)  # default\n"))
    }

    @Test func showJSONAndExplicitFile() throws {
        let dir = TempDir()
        let file = Self.write(dir, "x.toml", "[limits]\nmax_participants = 50\n")
        let r = try CLI.run(["config", "show", "--effective", "--json"], dataDir: dir.path, env: ["CALLSCTL_CONFIG": file])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(r.json as? [String: Any])
        #expect(doc["file"] as? String == file)
        #expect(doc["fileFrom"] as? String == "CALLSCTL_CONFIG")
        let settings = try #require(doc["settings"] as? [[String: Any]])
        let max = try #require(settings.first { $0["key"] as? String == "limits.max_participants" })
        #expect(max["value"] as? Int == 50)
        #expect(max["env"] as? String == "CALLSCTL_LIMITS_MAX_PARTICIPANTS")
        let source = try #require(max["source"] as? [String: Any])
        #expect(source["kind"] as? String == "file")
        #expect(source["line"] as? Int == 2)
        let api = try #require(settings.first { $0["key"] as? String == "api.http.listen_address" })
        #expect((api["source"] as? [String: Any])?["kind"] as? String == "default")
        let slots = try #require(settings.first { $0["key"] as? String == "limits.audio_slots" })
        #expect(slots["value"] as? Int == 3)
        #expect((slots["source"] as? [String: Any])?["kind"] as? String == "default")
        // Every key of docs/configuration.md once (27 since the [cluster] keys).
        #expect(settings.count == 27)
    }

    /// The cluster's database URL is a secret only in its password: show prints the rest, in text and JSON.
    @Test func showRedactsTheDatabasePassword() throws {
        let dir = TempDir()
        let file = Self.write(dir, "c.toml", "[cluster]\npublic_url = \"https://calls-1.example.com\"\nnode_id = \"calls-1\"\n")
        let env = ["CALLSCTL_CLUSTER_DB": "postgres://callsctl:db-Pa55-secret@db.example.com:5432/calls?sslmode=require"]
        let shown = "postgres://callsctl:<redacted>@db.example.com:5432/calls?sslmode=require"
        let text = try CLI.run(["config", "show", "--config", file], dataDir: dir.path, env: env)
        #expect(text.status == 0, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains(shown), "\(text.stdout)")
        let json = try CLI.run(["config", "show", "--config", file, "--json"], dataDir: dir.path, env: env)
        #expect(json.status == 0, "\(json.stdout)\(json.stderr)")
        let settings = try #require((json.json as? [String: Any])?["settings"] as? [[String: Any]])
        let db = try #require(settings.first { $0["key"] as? String == "cluster.database_url" })
        #expect(db["value"] as? String == shown)
        for r in [text, json] { #expect(!r.stdout.contains("db-Pa55-secret") && !r.stderr.contains("db-Pa55-secret")) }
    }

    @Test func showNeverPrintsSecretsAndExits2OnErrors() throws {
        let dir = TempDir()
        let file = Self.write(
            dir, "c.toml",
            "[rtc]\nturn.static_auth_secret = \"hunter2-secret\"\nice_servers = [{ urls = [\"turn:t.example.com\"], username = \"u\", credential = \"pw-secret\" }]\n")
        for args in [["config", "show", "--config", file], ["config", "show", "--config", file, "--json"], ["config", "validate", file]] {
            let r = try CLI.run(args, dataDir: dir.path)
            #expect(r.status == 2)
            #expect(!r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"))
            #expect(!r.stdout.contains("pw-secret") && !r.stderr.contains("pw-secret"))
        }
    }

    // MARK: import-rtcd

    static let rtcdConfig = """
        [api]
        http.listen_address = ":8045"
        security.enable_admin = true
        security.admin_secret_key = "admin-pass-secret"

        [rtc]
        ice_port_udp = 8443
        ice_port_tcp = 8443
        ice_host_override = "203.0.113.7"
        ice_servers = ["stun:stun.example.com:3478", "turn:turn.example.com:3478?transport=udp"]
        turn.static_auth_secret = "turn-pass-secret"
        turn.credentials_expiration_minutes = 720

        [store]
        data_source = "/tmp/rtcd_db"

        [logger]
        enable_file = true
        console_level = "DEBUG"
        """

    @Test func importWritesConfigAndSecretAndNeverOverwritesWithoutForce() throws {
        let dir = TempDir()
        let rtcd = Self.write(dir, "config.toml", Self.rtcdConfig)
        let out = dir.url.appendingPathComponent("callsctl.toml").path
        let r = try CLI.run(["config", "import-rtcd", rtcd, "--out", out], dataDir: dir.path, env: ["RTCD_RTC_ICEPORTUDP": "9443"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("dropped store.data_source (\(rtcd):15): callsctl keeps its data in the data directory (--data-dir), not an rtcd client store"))
        #expect(!r.stderr.contains("dropped api.security.admin_secret_key"))
        #expect(r.stderr.contains("wrote rtcd's admin secret to \(dir.url.appendingPathComponent("admin-key").path) (mode 0600)"))
        #expect(r.stderr.contains("dropped logger.enable_file (\(rtcd):18): "))
        for text in [r.stdout, r.stderr] { #expect(!text.contains("pass-secret")) }
        let written = try String(contentsOfFile: out, encoding: .utf8)
        #expect(written.contains("ice_port_udp = 9443"))
        #expect(!written.contains("pass-secret"))
        let secretPath = dir.url.appendingPathComponent("turn-secret").path
        #expect(try String(contentsOfFile: secretPath, encoding: .utf8) == "turn-pass-secret\n")
        let mode = try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let adminPath = dir.url.appendingPathComponent("admin-key").path
        #expect(try String(contentsOfFile: adminPath, encoding: .utf8) == "admin-pass-secret\n")
        #expect(try FileManager.default.attributesOfItem(atPath: adminPath)[.posixPermissions] as? Int == 0o600)
        #expect(written.contains("security.admin_key_file = \"\(adminPath)\""))
        // The result validates cleanly.
        let check = try CLI.run(["config", "validate", out], dataDir: dir.path)
        #expect(check.status == 0, "\(check.stdout)")
        // Not replaced without --force.
        try "keep me\n".write(toFile: out, atomically: true, encoding: .utf8)
        let again = try CLI.run(["config", "import-rtcd", rtcd, "--out", out], dataDir: dir.path)
        #expect(again.status == 2)
        #expect(again.stderr.contains("error: \(out) exists; not replacing it\nPass --force to replace it, or choose another --out."))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep me\n")
        let forced = try CLI.run(["config", "import-rtcd", rtcd, "--out", out, "--force"], dataDir: dir.path)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("[rtc]"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    /// --out into a folder that does not exist names that folder (it used to name the temporary file it could not
    /// create), exits 2 and writes nothing.
    @Test func importIntoAMissingFolderNamesTheFolder() throws {
        let dir = TempDir()
        let rtcd = Self.write(dir, "config.toml", Self.rtcdConfig)
        let missing = dir.url.appendingPathComponent("no/such").path
        let r = try CLI.run(["config", "import-rtcd", rtcd, "--out", "\(missing)/callsctl.toml"], dataDir: dir.path)
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("error: --out \(missing)/callsctl.toml: the folder \(missing) does not exist; nothing was written"), "\(r.stderr)")
        #expect(r.stderr.contains("mkdir -p \(missing)"), "\(r.stderr)")
        #expect(!r.stderr.contains(".tmp-"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("no").path))
    }

    @Test func importToStdoutAndJSON() throws {
        let dir = TempDir()
        let rtcd = Self.write(dir, "config.toml", "[rtc]\nice_host_override = \"203.0.113.7\"\nenable_ipv6 = true\n")
        let r = try CLI.run(["config", "import-rtcd", rtcd], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("[rtc]\nice_host_override = \"203.0.113.7\"\n"))
        #expect(r.stderr.contains("dropped rtc.enable_ipv6 (\(rtcd):3): "))
        let j = try CLI.run(["config", "import-rtcd", rtcd, "--json"], dataDir: dir.path)
        #expect(j.status == 0)
        let doc = try #require(j.json as? [String: Any])
        #expect(doc["written"] as? Bool == false)
        let dropped = try #require(doc["dropped"] as? [[String: Any]])
        #expect(dropped.map { $0["rtcd"] as? String } == ["rtc.enable_ipv6"])
        #expect((doc["toml"] as? String)?.contains("ice_host_override") == true)
        // A TURN URL with an inline secret and no --out cannot become a valid config on stdout.
        let turn = Self.write(dir, "turn.toml", "[rtc]\nice_servers = [\"turn:t.example.com\"]\nturn.static_auth_secret = \"s3\"\n")
        let t = try CLI.run(["config", "import-rtcd", turn], dataDir: dir.path)
        #expect(t.status == 2)
        #expect(t.stdout.isEmpty)
        #expect(t.stderr.contains("with --out FILE the TURN secret is written to turn-secret beside it (mode 0600)"))
        #expect(!t.stderr.contains("s3\""))
        let missing = try CLI.run(["config", "import-rtcd", dir.url.appendingPathComponent("nope.toml").path], dataDir: dir.path)
        #expect(missing.status == 3)
    }

    // MARK: serve

    /// A port free on 127.0.0.1 for both TCP and UDP right now.
    static func freePort() throws -> Int {
        for _ in 0..<20 {
            let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(tcp) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                    bind(tcp, p, len) == 0 && getsockname(tcp, p, &len) == 0
                }
            }
            guard bound else { continue }
            let port = UInt16(bigEndian: addr.sin_port)
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(udp) }
            var u = addr
            let udpOK = withUnsafeMutablePointer(to: &u) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if udpOK { return Int(port) }
        }
        throw ServeCLITests.CLIProblem(description: "no free port on 127.0.0.1")
    }

    @Test func serveListensWhereTheConfigSays() throws {
        let dir = TempDir()
        let apiPort = try Self.freePort()
        var rtcPort = try Self.freePort()
        while rtcPort == apiPort { rtcPort = try Self.freePort() }
        let file = Self.write(
            dir, "serve.toml",
            """
            [api]
            http.listen_address = "127.0.0.1:\(apiPort)"
            [rtc]
            ice_address_udp = "127.0.0.1"
            ice_port_udp = \(rtcPort)
            ice_address_tcp = "127.0.0.1"
            ice_port_tcp = \(rtcPort)
            [service]
            drain_timeout = 0
            """)
        let p = CLI.process(["serve", "--config", file], dataDir: dir.path)
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        // Read stdout on another thread so every wait here is bounded.
        let lines = LineCollector(out.fileHandleForReading)
        let deadline = Date().addingTimeInterval(30)
        while !lines.text.contains("data directory:") && p.isRunning && Date() < deadline { usleep(20_000) }
        let text = lines.text
        #expect(text.contains("api listening on 127.0.0.1:\(apiPort)\n"), "\(text)")
        #expect(text.contains("rtc listening on 127.0.0.1:\(rtcPort)/udp, \(rtcPort)/tcp\n"), "\(text)")
        #expect(text.contains("config file: \(file)\n"), "\(text)")
        let (status, body) = try ServeCLITests.get(apiPort, "/version")
        #expect(status == 200, "\(body)")
        // The media TCP port accepts connections on the configured address.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(rtcPort).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        #expect(connected)
        kill(p.processIdentifier, SIGTERM)
        let stopBy = Date().addingTimeInterval(15)
        while p.isRunning && Date() < stopBy { usleep(20_000) }
        #expect(!p.isRunning)
    }

    @Test func serveFlagsAndEnvironmentOverrideTheFileAndWarningsArePrinted() throws {
        let dir = TempDir()
        let key = Self.write(dir, "admin-key", "0123456789abcdef0123\n", mode: 0o640)
        let file = Self.write(
            dir, "c.toml",
            "[api]\nhttp.listen_address = \"127.0.0.1:1\"\nsecurity.admin_key_file = \"\(key)\"\n[rtc]\nice_port_udp = 1\nice_port_tcp = 2\n")
        // The flags win over the file's (unusable) ports; the environment wins over the file's drain timeout.
        let serve = try ServeCLITests.RunningServe(
            dataDir: dir.path, extraArgs: ["--config", file], env: ["CALLSCTL_SERVICE_DRAIN_TIMEOUT": "0"])
        #expect(serve.stdoutLines.contains("admin key file: \(key)"))
        let (status, err) = serve.stop()
        #expect(status == 0)
        #expect(err.contains("warning: \(file):3: api.security.admin_key_file: \"\(key)\" is readable by its group (mode 0640)\n  fix: chmod 600 \(key), unless the group is meant to read it\n"), "\(err)")
    }

    @Test func serveWithAnInvalidConfigExits2WithEveryError() throws {
        let dir = TempDir()
        _ = Self.write(dir, "callsctl.toml", "[rtc]\nice_port_udp = 0\nbogus = 1\n")
        let file = dir.url.appendingPathComponent("callsctl.toml").path
        let r = try CLI.run(["serve", "--api-listen", "127.0.0.1:0", "--rtc-listen", "127.0.0.1:0"], dataDir: dir.path, timeout: 20)
        #expect(r.status == 2)
        #expect(
            r.stderr == """
                error: the config is invalid (2 errors); nothing was started:
                \(file):2: error: rtc.ice_port_udp: 0 is not a port number; allowed: a whole number from 1 to 65535
                \(file):3: error: rtc.bogus: unknown key
                  fix: The keys are listed in docs/configuration.md and by: callsctl config show --effective
                Check it with: callsctl config validate \(file)

                """)
        #expect(!r.stdout.contains("listening"))
        let missing = dir.url.appendingPathComponent("missing.toml").path
        for (args, env) in [(["serve", "--config", missing], [String: String]()), (["serve"], ["CALLSCTL_CONFIG": missing])] {
            let m = try CLI.run(args, dataDir: TempDir().path, env: env, timeout: 20)
            #expect(m.status == 2)
            #expect(m.stderr.contains("\(missing): error: cannot read the config file: No such file or directory\n  fix: Check the path given with --config or CALLSCTL_CONFIG."), "\(m.stderr)")
        }
        let env = try CLI.run(["serve"], dataDir: TempDir().path, env: ["CALLSCTL_RTC_ICE_PORT_UDP": "x"], timeout: 20)
        #expect(env.status == 64)
        #expect(env.stderr.contains("CALLSCTL_RTC_ICE_PORT_UDP \"x\" is not a whole number; allowed: a whole number from 1 to 65535"))
    }
}

/// Collects a pipe's output on a background thread.
final class LineCollector: @unchecked Sendable {
    // @unchecked: `buffer` is only touched under `lock`.
    private let lock = NSLock()
    private var buffer = Data()

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                lock.lock()
                buffer.append(chunk)
                lock.unlock()
            }
        }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: buffer, as: UTF8.self)
    }
}
