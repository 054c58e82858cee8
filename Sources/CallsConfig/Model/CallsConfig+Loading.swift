import Foundation

/// A value set by a flag (or anything above the environment), for `CallsConfig.resolve`.
public struct ConfigOverride: Sendable, Hashable {
    public var key: String
    public var value: ConfigValue
    public var source: ConfigSource
    /// For `rtc.ice_servers`: replace only the STUN or only the TURN URLs (`--stun-url`, `--turn-url`).
    public var part: ICEPart?
    /// For `rtc.turn.credentials_expiration_minutes`: the integer is seconds (`--turn-ttl`).
    public var isSeconds = false

    public enum ICEPart: Sendable, Hashable {
        case stun, turn
    }

    public init(key: String, value: ConfigValue, source: ConfigSource, part: ICEPart? = nil) {
        self.key = key
        self.value = value
        self.source = source
        self.part = part
    }

    /// The TURN credential lifetime in seconds (`--turn-ttl`, `CALLSCTL_TURN_TTL`).
    public static func turnTTL(seconds: Int, source: ConfigSource) -> ConfigOverride {
        var o = ConfigOverride(key: "rtc.turn.credentials_expiration_minutes", value: .integer(seconds), source: source)
        o.isSeconds = true
        return o
    }

    /// The four `rtc.ice_*` keys set from one `HOST:PORT` (`--rtc-listen`, `CALLSCTL_RTC_LISTEN`); nil when it does not parse.
    public static func rtcListen(_ text: String, source: ConfigSource) -> [ConfigOverride]? {
        guard let (host, port) = HostPort.parseListen(text, allowPortZero: true) else { return nil }
        return [
            ConfigOverride(key: "rtc.ice_address_udp", value: .string(host), source: source),
            ConfigOverride(key: "rtc.ice_port_udp", value: .integer(port), source: source),
            ConfigOverride(key: "rtc.ice_address_tcp", value: .string(host), source: source),
            ConfigOverride(key: "rtc.ice_port_tcp", value: .integer(port), source: source),
        ]
    }
}

/// The resolved configuration of `callsctl serve`: every key's value and where it came from.
public struct CallsConfig: Sendable, Hashable {
    /// Values by key name (keys with no value, like an unset admin key file, are absent).
    public private(set) var values: [String: ConfigValue] = [:]
    /// Where each key's value came from; every known key has one (`.default` when nothing set it).
    public private(set) var sources: [String: ConfigSource] = [:]
    /// The TURN credential lifetime when set in seconds (`--turn-ttl`, `CALLSCTL_TURN_TTL`).
    private var turnTTLSecondsExact: Int?

    /// The defaults.
    public init() {
        for key in ConfigKey.all {
            if let value = key.defaultValue { values[key.name] = value }
            sources[key.name] = .default
        }
    }

    public subscript(key: String) -> ConfigValue? { values[key] }

    public func source(of key: String) -> ConfigSource { sources[key] ?? .default }

    mutating func set(_ key: String, _ value: ConfigValue?, source: ConfigSource) {
        values[key] = value
        sources[key] = source
        if key == "rtc.turn.credentials_expiration_minutes" { turnTTLSecondsExact = nil }
    }

    mutating func setTurnTTL(seconds: Int, source: ConfigSource) {
        set("rtc.turn.credentials_expiration_minutes", .integer(Swift.max(1, seconds / 60)), source: source)
        turnTTLSecondsExact = seconds
    }

    // MARK: Typed accessors

    private func string(_ key: String) -> String? {
        if case .string(let s)? = values[key] { return s }
        return nil
    }

    private func int(_ key: String) -> Int? {
        if case .integer(let i)? = values[key] { return i }
        return nil
    }

    private func list(_ key: String) -> [String] {
        if case .list(let l)? = values[key] { return l }
        return []
    }

