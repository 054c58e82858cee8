/// Where a resolved value came from.
public enum ConfigSource: Sendable, Hashable, CustomStringConvertible {
    case `default`
    case file(path: String, line: Int)
    case environment(String)
    case flag(String)

    public var description: String {
        switch self {
        case .default: "default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let name): "environment \(name)"
        case .flag(let name): "flag \(name)"
        }
    }

    /// `default`, `file`, `environment` or `flag`, for JSON.
    public var kind: String {
        switch self {
        case .default: "default"
        case .file: "file"
        case .environment: "environment"
        case .flag: "flag"
        }
    }
}

/// A setting's value, in the few shapes callsctl's keys take.
public enum ConfigValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case bool(Bool)
    case list([String])

    public var description: String {
        switch self {
        case .string(let s): TOMLValue.quoted(s)
        case .integer(let i): String(i)
        case .bool(let b): b ? "true" : "false"
        case .list(let items): "[" + items.map(TOMLValue.quoted).joined(separator: ", ") + "]"
        }
    }

    /// The value as TOML text.
    public var tomlText: String { description }
}

/// What values a key takes; decides parsing and the "allowed" text of messages.
public enum ConfigKeyKind: Sendable, Hashable {
    /// `HOST:PORT` with an IP address (`:8045` means all interfaces).
    case listenAddress
    /// An IP address of this machine, or empty for all interfaces.
    case localIP
    case port
    /// A whole number in a range.
    case integer(min: Int, max: Int)
    case bool
    /// A file path; `secret` files must not be readable by others.
    case file(secret: Bool)
    /// An IP address or host name.
    case host
    /// `host[:port]` of STUN servers.
    case stunServerList
    /// STUN/TURN URLs for clients.
    case iceURLList
    /// One of the given words (case-insensitive).
    case choice([String])
    /// A PostgreSQL URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]`.
    case postgresURL
    /// An http(s) URL with a host and no query, like `https://calls-1.example.com`.
    case httpURL
    /// A short name: 1-63 letters, digits, '-', '_' or '.'.
    case name

    public var allowed: String {
        switch self {
        case .listenAddress: "HOST:PORT with an IP address and a port from 1 to 65535, like \"0.0.0.0:8045\" or \"[::]:8045\""
        case .localIP: "an IP address of this machine, or \"\" for all interfaces"
        case .port: "a whole number from 1 to 65535"
        case .integer(let min, let max):
            max == Int.max ? "a whole number, \(min) or more" : "a whole number from \(min) to \(max)"
        case .bool: "true or false"
        case .file(let secret): secret ? "the path of a readable file that only its owner can read" : "the path of a readable file"
        case .host: "an IP address or a host name"
        case .stunServerList: "a list of \"host[:port]\" strings, like [\"stun.example.com:3478\"]"
        case .iceURLList:
            "a list of STUN/TURN URLs, like [\"stun:stun.example.com:3478\", \"turn:turn.example.com:3478?transport=udp\"]"
        case .choice(let words): words.map { "\"\($0)\"" }.joined(separator: ", ")
        case .postgresURL: "a URL like \"postgres://callsctl@db.example.com:5432/mattermost?sslmode=require\""
        case .httpURL: "an http(s) URL with a host, like \"https://calls-1.example.com\""
        case .name: "1 to 63 letters, digits, '-', '_' or '.'"
        }
    }
}

/// One key of callsctl.toml: its name, environment variable, flag, default and meaning.
public struct ConfigKey: Sendable, Hashable {
    /// The dotted key as written in the file: `rtc.ice_port_udp`.
    public let name: String
    public let kind: ConfigKeyKind
    /// The default, or nil when unset by default.
    public let defaultValue: ConfigValue?
    /// The `serve` flag(s) that set it.
    public let flags: [String]
    /// Older environment names that still work (the canonical name wins when both are set).
    public let envAliases: [String]
    /// Shown as `<redacted>` by `config show`. (No key holds a secret inline today; secret files are paths.)
    public let isSecret: Bool
    public let help: String

