import CallsConfig
import CallsServer
import Foundation
import Logging

/// Where the config file of `serve` and `config show` is: `--config`, else `$CALLSCTL_CONFIG`, else
/// `callsctl.toml` in the data directory when it exists.
enum ConfigFileLocation {
    static let defaultName = "callsctl.toml"

    static func find(flag: String?, environment: [String: String], dataDir: String) -> (path: String?, how: String) {
        if let flag, !flag.isEmpty { return ((flag as NSString).expandingTildeInPath, "--config") }
        if let env = environment["CALLSCTL_CONFIG"], !env.isEmpty {
            return ((env as NSString).expandingTildeInPath, "CALLSCTL_CONFIG")
        }
        let path = (dataDir as NSString).appendingPathComponent(defaultName)
        if FileManager.default.fileExists(atPath: path) { return (path, "the data directory") }
        return (nil, "none: no --config, no CALLSCTL_CONFIG, no \(defaultName) in \(dataDir)")
    }
}

extension ServeSettings {
    /// Resolves defaults < config file < environment < flags through CallsConfig.
    ///
    /// A bad config file (syntax, unknown keys, values out of range) ends serve with exit 2 and every
    /// finding printed, before anything starts. Bad flags and environment values keep their usage errors (64)
    /// and their checks at start (files, resolution: exit 3).
    init(resolving serve: Serve, environment env: [String: String], dataDir: String, out: Output) throws {
        let location = ConfigFileLocation.find(flag: serve.config, environment: env, dataDir: dataDir)
        let overrides = try Self.overrides(from: serve)
        let resolution = CallsConfig.resolve(filePath: location.path, environment: env, overrides: overrides)
        let config = resolution.config
        // The file is checked on its own, as `config validate` does: a file it rejects stops serve even when
        // a flag overrides the bad value.
        let fileOnly = location.path.map { CallsConfig.resolve(filePath: $0) }
        var findings = (fileOnly?.diagnostics ?? []) + (fileOnly.map { $0.config.validate(resolve: false) } ?? [])
        findings += resolution.diagnostics.filter { $0.file == nil }
        findings += config.validate(resolve: false).filter { finding in
            // Environment values get the value rules too, except file checks, which happen where the files
            // are read; flags were checked by ArgumentParser.
            guard finding.file == nil, let key = finding.key, case .environment = config.source(of: key),
                let spec = ConfigKey.named(key)
            else { return false }
            if case .file = spec.kind { return false }
            return true
        }
        findings = findings.enumerated().sorted { a, b in
            (a.element.line ?? 0, a.offset) < (b.element.line ?? 0, b.offset)
        }.map(\.element)
        let errors = findings.filter { $0.severity == .error }
        if errors.contains(where: { $0.file != nil }) {
            let count = errors.count
            throw CLIError(
                "the config is invalid (\(count) error\(count == 1 ? "" : "s")); nothing was started:\n"
                    + findings.map(\.description).joined(separator: "\n"),
                exitCode: .negative,
                hint: "Check it with: callsctl config validate \(location.path ?? "FILE")")
        }
        if let first = errors.first {
            // Only environment values are left here (flags were checked by ArgumentParser).
            throw InvalidArgumentError(message: errors.count == 1 ? Self.plain(first) : errors.map(Self.plain).joined(separator: "\n"))
        }
        for w in findings where w.severity == .warning {
            // out.warning adds the "warning:" prefix.
            out.warning("\(w.location)\(w.key.map { "\($0): " } ?? "")\(w.message)" + (w.fix.map { "\n  fix: \($0)" } ?? ""))
        }

        // The checks serve always made on flags and environment values, with their messages.
        for (flag, turn, name, key) in [
            (serve.stunURLs, false, "--stun-url", "CALLSCTL_STUN_URLS"), (serve.turnURLs, true, "--turn-url", "CALLSCTL_TURN_URLS"),
        ] {
            let urls = flag.isEmpty ? CallsConfig.splitList(env[key] ?? "") : flag
            for url in urls {
                if let problem = ICEServerSettings.problem(url: url, turn: turn) {
                    throw InvalidArgumentError(message: "\(flag.isEmpty ? key : name) \(url) \(problem)")
                }
            }
        }
        if !config.turnURLs.isEmpty && config.turnSecretFile == nil {
            throw InvalidArgumentError(
                message: "--turn-url needs --turn-secret-file (the TURN server's shared secret) to make credentials for clients")
        }

        func listen(_ text: String, _ key: String) throws -> ListenAddress {
            do { return try ListenAddress(parsing: text) } catch {
                throw InvalidArgumentError(message: "\(Self.name(of: config.source(of: key), key: key)) \(error.description)")
            }
        }
        rtcListen = try listen(config.rtcUDPListenAddress, "rtc.ice_port_udp")
        rtcTCPListen = try listen(config.rtcTCPListenAddress, "rtc.ice_port_tcp")
        apiListen = try listen(config.apiListenAddress, "api.http.listen_address")
        iceHostOverride = config.iceHostOverride
        stunServers = config.stunServers
        tokenSecretFile = config.tokenSecretFile
        noUDPCandidates = config.noUDPCandidates
        adminKeyFile = config.adminKeyFile
        drainTimeout = config.drainTimeout
        maxParticipants = config.maxParticipants
        audioSlots = config.audioSlots
        fanoutThreads = config.fanoutThreads
        maxConnections = config.maxConnections
        maxConnectionsPerAddress = config.maxConnectionsPerAddress
        realtimePriority = config.realtimePriority
        stunURLs = config.stunURLs
        turnURLs = config.turnURLs
        turnSecretFile = config.turnSecretFile
        turnTTL = config.turnTTLSeconds
        configFile = location.path
        logFormat = config.logFormat
        clusterDatabaseURL = config.clusterDatabaseURL
        clusterPasswordFile = config.clusterDatabasePasswordFile
        clusterNodeID = config.clusterNodeID
        clusterPublicURL = config.clusterPublicURL
        clusterHeartbeatTimeout = config.clusterHeartbeatTimeout
        if clusterDatabaseURL == nil {
            for key in ["cluster.node_id", "cluster.public_url", "cluster.database_password_file"] where config[key] != nil {
                out.warning(
                    "\(Self.name(of: config.source(of: key), key: key)) is set, but no cluster database is (--cluster-db, CALLSCTL_CLUSTER_DB or cluster.database_url), so this node runs alone on SQLite and ignores it")
            }
        }
        switch config.logLevel {
        case "debug": logLevel = .debug
        case "warn", "warning": logLevel = .warning
        case "error": logLevel = .error
        default: logLevel = .info
        }
    }