    public var apiListenAddress: String { string("api.http.listen_address") ?? "0.0.0.0:8045" }
    public var adminKeyFile: String? { string("api.security.admin_key_file") }
    public var tokenSecretFile: String? { string("api.security.token_secret_file") }
    /// The UDP media address as `HOST:PORT` (IPv6 in brackets).
    public var rtcUDPListenAddress: String {
        HostPort.join(string("rtc.ice_address_udp") ?? "", int("rtc.ice_port_udp") ?? 8443)
    }
    public var rtcTCPListenAddress: String {
        HostPort.join(string("rtc.ice_address_tcp") ?? "", int("rtc.ice_port_tcp") ?? 8443)
    }
    public var iceHostOverride: String? { string("rtc.ice_host_override") }
    public var stunServers: [String] { list("rtc.stun_servers") }
    public var iceServers: [String] { list("rtc.ice_servers") }
    public var stunURLs: [String] { iceServers.filter { !ICEURL.isTURN($0) } }
    public var turnURLs: [String] { iceServers.filter(ICEURL.isTURN) }
    public var turnSecretFile: String? { string("rtc.turn.static_auth_secret_file") }
    public var turnTTLSeconds: Int {
        if let turnTTLSecondsExact { return turnTTLSecondsExact }
        // Clamped: a file may hold any 64-bit integer here, and validation may not have run yet.
        let minutes = int("rtc.turn.credentials_expiration_minutes") ?? 1440
        let (seconds, overflow) = minutes.multipliedReportingOverflow(by: 60)
        return overflow ? (minutes > 0 ? Int.max : Int.min) : seconds
    }
    public var noUDPCandidates: Bool {
        if case .bool(let b)? = values["rtc.no_udp_candidates"] { return b }
        return false
    }
    public var maxParticipants: Int? { int("limits.max_participants") }
    public var audioSlots: Int { int("limits.audio_slots") ?? 3 }
    /// nil: the server's default from the open-file limit.
    public var maxConnections: Int? { int("api.max_connections") }
    public var maxConnectionsPerAddress: Int { int("api.max_connections_per_address") ?? 2048 }
    /// nil: the media server's default for this machine.
    public var fanoutThreads: Int? { int("rtc.fanout_threads") }
    public var realtimePriority: Int { int("rtc.realtime_priority") ?? 0 }
    public var drainTimeout: Int { int("service.drain_timeout") ?? 30 }
    /// `debug`, `info`, `warn` or `error`.
    public var logLevel: String { (string("logger.console_level") ?? "info").lowercased() }
    public var logFormat: String { (string("logger.log_format") ?? "text").lowercased() }
    /// The cluster's PostgreSQL URL; nil: a single node on SQLite.
    public var clusterDatabaseURL: String? { string("cluster.database_url").flatMap { $0.isEmpty ? nil : $0 } }
    public var clusterDatabasePasswordFile: String? { string("cluster.database_password_file") }
    public var clusterNodeID: String? { string("cluster.node_id") }
    public var clusterPublicURL: String? { string("cluster.public_url") }
    public var clusterHeartbeatTimeout: Int { int("cluster.heartbeat_timeout") ?? 5 }

    /// The value as `config show` prints it: `<redacted>` for secrets, TTLs set in seconds as such.
    public func displayValue(of key: String) -> String? {
        guard let value = values[key] else { return nil }
        if key == "cluster.database_url", case .string(let url) = value { return PostgresURL.redact(url) }
        if ConfigKey.named(key)?.isSecret == true { return "<redacted>" }
        if key == "rtc.turn.credentials_expiration_minutes", let seconds = turnTTLSecondsExact, seconds % 60 != 0 {
            return "\(value) (\(seconds) seconds)"
        }
        return value.description
    }
}

/// The outcome of loading: the config, and every problem found on the way (all at once).
public struct ConfigResolution: Sendable {
    public var config: CallsConfig
    public var diagnostics: [ConfigDiagnostic]
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}