    /// `CALLSCTL_` + the key in upper case with dots as underscores: `CALLSCTL_RTC_ICE_PORT_UDP`.
    public var environmentName: String {
        "CALLSCTL_" + name.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// The section (`api`, `rtc`, ...) and the key inside it (`http.listen_address`).
    public var section: String { String(name.prefix { $0 != "." }) }
    public var keyInSection: String { String(name.drop { $0 != "." }.dropFirst()) }
}

extension ConfigKey {
    /// Every key callsctl.toml knows, in the order `config show` prints them.
    public static let all: [ConfigKey] = [
        ConfigKey(
            name: "api.http.listen_address", kind: .listenAddress, defaultValue: .string("0.0.0.0:8045"),
            flags: ["--api-listen"], envAliases: ["CALLSCTL_API_LISTEN"], isSecret: false,
            help: "Address of the HTTP/WebSocket API (signaling, admin API, metrics, test page)."),
        ConfigKey(
            name: "api.security.admin_key_file", kind: .file(secret: true), defaultValue: nil,
            flags: ["--admin-key-file"], envAliases: ["CALLSCTL_ADMIN_KEY_FILE"], isSecret: false,
            help: "File with the admin API bearer key. Unset: admin-key in the data directory (generated)."),
        ConfigKey(
            name: "api.security.token_secret_file", kind: .file(secret: true), defaultValue: nil,
            flags: ["--token-secret-file"], envAliases: ["CALLSCTL_TOKEN_SECRET_FILE"], isSecret: false,
            help: "File with the secret that signs join tokens. Unset: token-secret in the data directory (generated)."),
        ConfigKey(
            name: "api.max_connections", kind: .integer(min: 1, max: 1_000_000), defaultValue: nil,
            flags: ["--max-connections"], envAliases: ["CALLSCTL_MAX_CONNECTIONS"], isSecret: false,
            help: "API connections open at once; the next gets a 503. Unset: half the open-file limit, at most 100000."),
        ConfigKey(
            name: "api.max_connections_per_address", kind: .integer(min: 0, max: 1_000_000), defaultValue: .integer(2048),
            flags: ["--max-connections-per-address"], envAliases: ["CALLSCTL_MAX_CONNECTIONS_PER_ADDRESS"], isSecret: false,
            help: "API connections open at once from one IP address (0: no limit). Behind a reverse proxy all clients share its address."),
        ConfigKey(
            name: "rtc.ice_address_udp", kind: .localIP, defaultValue: .string(""),
            flags: ["--rtc-listen"], envAliases: ["CALLSCTL_RTC_LISTEN"], isSecret: false,
            help: "Local IP for media over UDP; \"\" listens on all interfaces (0.0.0.0)."),
        ConfigKey(
            name: "rtc.ice_port_udp", kind: .port, defaultValue: .integer(8443),
            flags: ["--rtc-listen"], envAliases: ["CALLSCTL_RTC_LISTEN"], isSecret: false,
            help: "UDP port for media."),
        ConfigKey(
            name: "rtc.ice_address_tcp", kind: .localIP, defaultValue: .string(""),
            flags: ["--rtc-listen"], envAliases: ["CALLSCTL_RTC_LISTEN"], isSecret: false,
            help: "Local IP for media over TCP (ICE-TCP); \"\" listens on all interfaces."),
        ConfigKey(
            name: "rtc.ice_port_tcp", kind: .port, defaultValue: .integer(8443),
            flags: ["--rtc-listen"], envAliases: ["CALLSCTL_RTC_LISTEN"], isSecret: false,
            help: "TCP port for media (ICE-TCP); must differ from the API port on the same address."),
        ConfigKey(
            name: "rtc.ice_host_override", kind: .host, defaultValue: nil,
            flags: ["--ice-host-override"], envAliases: ["CALLSCTL_ICE_HOST_OVERRIDE"], isSecret: false,
            help: "IP or host name advertised in ICE candidates (resolved at start)."),
        ConfigKey(
            name: "rtc.stun_servers", kind: .stunServerList, defaultValue: .list([]),
            flags: ["--stun-server"], envAliases: ["CALLSCTL_STUN_SERVERS"], isSecret: false,
            help: "STUN servers asked once at start for the public IP (when no ICE host override is set)."),
        ConfigKey(
            name: "rtc.ice_servers", kind: .iceURLList, defaultValue: .list([]),
            flags: ["--stun-url", "--turn-url"], envAliases: ["CALLSCTL_STUN_URLS", "CALLSCTL_TURN_URLS"],
            isSecret: false,
            help: "STUN and TURN URLs handed to clients; TURN URLs get fresh credentials from the TURN secret."),
        ConfigKey(
            name: "rtc.turn.static_auth_secret_file", kind: .file(secret: true), defaultValue: nil,
            flags: ["--turn-secret-file"], envAliases: ["CALLSCTL_TURN_SECRET_FILE"], isSecret: false,
            help: "File with the TURN server's shared secret (coturn static-auth-secret)."),
        ConfigKey(
            name: "rtc.turn.credentials_expiration_minutes", kind: .integer(min: 1, max: 10079),
            defaultValue: .integer(1440), flags: ["--turn-ttl"], envAliases: ["CALLSCTL_TURN_TTL"], isSecret: false,
            help: "Lifetime of TURN credentials in minutes (the flag and CALLSCTL_TURN_TTL take seconds)."),
        ConfigKey(
            name: "rtc.no_udp_candidates", kind: .bool, defaultValue: .bool(false),
            flags: ["--no-udp-candidates"], envAliases: ["CALLSCTL_NO_UDP_CANDIDATES"], isSecret: false,
            help: "Diagnostic: offer only the TCP candidate (forces ICE-TCP)."),
        ConfigKey(
            name: "rtc.fanout_threads", kind: .integer(min: 0, max: 16), defaultValue: nil,
            flags: ["--fanout-threads"], envAliases: ["CALLSCTL_FANOUT_THREADS"], isSecret: false,
            help: "Helper threads that share a large call's audio fan-out with the media thread (0-16; unset: one less than the processors, at most 3)."),
        ConfigKey(
            name: "rtc.realtime_priority", kind: .integer(min: 0, max: 99), defaultValue: .integer(0),
            flags: ["--realtime-priority"], envAliases: ["CALLSCTL_REALTIME_PRIORITY"], isSecret: false,
            help: "SCHED_RR priority of the media threads (1-99; 0: normal scheduling). Needs root, CAP_SYS_NICE or LimitRTPRIO."),
        ConfigKey(
            name: "limits.max_participants", kind: .integer(min: 1, max: Int.max), defaultValue: nil,
            flags: ["--max-participants"], envAliases: ["CALLSCTL_MAX_PARTICIPANTS"], isSecret: false,
            help: "Participants allowed in one call; unset is unlimited (the docs advise 50)."),
        ConfigKey(
            name: "limits.audio_slots", kind: .integer(min: 1, max: 16), defaultValue: .integer(3),
            flags: ["--audio-slots"], envAliases: ["CALLSCTL_AUDIO_SLOTS"], isSecret: false,
            help: "Audio streams each participant receives: the call's current speakers, whatever the call's size (1-16)."),
        ConfigKey(
            name: "service.drain_timeout", kind: .integer(min: 0, max: Int.max), defaultValue: .integer(30),
            flags: ["--drain-timeout"], envAliases: ["CALLSCTL_DRAIN_TIMEOUT"], isSecret: false,
            help: "Seconds running calls may go on after SIGTERM before the process exits."),
        ConfigKey(
            name: "logger.console_level", kind: .choice(["debug", "info", "warn", "error"]), defaultValue: .string("info"),
            flags: ["--log-level", "--verbose", "--quiet"], envAliases: ["CALLSCTL_LOG_LEVEL"], isSecret: false,
            help: "Log level on standard error; --verbose means debug and --quiet means warn."),
        ConfigKey(
            name: "logger.log_format", kind: .choice(["text", "json"]), defaultValue: .string("text"),
            flags: ["--log-format"], envAliases: ["CALLSCTL_LOG_FORMAT"], isSecret: false,
            help: "Log lines on standard error: text for people, json (one object per line) for Loki or Elasticsearch."),
        ConfigKey(
            name: "cluster.database_url", kind: .postgresURL, defaultValue: nil,
            flags: ["--cluster-db"], envAliases: ["CALLSCTL_CLUSTER_DB"], isSecret: true,
            help: "PostgreSQL shared by the nodes of a cluster (channel settings, node registry, call placement). Unset: one node on SQLite."),
        ConfigKey(
            name: "cluster.database_password_file", kind: .file(secret: true), defaultValue: nil,
            flags: ["--cluster-db-password-file"], envAliases: [], isSecret: false,
            help: "File with the database password, when cluster.database_url holds none."),
        ConfigKey(
            name: "cluster.node_id", kind: .name, defaultValue: nil,
            flags: ["--cluster-node-id"], envAliases: [], isSecret: false,
            help: "This node's name in the cluster; unique per node. Unset: the host name."),
        ConfigKey(
            name: "cluster.public_url", kind: .httpURL, defaultValue: nil,
            flags: ["--cluster-public-url"], envAliases: [], isSecret: false,
            help: "The URL at which clients reach this node's API (8045) directly; joins for a call on this node are redirected to it."),
        ConfigKey(
            name: "cluster.heartbeat_timeout", kind: .integer(min: 2, max: 60), defaultValue: .integer(5),
            flags: ["--cluster-heartbeat-timeout"], envAliases: [], isSecret: false,
            help: "Seconds without a heartbeat after which a node counts as gone and its calls may start elsewhere."),
    ]

