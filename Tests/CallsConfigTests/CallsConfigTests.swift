import Foundation
import Testing

@testable import CallsConfig

/// A temporary folder removed at deinit.
final class TempFolder {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "callsconfig-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String, _ text: String, mode: Int = 0o600) -> String {
        let p = (path as NSString).appendingPathComponent(name)
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        chmod(p, mode_t(mode))
        return p
    }
}

private func resolve(_ text: String, env: [String: String] = [:], overrides: [ConfigOverride] = []) -> ConfigResolution {
    CallsConfig.resolve(fileText: text, filePath: "c.toml", environment: env, overrides: overrides)
}

/// Every finding of a file: reading and value rules.
private func findings(_ text: String, env: [String: String] = [:], resolve dns: Bool = false) -> [String] {
    let r = resolve(text, env: env)
    return (r.diagnostics + r.config.validate(resolve: dns)).map(\.description)
}

@Suite struct CallsConfigModelTests {
    @Test func defaults() {
        let c = CallsConfig()
        #expect(c.apiListenAddress == "0.0.0.0:8045")
        #expect(c.rtcUDPListenAddress == "0.0.0.0:8443")
        #expect(c.rtcTCPListenAddress == "0.0.0.0:8443")
        #expect(c.drainTimeout == 30)
        #expect(c.turnTTLSeconds == 86400)
        #expect(c.maxParticipants == nil)
        #expect(c.adminKeyFile == nil)
        #expect(c.logLevel == "info")
        #expect(c.validate().isEmpty)
        #expect(ConfigKey.all.allSatisfy { c.source(of: $0.name) == .default })
    }

    @Test func fileValuesAndTheirLines() {
        let r = resolve(
            """
            [api]
            http.listen_address = "127.0.0.1:9045"

            [rtc]
            ice_address_udp = "127.0.0.1"
            ice_port_udp = 9443
            ice_servers = ["stun:stun.example.com:3478", { urls = ["turn:turn.example.com:3478?transport=udp"] }]
            turn.credentials_expiration_minutes = 60

            [limits]
            max_participants = 50

            [service]
            drain_timeout = 5

            [logger]
            console_level = "DEBUG"
            """)
        #expect(r.diagnostics.isEmpty)
        let c = r.config
        #expect(c.apiListenAddress == "127.0.0.1:9045")
        #expect(c.source(of: "api.http.listen_address") == .file(path: "c.toml", line: 2))
        #expect(c.rtcUDPListenAddress == "127.0.0.1:9443")
        #expect(c.rtcTCPListenAddress == "0.0.0.0:8443")
        #expect(c.source(of: "rtc.ice_port_udp") == .file(path: "c.toml", line: 6))
        #expect(c.stunURLs == ["stun:stun.example.com:3478"])
        #expect(c.turnURLs == ["turn:turn.example.com:3478?transport=udp"])
        #expect(c.turnTTLSeconds == 3600)
        #expect(c.maxParticipants == 50)
        #expect(c.drainTimeout == 5)
        #expect(c.logLevel == "debug")
        #expect(c.source(of: "rtc.ice_host_override") == .default)
    }

    @Test func precedenceDefaultsFileEnvironmentFlags() {
        let text = "[service]\ndrain_timeout = 5\n[api]\nhttp.listen_address = \"127.0.0.1:1000\"\n[rtc]\nice_port_udp = 2000\n"
        let fileOnly = resolve(text).config
        #expect(fileOnly.drainTimeout == 5)

        let env = ["CALLSCTL_SERVICE_DRAIN_TIMEOUT": "7", "CALLSCTL_API_LISTEN": "127.0.0.1:1001"]
        let withEnv = resolve(text, env: env).config
        #expect(withEnv.drainTimeout == 7)
        #expect(withEnv.source(of: "service.drain_timeout") == .environment("CALLSCTL_SERVICE_DRAIN_TIMEOUT"))
        #expect(withEnv.apiListenAddress == "127.0.0.1:1001")
        #expect(withEnv.source(of: "api.http.listen_address") == .environment("CALLSCTL_API_LISTEN"))
        #expect(withEnv.source(of: "rtc.ice_port_udp") == .file(path: "c.toml", line: 6))

        let flags = [ConfigOverride(key: "service.drain_timeout", value: .integer(9), source: .flag("--drain-timeout"))]
        let withFlags = resolve(text, env: env, overrides: flags).config
        #expect(withFlags.drainTimeout == 9)
        #expect(withFlags.source(of: "service.drain_timeout") == .flag("--drain-timeout"))
    }