extension CallsConfig {
    /// Resolves defaults < file < environment < overrides (flags). Reading problems (syntax, unknown keys,
    /// wrong types) are diagnostics; call `validate` on the result for the value rules.
    /// - Parameters:
    ///   - fileText: the file's contents, or nil for no file.
    ///   - filePath: how to name the file in messages and sources.
    public static func resolve(
        fileText: String?, filePath: String = "callsctl.toml", environment: [String: String] = [:],
        overrides: [ConfigOverride] = []
    ) -> ConfigResolution {
        var config = CallsConfig()
        var diagnostics: [ConfigDiagnostic] = []
        if let fileText {
            diagnostics += config.apply(fileText: fileText, path: filePath)
        }
        diagnostics += config.apply(environment: environment)
        for override in overrides { config.apply(override) }
        return ConfigResolution(config: config, diagnostics: diagnostics)
    }

    /// Reads a file from disk and resolves it; a file that cannot be read is one error diagnostic.
    public static func resolve(
        filePath: String?, environment: [String: String] = [:], overrides: [ConfigOverride] = []
    ) -> ConfigResolution {
        guard let filePath else { return resolve(fileText: nil, environment: environment, overrides: overrides) }
        switch readConfigFile(filePath) {
        case .success(let text):
            return resolve(fileText: text, filePath: filePath, environment: environment, overrides: overrides)
        case .failure(let problem):
            var r = resolve(fileText: nil, environment: environment, overrides: overrides)
            r.diagnostics.insert(problem.diagnostic, at: 0)
            return r
        }
    }

    /// The largest config file read, in bytes (`TOMLDocument.maxBytes`, 1 MiB).
    public static let maxFileBytes = TOMLDocument.maxBytes