    /// The key with this name.
    public static func named(_ name: String) -> ConfigKey? { byName[name] }

    private static let byName: [String: ConfigKey] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// rtcd keys callsctl knows but does not use, with why (for unknown-key messages and import-rtcd).
    public static let rtcdOnly: [String: String] = [
        "api.http.tls.enable": "callsctl serves the API over plain HTTP; put TLS in a reverse proxy in front of it",
        "api.http.tls.cert_file": "callsctl serves the API over plain HTTP; put TLS in a reverse proxy in front of it",
        "api.http.tls.cert_key": "callsctl serves the API over plain HTTP; put TLS in a reverse proxy in front of it",
        "api.security.allow_self_registration": "callsctl has no client registration; joins use signed tokens",
        "api.security.enable_admin": "callsctl's admin API is always on and uses the bearer key in api.security.admin_key_file",
        "api.security.admin_secret_key":
            "callsctl reads the admin key from a file: write it to a file with mode 0600 and set api.security.admin_key_file",
        "api.security.session_cache.expiration_minutes": "callsctl has no login sessions; join tokens carry their own expiry",
        "rtc.enable_ipv6": "not supported by callsctl yet; listen on an IPv6 address with rtc.ice_address_udp/tcp instead",
        "rtc.ice_host_port_override": "not supported by callsctl; candidates advertise rtc.ice_port_udp/tcp",
        "rtc.turn.static_auth_secret":
            "callsctl reads the TURN secret from a file: write it to a file with mode 0600 and set rtc.turn.static_auth_secret_file",
        "rtc.udp_sockets_count": "callsctl sizes its UDP sockets itself",
        "rtc.nack_buffer_size": "callsctl's retransmission buffer is fixed",
        "rtc.nack_disable_copy": "callsctl's retransmission buffer is fixed",
        "store.data_source": "callsctl keeps its data in the data directory (--data-dir), not an rtcd client store",
        "logger.enable_console": "callsctl always logs to standard error",
        "logger.console_json": "callsctl's JSON log lines are logger.log_format = \"json\" (--log-format json)",
        "logger.enable_file": "callsctl logs to standard error only; let systemd or Docker keep the log",
        "logger.file_json": "callsctl logs to standard error only",
        "logger.file_level": "callsctl logs to standard error only",
        "logger.file_location": "callsctl logs to standard error only",
        "logger.enable_color": "callsctl colours its own output only on a terminal (see --no-color)",
    ]
}

/// Edit distance, for "did you mean"; nil once it is sure to be over `limit` (names far apart in length
/// are not compared at all, so a very long unknown key costs nothing).
func levenshtein(_ a: String, _ b: String, limit: Int = Int.max) -> Int? {
    if abs(a.utf8.count - b.utf8.count) > limit { return nil }
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        var rowMin = i
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            rowMin = Swift.min(rowMin, current[j])
        }
        if rowMin > limit { return nil }
        swap(&previous, &current)
    }
    return previous[b.count] <= limit ? previous[b.count] : nil
}

/// Every key name and its last part, for `suggestion(for:)`.
private let suggestionCandidates: [(String, String)] = ConfigKey.all.map {
    ($0.name, String($0.name.split(separator: ".").last ?? ""))
}

/// The closest known key to `name`, when it is close enough to be a typo.
func suggestion(for name: String) -> String? {
    let limit = Swift.max(2, name.utf8.count / 4)
    // Known keys are under 64 bytes: anything much longer is no typo of one (and would be slow to compare).
    guard name.utf8.count <= 128 else { return nil }
    // Also match on the last part: `ice_port` in the wrong section.
    let last = name.split(separator: ".").last.map(String.init) ?? name
    var best: (String, Int)?
    for (candidate, candidateTail) in suggestionCandidates {
        let bound = Swift.min(limit, (best?.1 ?? Int.max) - 1)
        guard bound >= 0 else { break }
        var score = levenshtein(name, candidate, limit: bound) ?? Int.max
        if bound >= 1, let tail = levenshtein(last, candidateTail, limit: bound - 1) {
            score = Swift.min(score, tail + 1)
        }
        if score <= bound { best = (candidate, score) }
    }
    return best?.0
}