    /// How a source is named in a flag-style message: `--rtc-listen`, `CALLSCTL_RTC_LISTEN`, `file:line rtc.ice_port_udp`.
    static func name(of source: ConfigSource, key: String) -> String {
        switch source {
        case .flag(let name), .environment(let name): name
        case .file(let path, let line): "\(path):\(line) \(key)"
        case .default: key
        }
    }

    /// An environment finding as a one-line usage message: `CALLSCTL_X "v" is not ...`.
    static func plain(_ d: ConfigDiagnostic) -> String {
        "\(d.key ?? "") \(d.message)"
    }

    /// The flags that were given, as overrides of the config keys.
    static func overrides(from serve: Serve) throws -> [ConfigOverride] {
        var list: [ConfigOverride] = []
        func add(_ key: String, _ value: ConfigValue, _ flag: String, part: ConfigOverride.ICEPart? = nil) {
            list.append(ConfigOverride(key: key, value: value, source: .flag(flag), part: part))
        }
        if let text = serve.rtcListen {
            guard let o = ConfigOverride.rtcListen(text, source: .flag("--rtc-listen")) else {
                throw InvalidArgumentError(message: "--rtc-listen \"\(text)\" is not HOST:PORT with an IP address")
            }
            list += o
        }
        if let v = serve.apiListen { add("api.http.listen_address", .string(v), "--api-listen") }
        if let v = serve.iceHostOverride { add("rtc.ice_host_override", .string(v), "--ice-host-override") }
        if !serve.stunServers.isEmpty { add("rtc.stun_servers", .list(serve.stunServers), "--stun-server") }
        if let v = serve.tokenSecretFile { add("api.security.token_secret_file", .string(v), "--token-secret-file") }
        if serve.noUDPCandidates { add("rtc.no_udp_candidates", .bool(true), "--no-udp-candidates") }
        if let v = serve.adminKeyFile { add("api.security.admin_key_file", .string(v), "--admin-key-file") }
        if let v = serve.drainTimeout { add("service.drain_timeout", .integer(v), "--drain-timeout") }
        if let v = serve.maxParticipants { add("limits.max_participants", .integer(v), "--max-participants") }
        if let v = serve.audioSlots { add("limits.audio_slots", .integer(v), "--audio-slots") }
        if let v = serve.maxConnections { add("api.max_connections", .integer(v), "--max-connections") }
        if let v = serve.maxConnectionsPerAddress {
            add("api.max_connections_per_address", .integer(v), "--max-connections-per-address")
        }
        if let v = serve.fanoutThreads { add("rtc.fanout_threads", .integer(v), "--fanout-threads") }
        if let v = serve.realtimePriority { add("rtc.realtime_priority", .integer(v), "--realtime-priority") }
        if let v = serve.logFormat { add("logger.log_format", .string(v.lowercased()), "--log-format") }
        if let v = serve.logLevel { add("logger.console_level", .string(v.lowercased() == "warning" ? "warn" : v.lowercased()), "--log-level") }
        if !serve.stunURLs.isEmpty { add("rtc.ice_servers", .list(serve.stunURLs), "--stun-url", part: .stun) }
        if !serve.turnURLs.isEmpty { add("rtc.ice_servers", .list(serve.turnURLs), "--turn-url", part: .turn) }
        if let v = serve.turnSecretFile { add("rtc.turn.static_auth_secret_file", .string(v), "--turn-secret-file") }
        if let v = serve.clusterDB { add("cluster.database_url", .string(v), "--cluster-db") }
        if let v = serve.clusterDBPasswordFile { add("cluster.database_password_file", .string(v), "--cluster-db-password-file") }
        if let v = serve.clusterNodeID { add("cluster.node_id", .string(v), "--cluster-node-id") }
        if let v = serve.clusterPublicURL { add("cluster.public_url", .string(v), "--cluster-public-url") }
        if let v = serve.clusterHeartbeatTimeout { add("cluster.heartbeat_timeout", .integer(v), "--cluster-heartbeat-timeout") }
        if let v = serve.turnTTL {
            list.append(ConfigOverride.turnTTL(seconds: v, source: .flag("--turn-ttl")))
        }
        return list
    }
}