    /// Reads a config file as UTF-8 text, refusing one over `maxFileBytes` from its size before reading it
    /// (and reading at most one byte past the limit, for files whose size `stat` does not tell).
    static func readConfigFile(_ path: String) -> Result<String, UnreadableFile> {
        func tooBig(_ size: String) -> UnreadableFile {
            UnreadableFile(diagnostic: .error(
                "the config file is \(size), over the limit of \(maxFileBytes) bytes (1 MiB)", file: path,
                fix: "A callsctl config is a few kilobytes: check that --config or CALLSCTL_CONFIG names the right file, "
                    + "and remove what does not belong in it."))
        }
        func unreadable() -> UnreadableFile {
            UnreadableFile(diagnostic: .error(
                "cannot read the config file: \(FileCheck.reason(path))", file: path,
                fix: "Check the path given with --config or CALLSCTL_CONFIG."))
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { return .failure(unreadable()) }
        defer { try? handle.close() }
        var st = stat()
        if fstat(handle.fileDescriptor, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > maxFileBytes {
            return .failure(tooBig("\(st.st_size) bytes"))
        }
        guard let data = try? handle.read(upToCount: maxFileBytes + 1) ?? Data() else { return .failure(unreadable()) }
        if data.count > maxFileBytes { return .failure(tooBig("more than \(maxFileBytes) bytes")) }
        guard let text = String(data: data, encoding: .utf8) else { return .failure(unreadable()) }
        return .success(text)
    }

    /// Why a config file was not read, as the diagnostic to report.
    struct UnreadableFile: Error {
        var diagnostic: ConfigDiagnostic
    }

    mutating func apply(_ override: ConfigOverride) {
        if override.key == "rtc.ice_servers", let part = override.part, case .list(let new) = override.value {
            let keep = iceServers.filter { ICEURL.isTURN($0) == (part == .stun) }
            let merged = part == .stun ? new + keep : keep + new
            set(override.key, .list(merged), source: override.source)
        } else if override.isSeconds, case .integer(let seconds) = override.value {
            setTurnTTL(seconds: seconds, source: override.source)
        } else {
            set(override.key, override.value, source: override.source)
        }
    }

    // MARK: File

    mutating func apply(fileText: String, path: String) -> [ConfigDiagnostic] {
        let document: TOMLDocument
        do {
            document = try TOMLDocument(parsing: fileText, file: path)
        } catch {
            return [
                .error(
                    "TOML syntax: \(error.message) (column \(error.column))", file: path, line: error.line,
                    fix: "Fix the syntax; see https://toml.io/en/v1.0.0.")
            ]
        }
        var diagnostics: [ConfigDiagnostic] = []
        for entry in Self.flattenInlineTables(document.entries) {
            guard let key = ConfigKey.named(entry.key) else {
                diagnostics.append(Self.unknownKey(entry.key, file: path, line: entry.line))
                continue
            }
            switch Self.convert(entry.value, for: key) {
            case .success(let value):
                set(key.name, value, source: .file(path: path, line: entry.line))
            case .failure(let problem):
                // A list of ICE servers may hold rtcd's fixed credentials, a secret key's value a password: never echo them.
                let shown = key.kind == .iceURLList ? "the list" : key.isSecret ? "the value" : entry.value.tomlText
                diagnostics.append(
                    .error(
                        "\(shown) \(problem.message); allowed: \(key.kind.allowed)", file: path,
                        line: entry.line, key: key.name, fix: problem.fix))
            }
        }
        return diagnostics
    }

    /// Spreads inline tables into one entry per key, as `[table]` sections and dotted keys give them:
    /// `rtc = { ice_port_tcp = 2080 }` becomes `rtc.ice_port_tcp = 2080` on the same line. An inline table stays
    /// whole where it is a known key's value. Iterative; the parser bounds the nesting anyway.
    static func flattenInlineTables(_ entries: [TOMLEntry]) -> [TOMLEntry] {
        var out: [TOMLEntry] = []
        out.reserveCapacity(entries.count)
        for entry in entries {
            guard case .inlineTable = entry.value, ConfigKey.named(entry.key) == nil else {
                out.append(entry)
                continue
            }
            // Depth-first, keys sorted, so messages come in a stable order.
            var stack = [entry]
            while let next = stack.popLast() {
                // An empty one sets nothing, like an empty [table].
                guard case .inlineTable(let table) = next.value, ConfigKey.named(next.key) == nil else {
                    out.append(next)
                    continue
                }
                for name in table.keys.sorted().reversed() {
                    if let value = table[name] {
                        stack.append(TOMLEntry(key: next.key + "." + TOMLValue.key(name), value: value, line: next.line))
                    }
                }
            }
        }
        return out
    }

    static func unknownKey(_ name: String, file: String, line: Int) -> ConfigDiagnostic {
        if let why = ConfigKey.rtcdOnly[name] {
            return .error(
                "is an rtcd setting callsctl does not use: \(why)", file: file, line: line, key: name,
                fix: "Remove it, or convert the whole file with: callsctl config import-rtcd FILE")
        }
        if let near = suggestion(for: name) {
            return .error("unknown key; did you mean \(near)?", file: file, line: line, key: name)
        }
        return .error(
            "unknown key", file: file, line: line, key: name,
            fix: "The keys are listed in docs/configuration.md and by: callsctl config show --effective")
    }

    struct Problem: Error {
        var message: String
        var fix: String?
    }

    /// Converts a TOML value to the key's shape, or says why it cannot.
    static func convert(_ value: TOMLValue, for key: ConfigKey) -> Result<ConfigValue, Problem> {
        func wrongType() -> Result<ConfigValue, Problem> {
            .failure(Problem(message: "is \(value.typeDescription)"))
        }
        switch key.kind {
        case .port, .integer:
            guard case .integer(let i) = value else { return wrongType() }
            guard let n = Int(exactly: i) else { return wrongType() }
            return .success(.integer(n))
        case .bool:
            guard case .bool(let b) = value else { return wrongType() }
            return .success(.bool(b))
        case .listenAddress, .localIP, .file, .host, .choice, .postgresURL, .httpURL, .name:
            guard case .string(let s) = value else { return wrongType() }
            return .success(.string(s))
        case .stunServerList:
            guard case .array(let items) = value else { return wrongType() }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else {
                    return .failure(Problem(message: "has \(item.typeDescription) in the list"))
                }
                out.append(s)
            }
            return .success(.list(out))
        case .iceURLList:
            guard case .array(let items) = value else { return wrongType() }
            var out: [String] = []
            for item in items {
                switch item {
                case .string(let s): out.append(s)
                case .inlineTable(let table):
                    // rtcd's { urls = [...], username = "...", credential = "..." } form.
                    if table["username"] != nil || table["credential"] != nil {
                        return .failure(
                            Problem(
                                message: "has a fixed username/credential",
                                fix: "callsctl makes TURN credentials from rtc.turn.static_auth_secret_file; list the URLs only"))
                    }
                    let unknown = table.keys.filter { $0 != "urls" }.sorted()
                    guard unknown.isEmpty, case .array(let urls)? = table["urls"] else {
                        return .failure(Problem(message: "has a table that is not { urls = [...] }"))
                    }
                    for url in urls {
                        guard case .string(let s) = url else {
                            return .failure(Problem(message: "has \(url.typeDescription) in urls"))
                        }
                        out.append(s)
                    }
                default:
                    return .failure(Problem(message: "has \(item.typeDescription) in the list"))
                }
            }
            return .success(.list(out))
        }
    }

    // MARK: Environment

    /// Reads `CALLSCTL_<SECTION>_<KEY>` and the older short names. The canonical name wins over an alias.
    mutating func apply(environment env: [String: String]) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        func value(_ name: String) -> String? {
            guard let v = env[name], !v.isEmpty else { return nil }
            return v
        }
        // Aliases first, so the canonical names override them.
        if let text = value("CALLSCTL_RTC_LISTEN") {
            if let overrides = ConfigOverride.rtcListen(text, source: .environment("CALLSCTL_RTC_LISTEN")) {
                for o in overrides { apply(o) }
            } else {
                diagnostics.append(
                    .error(
                        "\"\(text)\" is not HOST:PORT; allowed: \(ConfigKeyKind.listenAddress.allowed)",
                        key: "CALLSCTL_RTC_LISTEN"))
            }
        }
        if let text = value("CALLSCTL_TURN_TTL") {
            if let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 1 {
                setTurnTTL(seconds: n, source: .environment("CALLSCTL_TURN_TTL"))
            } else {
                diagnostics.append(
                    .error(
                        "\"\(text)\" is not a number of seconds; allowed: a whole number, 1 or more (like --turn-ttl)",
                        key: "CALLSCTL_TURN_TTL"))
            }
        }
        for (name, part) in [("CALLSCTL_STUN_URLS", ConfigOverride.ICEPart.stun), ("CALLSCTL_TURN_URLS", .turn)] {
            if let text = value(name) {
                apply(ConfigOverride(key: "rtc.ice_servers", value: .list(Self.splitList(text)), source: .environment(name), part: part))
            }
        }
        for key in ConfigKey.all {
            let names = key.envAliases.filter {
                !["CALLSCTL_RTC_LISTEN", "CALLSCTL_TURN_TTL", "CALLSCTL_STUN_URLS", "CALLSCTL_TURN_URLS"].contains($0)
            } + [key.environmentName]
            for name in names {
                guard let text = value(name) else { continue }
                switch Self.parseEnvironment(text, for: key) {
                case .success(let v): set(key.name, v, source: .environment(name))
                case .failure(let problem):
                    diagnostics.append(
                        .error("\"\(text)\" \(problem.message); allowed: \(key.kind.allowed)", key: name, fix: problem.fix))
                }
            }
        }
        return diagnostics
    }

    public static func splitList(_ text: String) -> [String] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("["),
            let data = trimmed.data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [String]
        {
            return array
        }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func parseEnvironment(_ text: String, for key: ConfigKey) -> Result<ConfigValue, Problem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch key.kind {
        case .port, .integer:
            guard let n = Int(trimmed) else { return .failure(Problem(message: "is not a whole number")) }
            return .success(.integer(n))
        case .bool:
            switch trimmed.lowercased() {
            case "1", "true", "yes", "on": return .success(.bool(true))
            case "0", "false", "no", "off": return .success(.bool(false))
            default: return .failure(Problem(message: "is not a boolean (use 1/true/yes or 0/false/no)"))
            }
        case .listenAddress, .localIP, .file, .host, .choice, .postgresURL, .httpURL, .name:
            return .success(.string(trimmed))
        case .stunServerList, .iceURLList:
            return .success(.list(splitList(text)))
        }
    }
}