    @Test func canonicalEnvironmentNameWinsOverAlias() {
        let c = resolve("", env: ["CALLSCTL_DRAIN_TIMEOUT": "1", "CALLSCTL_SERVICE_DRAIN_TIMEOUT": "2"]).config
        #expect(c.drainTimeout == 2)
        #expect(c.source(of: "service.drain_timeout") == .environment("CALLSCTL_SERVICE_DRAIN_TIMEOUT"))
    }

    @Test func environmentNames() {
        #expect(ConfigKey.named("rtc.ice_port_udp")?.environmentName == "CALLSCTL_RTC_ICE_PORT_UDP")
        #expect(ConfigKey.named("api.http.listen_address")?.environmentName == "CALLSCTL_API_HTTP_LISTEN_ADDRESS")
        #expect(
            ConfigKey.named("rtc.turn.static_auth_secret_file")?.environmentName == "CALLSCTL_RTC_TURN_STATIC_AUTH_SECRET_FILE")
    }

    @Test func legacyRTCListenSetsAllFourKeysAndTTLInSeconds() {
        let c = resolve("", env: ["CALLSCTL_RTC_LISTEN": "127.0.0.1:7000", "CALLSCTL_TURN_TTL": "90"]).config
        #expect(c.rtcUDPListenAddress == "127.0.0.1:7000")
        #expect(c.rtcTCPListenAddress == "127.0.0.1:7000")
        #expect(c.source(of: "rtc.ice_port_tcp") == .environment("CALLSCTL_RTC_LISTEN"))
        #expect(c.turnTTLSeconds == 90)
        #expect(c.displayValue(of: "rtc.turn.credentials_expiration_minutes") == "1 (90 seconds)")
    }

    @Test func stunAndTurnFlagsReplaceOnlyTheirPart() {
        let text = "[rtc]\nice_servers = [\"stun:a.example.com\", \"turn:b.example.com\"]\n"
        let o = ConfigOverride(key: "rtc.ice_servers", value: .list(["turn:c.example.com"]), source: .flag("--turn-url"), part: .turn)
        let c = resolve(text, overrides: [o]).config
        #expect(c.iceServers == ["stun:a.example.com", "turn:c.example.com"])
        let env = resolve(text, env: ["CALLSCTL_STUN_URLS": "stun:d.example.com,stun:e.example.com"]).config
        #expect(env.iceServers == ["stun:d.example.com", "stun:e.example.com", "turn:b.example.com"])
        let json = resolve("", env: ["CALLSCTL_RTC_ICE_SERVERS": #"["stun:f.example.com"]"#]).config
        #expect(json.iceServers == ["stun:f.example.com"])
    }

    @Test func aGoodFileHasNoFindings() {
        let folder = TempFolder()
        let secret = folder.file("turn-secret", "s3cret\n", mode: 0o600)
        let text = """
            [api]
            http.listen_address = "127.0.0.1:8045"
            [rtc]
            ice_host_override = "203.0.113.7"
            stun_servers = ["stun.example.com:3478", "stun:stun2.example.com"]
            ice_servers = ["stun:stun.example.com:3478", "turns:turn.example.com:5349"]
            turn.static_auth_secret_file = "\(secret)"
            """
        #expect(findings(text) == [])
    }
}

@Suite struct CallsConfigValidationTests {
    @Test(arguments: [
        // Reading: syntax, unknown keys, rtcd-only keys, types.
        ("[api\n", "c.toml:1: error: TOML syntax: expected ']' to close the table header, found end of line (column 5)\n  fix: Fix the syntax; see https://toml.io/en/v1.0.0."),
        ("[rtc]\nice_port_upd = 1\n", "c.toml:2: error: rtc.ice_port_upd: unknown key; did you mean rtc.ice_port_udp?"),
        ("[rtc]\nport = 1\n", "c.toml:2: error: rtc.port: unknown key\n  fix: The keys are listed in docs/configuration.md and by: callsctl config show --effective"),
        ("[store]\ndata_source = \"/tmp/x\"\n", "c.toml:2: error: store.data_source: is an rtcd setting callsctl does not use: callsctl keeps its data in the data directory (--data-dir), not an rtcd client store\n  fix: Remove it, or convert the whole file with: callsctl config import-rtcd FILE"),
        ("[rtc]\nice_port_udp = \"8443\"\n", "c.toml:2: error: rtc.ice_port_udp: \"8443\" is a string; allowed: a whole number from 1 to 65535"),
        ("[rtc]\nno_udp_candidates = 1\n", "c.toml:2: error: rtc.no_udp_candidates: 1 is an integer; allowed: true or false"),
        ("[rtc]\nice_servers = [{ urls = [\"turn:t.example.com\"], username = \"u\", credential = \"p\" }]\n", "c.toml:2: error: rtc.ice_servers: the list has a fixed username/credential; allowed: a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]\n  fix: callsctl makes TURN credentials from rtc.turn.static_auth_secret_file; list the URLs only"),
        // Values.
        ("[rtc]\nice_port_udp = 0\n", "c.toml:2: error: rtc.ice_port_udp: 0 is not a port number; allowed: a whole number from 1 to 65535"),
        ("[rtc]\nice_port_tcp = 70000\n", "c.toml:2: error: rtc.ice_port_tcp: 70000 is not a port number; allowed: a whole number from 1 to 65535"),
        ("[api]\nhttp.listen_address = \"localhost:8045\"\n", "c.toml:2: error: api.http.listen_address: \"localhost:8045\" is not a valid listen address; allowed: HOST:PORT with an IP address and a port from 1 to 65535, like \"0.0.0.0:8045\" or \"[::]:8045\""),
        ("[api]\nhttp.listen_address = \"0.0.0.0:0\"\n", "c.toml:2: error: api.http.listen_address: \"0.0.0.0:0\" is not a valid listen address; allowed: HOST:PORT with an IP address and a port from 1 to 65535, like \"0.0.0.0:8045\" or \"[::]:8045\""),
        ("[rtc]\nice_address_udp = \"eth0\"\n", "c.toml:2: error: rtc.ice_address_udp: \"eth0\" is not an IP address; allowed: an IP address of this machine, or \"\" for all interfaces\n  fix: Listen addresses take IP literals; host names belong in rtc.ice_host_override."),
        ("[rtc]\nice_port_tcp = 8045\n", "c.toml:2: error: rtc.ice_port_tcp: 8045 is also the TCP port of api.http.listen_address (\"0.0.0.0:8045\", default); allowed: a TCP port the API does not use on the same address\n  fix: Use 8443 for media and 8045 for the API, as rtcd does."),
        ("[api]\nhttp.listen_address = \"127.0.0.1:8443\"\n", "c.toml:2: error: api.http.listen_address: \"127.0.0.1:8443\" uses the media TCP port rtc.ice_port_tcp (8443, default); allowed: a TCP port the media listener does not use on the same address\n  fix: Use 8443 for media and 8045 for the API, as rtcd does."),
        ("[rtc]\nice_address_tcp = \"127.0.0.2\"\nice_port_tcp = 8045\n[api]\nhttp.listen_address = \"127.0.0.1:8045\"\n", ""),
        ("[rtc]\nice_host_override = \"bad host!\"\n", "c.toml:2: error: rtc.ice_host_override: \"bad host!\" is not an IP address or host name; allowed: an IP address or a host name"),
        ("[rtc]\nice_host_override = \"\"\n", "c.toml:2: error: rtc.ice_host_override: \"\" is empty; allowed: an IP address or a host name"),
        ("[rtc]\nstun_servers = [\"stun.example.com:99999\"]\n", "c.toml:2: error: rtc.stun_servers: \"stun.example.com:99999\" has the port \"99999\", which is not a number from 1 to 65535; allowed: a list of \"host[:port]\" strings, like [\"stun.example.com:3478\"]"),
        ("[rtc]\nice_servers = [\"http://x.example.com\"]\n", "c.toml:2: error: rtc.ice_servers: \"http://x.example.com\" does not start with stun:, stuns:, turn: or turns:; has // after the scheme; allowed: a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]\n  fix: For example stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349."),
        ("[rtc]\nice_servers = [\"stun:s.example.com?x=1\"]\n", "c.toml:2: error: rtc.ice_servers: \"stun:s.example.com?x=1\" has a ?query, which STUN URLs do not take; allowed: a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]\n  fix: For example stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349."),
        // Every fault of a URL in one finding, not only the first.
        ("[rtc]\nice_servers = [\"stun:bad host!:99999?x=1\"]\n", "c.toml:2: error: rtc.ice_servers: \"stun:bad host!:99999?x=1\" has a ?query, which STUN URLs do not take; has the port \"99999\", which is not a number from 1 to 65535; has \"bad host!\", which is not a host name or IP address; allowed: a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]\n  fix: For example stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349."),
        ("[rtc]\nice_servers = [\"turn:t.example.com\"]\n", "c.toml:2: error: rtc.ice_servers: has TURN URLs but rtc.turn.static_auth_secret_file is not set\n  fix: Set rtc.turn.static_auth_secret_file to the file with the TURN server's shared secret."),
        ("[rtc]\nturn.credentials_expiration_minutes = 10080\n", "c.toml:2: error: rtc.turn.credentials_expiration_minutes: 10080 is out of range; allowed: a whole number from 1 to 10079"),
        ("[limits]\nmax_participants = 0\n", "c.toml:2: error: limits.max_participants: 0 is out of range; allowed: a whole number, 1 or more"),
        ("[service]\ndrain_timeout = -1\n", "c.toml:2: error: service.drain_timeout: -1 is out of range; allowed: a whole number, 0 or more"),
        ("[logger]\nconsole_level = \"loud\"\n", "c.toml:2: error: logger.console_level: \"loud\" is not a known value; allowed: \"debug\", \"info\", \"warn\", \"error\""),
        ("[api]\nsecurity.admin_key_file = \"/no/such/admin-key\"\n", "c.toml:2: error: api.security.admin_key_file: \"/no/such/admin-key\" cannot be read: No such file or directory; allowed: the path of a readable file that only its owner can read"),
    ])
    func eachErrorHasItsExactMessage(_ text: String, _ expected: String) {
        #expect(findings(text) == (expected.isEmpty ? [] : [expected]))
    }

    @Test func everyErrorAtOnce() {
        let all = findings("[rtc]\nice_port_udp = 0\nice_port_tcp = 0\n[service]\ndrain_timeout = -5\n[nope]\nx = 1\n")
        #expect(all.count == 4)
        #expect(all.allSatisfy { $0.contains("error:") })
    }

    @Test func secretFilePermissions() throws {
        let folder = TempFolder()
        let world = folder.file("world", "k\n", mode: 0o644)
        let group = folder.file("group", "k\n", mode: 0o640)
        let dir = folder.path
        #expect(findings("[rtc]\nice_servers = [\"turn:t.example.com\"]\nturn.static_auth_secret_file = \"\(world)\"\n") == [
            "c.toml:3: error: rtc.turn.static_auth_secret_file: \"\(world)\" is readable by everyone (mode 0644); allowed: the path of a readable file that only its owner can read\n  fix: chmod 600 \(world)"
        ])
        let groupFindings = resolve("[api]\nsecurity.token_secret_file = \"\(group)\"\n").config.validate()
        #expect(groupFindings.map(\.severity) == [.warning])
        #expect(groupFindings.first?.description == "c.toml:2: warning: api.security.token_secret_file: \"\(group)\" is readable by its group (mode 0640)\n  fix: chmod 600 \(group), unless the group is meant to read it")
        #expect(findings("[api]\nsecurity.admin_key_file = \"\(dir)\"\n") == [
            "c.toml:2: error: api.security.admin_key_file: \"\(dir)\" cannot be read: it is a directory; allowed: the path of a readable file that only its owner can read"
        ])
        if getuid() != 0 {
            let unreadable = folder.file("unreadable", "k\n", mode: 0o000)
            #expect(findings("[api]\nsecurity.admin_key_file = \"\(unreadable)\"\n") == [
                "c.toml:2: error: api.security.admin_key_file: \"\(unreadable)\" cannot be read: Permission denied; allowed: the path of a readable file that only its owner can read"
            ])
        }
    }

    @Test func turnURLTakesOnlyTransportUDPOrTCP() {
        let folder = TempFolder()
        let secret = folder.file("s", "k\n")
        #expect(findings("[rtc]\nice_servers = [\"turn:t.example.com?transport=sctp\"]\nturn.static_auth_secret_file = \"\(secret)\"\n") == [
            "c.toml:2: error: rtc.ice_servers: \"turn:t.example.com?transport=sctp\" has ?transport=sctp; the only query a TURN URL takes is ?transport=udp or ?transport=tcp; allowed: a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]\n  fix: For example stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349."
        ])
    }

    @Test func turnSecretWithoutTurnURLIsAWarning() {
        let folder = TempFolder()
        let secret = folder.file("s", "k\n")
        let r = resolve("[rtc]\nturn.static_auth_secret_file = \"\(secret)\"\n").config.validate()
        #expect(r.map(\.description) == [
            "c.toml:2: warning: rtc.turn.static_auth_secret_file: is set but rtc.ice_servers has no TURN URL; clients get no TURN server\n  fix: Add a turn: or turns: URL to rtc.ice_servers."
        ])
    }

    @Test func resolveChecksHostNames() {
        let text = "[rtc]\nice_host_override = \"localhost\"\n"
        #expect(findings(text, resolve: true) == [])
        let bad = findings("[rtc]\nice_host_override = \"no-such-host.invalid\"\n", resolve: true)
        #expect(bad.count == 1)
        #expect(bad.first?.hasPrefix("c.toml:2: error: rtc.ice_host_override: \"no-such-host.invalid\" does not resolve: ") == true)
        // Without --resolve the name is only checked for its shape.
        #expect(findings("[rtc]\nice_host_override = \"no-such-host.invalid\"\n") == [])
    }

    @Test func environmentFindingsNameTheVariable() {
        let r = resolve("", env: ["CALLSCTL_RTC_ICE_PORT_UDP": "x", "CALLSCTL_RTC_LISTEN": "nonsense"])
        #expect(r.diagnostics.map(\.description).sorted() == [
            "error: CALLSCTL_RTC_ICE_PORT_UDP: \"x\" is not a whole number; allowed: a whole number from 1 to 65535",
            "error: CALLSCTL_RTC_LISTEN: \"nonsense\" is not HOST:PORT; allowed: HOST:PORT with an IP address and a port from 1 to 65535, like \"0.0.0.0:8045\" or \"[::]:8045\"",
        ])
        let v = resolve("", env: ["CALLSCTL_SERVICE_DRAIN_TIMEOUT": "-3"]).config.validate()
        #expect(v.map(\.description) == [
            "error: service.drain_timeout: -3 is out of range; allowed: a whole number, 0 or more (set by CALLSCTL_SERVICE_DRAIN_TIMEOUT)"
        ])
    }
}

@Suite struct RTCDImportTests {
    static let sample = """
        [api]
        http.listen_address = ":8045"
        security.allow_self_registration = false
        security.enable_admin = true
        security.admin_secret_key = "top-secret-admin"
        security.session_cache.expiration_minutes = 1440

        [rtc]
        ice_address_udp = ""
        ice_port_udp = 8443
        ice_address_tcp = "10.0.0.5,10.0.0.6"
        ice_port_tcp = 8443
        ice_host_override = "calls.example.com"
        ice_servers = ["stun:stun.global.calls.mattermost.com:3478", { urls = ["turn:turn.example.com:3478"], username = "u", credential = "c" }]
        turn.static_auth_secret = "top-secret-turn"
        turn.credentials_expiration_minutes = 720

        [store]
        data_source = "/tmp/rtcd_db"

        [logger]
        enable_console = true
        console_json = false
        console_level = "INFO"
        enable_file = true
        file_location = "rtcd.log"
        """

    @Test func convertsAndSaysWhatItDropped() throws {
        let r = try RTCDImport(text: Self.sample, path: "config.toml", environment: ["RTCD_RTC_ICEPORTUDP": "9443", "HOME": "/x"])
        #expect(!r.toml.contains("top-secret"))
        let doc = try TOMLDocument(parsing: r.toml, file: "out.toml")
        #expect(doc["api.http.listen_address"]?.value == .string("0.0.0.0:8045"))
        #expect(doc["rtc.ice_port_udp"]?.value == .integer(9443))
        #expect(doc["rtc.ice_address_tcp"]?.value == .string("10.0.0.5"))
        #expect(doc["rtc.ice_host_override"]?.value == .string("calls.example.com"))
        #expect(doc["rtc.ice_servers"]?.value == .array([.string("stun:stun.global.calls.mattermost.com:3478"), .string("turn:turn.example.com:3478")]))
        #expect(doc["rtc.turn.credentials_expiration_minutes"]?.value == .integer(720))
        #expect(doc["logger.console_level"]?.value == .string("info"))
        #expect(r.mapped.first { $0.key == "rtc.ice_port_udp" }?.origin == "RTCD_RTC_ICEPORTUDP")
        let dropped = Dictionary(r.dropped.map { ($0.key, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(dropped["api.security.admin_secret_key"]?.contains("api.security.admin_key_file") == true)
        #expect(dropped["rtc.turn.static_auth_secret"]?.contains("rtc.turn.static_auth_secret_file") == true)
        #expect(dropped["store.data_source"] != nil)
        #expect(dropped["logger.enable_file"] != nil)
        #expect(dropped["api.security.enable_admin"] != nil)
        #expect(dropped["rtc.ice_address_tcp"] == "callsctl listens on one address; kept 10.0.0.5, dropped 10.0.0.6")
        #expect(dropped["rtc.ice_servers (username/credential)"] != nil)
        #expect(r.dropped.allSatisfy { !$0.reason.contains("top-secret") })
        // The TURN URL needs the secret file the user still has to write: the output says so.
        #expect(r.toml.contains("# turn.static_auth_secret_file = "))
        // The result reads back with only that finding.
        let back = CallsConfig.resolve(fileText: r.toml, filePath: "out.toml")
        #expect(back.diagnostics.isEmpty)
        #expect(back.config.validate().map(\.key) == ["rtc.ice_servers"])
    }

    @Test func environmentAloneAndOddValues() throws {
        let r = try RTCDImport(
            text: "", path: "config.toml",
            environment: [
                "RTCD_RTC_ICESERVERS": #"[{"urls":["stun:s.example.com:3478"]}]"#, "RTCD_RTC_ICEHOSTOVERRIDE": "1.2.3.4/10.0.0.1",
                "RTCD_RTC_DTLS_INSECURE_SKIP_HELLOVERIFY": "true", "RTCD_API_HTTP_LISTENADDRESS": "calls.example.com:8045",
            ])
        let doc = try TOMLDocument(parsing: r.toml, file: "out.toml")
        #expect(doc["rtc.ice_servers"]?.value == .array([.string("stun:s.example.com:3478")]))
        let keys = Set(r.dropped.map(\.key))
        #expect(keys == ["rtc.ice_host_override", "RTCD_RTC_DTLS_INSECURE_SKIP_HELLOVERIFY", "api.http.listen_address"])
    }

    @Test func secretsGoToTheGivenFilesOnlyWhenUsable() throws {
        let on = try RTCDImport(
            text: Self.sample, path: "config.toml", environment: [:], turnSecretFile: "/etc/callsctl/turn-secret",
            adminKeyFile: "/etc/callsctl/admin-key")
        #expect(on.turnSecret == "top-secret-turn")
        #expect(on.adminKey == "top-secret-admin")
        #expect(!on.toml.contains("top-secret"))
        let doc = try TOMLDocument(parsing: on.toml, file: "out.toml")
        #expect(doc["api.security.admin_key_file"]?.value == .string("/etc/callsctl/admin-key"))
        #expect(doc["rtc.turn.static_auth_secret_file"]?.value == .string("/etc/callsctl/turn-secret"))
        #expect(!on.dropped.contains { $0.key.hasPrefix("api.security.enable_admin") || $0.key == "api.security.admin_secret_key" })

        let off = try RTCDImport(
            text: "[api]\nsecurity.enable_admin = false\nsecurity.admin_secret_key = \"long-enough-secret-1\"\n", path: "c",
            environment: [:], adminKeyFile: "/k")
        #expect(off.adminKey == nil)
        #expect(off.dropped.map(\.reason) == [
            "rtcd's admin was off (api.security.enable_admin is not true); callsctl's admin API generates its own key",
            ConfigKey.rtcdOnly["api.security.enable_admin"]!,
        ])
        let short = try RTCDImport(
            text: "[api]\nsecurity.enable_admin = true\nsecurity.admin_secret_key = \"short\"\n", path: "c", environment: [:],
            adminKeyFile: "/k")
        #expect(short.adminKey == nil)
        #expect(short.dropped.first?.reason == "too short or has spaces for a callsctl admin key (16 or more characters, no spaces); callsctl generates one")
        #expect(!short.dropped.contains { $0.reason.contains("short\"") })
    }

    @Test func syntaxErrorsAreThrown() {
        #expect(throws: TOMLError.self) { try RTCDImport(text: "[api\n", path: "c", environment: [:]) }
    }
}
