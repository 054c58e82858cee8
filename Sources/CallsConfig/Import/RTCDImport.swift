import Foundation

/// Converts an rtcd `config.toml` (and its `RTCD_...` environment) into a callsctl.toml.
public struct RTCDImport: Sendable {
    /// One rtcd setting that has no place in callsctl.toml, and why.
    public struct Dropped: Sendable, Hashable {
        public var key: String
        /// `file:line` or the environment variable it came from.
        public var origin: String
        public var reason: String
    }

    /// One rtcd setting carried over.
    public struct Mapped: Sendable, Hashable {
        public var rtcdKey: String
        public var key: String
        public var origin: String
    }

    /// The callsctl.toml text.
    public var toml: String
    public var mapped: [Mapped]
    public var dropped: [Dropped]
    /// rtcd's inline TURN secret, when it had one and `turnSecretFile` was given: write it to that file
    /// (mode 0600). Never print it.
    public var turnSecret: String?
    /// rtcd's admin secret, when rtcd had its admin on, the secret works as a callsctl admin key (16 or more
    /// characters, no spaces) and `adminKeyFile` was given: write it to that file (mode 0600). Never print it.
    public var adminKey: String?

    /// rtcd's environment names (envconfig, prefix RTCD) and the keys they set (rtcd `docs/env_config.md`).
    public static let environmentKeys: [String: String] = [
        "RTCD_API_HTTP_LISTENADDRESS": "api.http.listen_address",
        "RTCD_API_HTTP_TLS_ENABLE": "api.http.tls.enable",
        "RTCD_API_HTTP_TLS_CERTFILE": "api.http.tls.cert_file",
        "RTCD_API_HTTP_TLS_CERTKEY": "api.http.tls.cert_key",
        "RTCD_API_SECURITY_ALLOWSELFREGISTRATION": "api.security.allow_self_registration",
        "RTCD_API_SECURITY_ENABLEADMIN": "api.security.enable_admin",
        "RTCD_API_SECURITY_ADMINSECRETKEY": "api.security.admin_secret_key",
        "RTCD_API_SECURITY_SESSIONCACHE_EXPIRATIONMINUTES": "api.security.session_cache.expiration_minutes",
        "RTCD_RTC_ICEADDRESSUDP": "rtc.ice_address_udp",
        "RTCD_RTC_ICEPORTUDP": "rtc.ice_port_udp",
        "RTCD_RTC_ICEADDRESSTCP": "rtc.ice_address_tcp",
        "RTCD_RTC_ICEPORTTCP": "rtc.ice_port_tcp",
        "RTCD_RTC_ENABLEIPV6": "rtc.enable_ipv6",
        "RTCD_RTC_ICEHOSTOVERRIDE": "rtc.ice_host_override",
        "RTCD_RTC_ICEHOSTPORTOVERRIDE": "rtc.ice_host_port_override",
        "RTCD_RTC_ICESERVERS": "rtc.ice_servers",
        "RTCD_RTC_TURNCONFIG_STATICAUTHSECRET": "rtc.turn.static_auth_secret",
        "RTCD_RTC_TURNCONFIG_CREDENTIALSEXPIRATIONMINUTES": "rtc.turn.credentials_expiration_minutes",
        "RTCD_RTC_UDPSOCKETSCOUNT": "rtc.udp_sockets_count",
        "RTCD_RTC_NACKBUFFERSIZE": "rtc.nack_buffer_size",
        "RTCD_RTC_NACKDISABLECOPY": "rtc.nack_disable_copy",
        "RTCD_STORE_DATASOURCE": "store.data_source",
        "RTCD_LOGGER_ENABLECONSOLE": "logger.enable_console",
        "RTCD_LOGGER_CONSOLEJSON": "logger.console_json",
        "RTCD_LOGGER_CONSOLELEVEL": "logger.console_level",
        "RTCD_LOGGER_ENABLEFILE": "logger.enable_file",
        "RTCD_LOGGER_FILEJSON": "logger.file_json",
        "RTCD_LOGGER_FILELEVEL": "logger.file_level",
        "RTCD_LOGGER_FILELOCATION": "logger.file_location",
        "RTCD_LOGGER_ENABLECOLOR": "logger.enable_color",
    ]

    /// rtcd keys whose value is a secret: never copied into messages.
    static let secretKeys: Set<String> = ["api.security.admin_secret_key", "rtc.turn.static_auth_secret"]

    /// Converts. Throws the TOML syntax error of the rtcd file, if any.
    /// - Parameters:
    ///   - text: rtcd's config.toml, or nil to convert the environment alone.
    ///   - path: the file name for origins.
    ///   - environment: the process environment; only `RTCD_...` names are read.
    ///   - turnSecretFile: where the caller will write rtcd's inline TURN secret; the config then points there.
    ///     Nil drops the secret (the output says how to add it).
    ///   - adminKeyFile: where the caller will write rtcd's admin secret as callsctl's admin key.
    public init(
        text: String?, path: String, environment: [String: String], turnSecretFile: String? = nil,
        adminKeyFile: String? = nil
    ) throws(TOMLError) {
        var settings: [(key: String, value: TOMLValue, origin: String)] = []
        if let text {
            let doc = try TOMLDocument(parsing: text, file: path)
            for entry in doc.entries { settings.append((entry.key, entry.value, "\(path):\(entry.line)")) }
        }
        var dropped: [Dropped] = []
        for name in environment.keys.sorted() where name.hasPrefix("RTCD_") || name == "PERF_PROFILES" {
            let raw = environment[name]!
            guard let key = Self.environmentKeys[name] else {
                let reason =
                    name == "RTCD_RTC_DTLS_INSECURE_SKIP_HELLOVERIFY"
                    ? "callsctl always does the DTLS HelloVerify exchange"
                    : name == "PERF_PROFILES" ? "callsctl has no pprof endpoints" : "not an rtcd setting callsctl knows"
                dropped.append(Dropped(key: name, origin: name, reason: reason))
                continue
            }
            settings.removeAll { $0.key == key }  // the environment overrides the file, as in rtcd
            settings.append((key, Self.environmentValue(raw, for: key), name))
        }

        var out: [String: [(key: String, value: ConfigValue, comment: String?)]] = [:]
        var mapped: [Mapped] = []
        var notes: [String] = []
        var secret: String?
        var adminSecret: (value: String, origin: String)?
        var enableAdmin: (on: Bool, origin: String)?
        func put(_ key: String, _ value: ConfigValue, from rtcdKey: String, origin: String, comment: String? = nil) {
            let spec = ConfigKey.named(key)!
            out[spec.section, default: []].removeAll { $0.key == spec.keyInSection }
            out[spec.section, default: []].append((spec.keyInSection, value, comment))
            mapped.append(Mapped(rtcdKey: rtcdKey, key: key, origin: origin))
        }
        func drop(_ key: String, _ origin: String, _ reason: String) {
            dropped.append(Dropped(key: key, origin: origin, reason: reason))
        }

        for (key, value, origin) in settings {
            switch (key, value) {
            case ("api.http.listen_address", .string(let s)):
                let text = s.hasPrefix(":") ? "0.0.0.0" + s : s
                if HostPort.parseListen(text, allowPortZero: false) != nil {
                    put(key, .string(text), from: key, origin: origin)
                } else {
                    drop(key, origin, "\(TOMLValue.quoted(s)) is not HOST:PORT with an IP address; callsctl listens on IP literals")
                }
            case ("rtc.ice_address_udp", .string(let s)), ("rtc.ice_address_tcp", .string(let s)):
                let list = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if list.isEmpty {
                    put(key, .string(""), from: key, origin: origin)
                } else {
                    put(key, .string(list[0]), from: key, origin: origin)
                    if list.count > 1 {
                        drop(key, origin, "callsctl listens on one address; kept \(list[0]), dropped \(list.dropFirst().joined(separator: ", "))")
                    }
                }
            case ("rtc.ice_port_udp", .integer(let n)), ("rtc.ice_port_tcp", .integer(let n)),
                ("rtc.turn.credentials_expiration_minutes", .integer(let n)):
                put(key, .integer(Int(clamping: n)), from: key, origin: origin)
            case ("rtc.ice_host_override", .string(let s)):
                if s.isEmpty { continue }
                if s.contains("/") || s.contains(",") {
                    drop(key, origin, "\(TOMLValue.quoted(s)) maps several addresses (ext/int); callsctl advertises one address or host name")
                } else {
                    put(key, .string(s), from: key, origin: origin)
                }
            case ("rtc.ice_servers", .array(let items)):
                var urls: [String] = []
                var hadCredentials = false
                for item in items {
                    switch item {
                    case .string(let s): urls.append(s)
                    case .inlineTable(let t):
                        if t["username"] != nil || t["credential"] != nil { hadCredentials = true }
                        if case .array(let u)? = t["urls"] {
                            for case .string(let s) in u { urls.append(s) }
                        } else if case .string(let s)? = t["urls"] {
                            urls.append(s)
                        }
                    default: break
                    }
                }
                put(key, .list(urls), from: key, origin: origin)
                if hadCredentials {
                    drop(
                        "rtc.ice_servers (username/credential)", origin,
                        "callsctl makes TURN credentials from rtc.turn.static_auth_secret_file; fixed credentials are not copied")
                }
            case ("rtc.turn.static_auth_secret", .string(let s)):
                if s.isEmpty { continue }
                if let turnSecretFile {
                    put("rtc.turn.static_auth_secret_file", .string(turnSecretFile), from: key, origin: origin)
                    secret = s
                } else {
                    drop(key, origin, ConfigKey.rtcdOnly[key]!)
                    notes.append("rtc.turn.static_auth_secret_file")
                }
            case ("api.security.admin_secret_key", .string(let s)):
                if !s.isEmpty { adminSecret = (s, origin) }
            case ("api.security.enable_admin", .bool(let b)):
                enableAdmin = (b, origin)
            case ("api.security.enable_admin", .string(let text)):
                enableAdmin = (["1", "true", "t", "yes"].contains(text.lowercased()), origin)
            case ("logger.console_level", .string(let s)):
                let level = s.lowercased() == "warning" ? "warn" : s.lowercased()
                if ["debug", "info", "warn", "error"].contains(level) {
                    put(key, .string(level), from: key, origin: origin)
                } else {
                    drop(key, origin, "\(TOMLValue.quoted(s)) is not a level callsctl knows (debug, info, warn, error)")
                }
            default:
                if let why = ConfigKey.rtcdOnly[key] {
                    drop(key, origin, why)
                } else if ConfigKey.named(key) != nil {
                    let shown = Self.secretKeys.contains(key) ? "the value" : value.tomlText
                    drop(key, origin, "\(shown) is \(value.typeDescription), which rtcd does not take here either")
                } else {
                    drop(key, origin, "not an rtcd setting callsctl knows")
                }
            }
        }

        // rtcd's admin password (Basic auth) becomes callsctl's admin key (Bearer) when it can serve as one.
        var key: String?
        if let adminSecret {
            let usable = adminSecret.value.count >= 16 && !adminSecret.value.contains(where: { $0.isWhitespace })
            if enableAdmin?.on != true {
                drop(
                    "api.security.admin_secret_key", adminSecret.origin,
                    "rtcd's admin was off (api.security.enable_admin is not true); callsctl's admin API generates its own key")
            } else if !usable {
                drop(
                    "api.security.admin_secret_key", adminSecret.origin,
                    "too short or has spaces for a callsctl admin key (16 or more characters, no spaces); callsctl generates one")
            } else if let adminKeyFile {
                put("api.security.admin_key_file", .string(adminKeyFile), from: "api.security.admin_secret_key", origin: adminSecret.origin)
                key = adminSecret.value
            } else {
                drop("api.security.admin_secret_key", adminSecret.origin, ConfigKey.rtcdOnly["api.security.admin_secret_key"]!)
            }
        }
        if let enableAdmin, key == nil {
            drop("api.security.enable_admin", enableAdmin.origin, ConfigKey.rtcdOnly["api.security.enable_admin"]!)
        }

        var lines = [
            "# callsctl.toml converted from the rtcd config \(text == nil ? "environment" : path) by `callsctl config import-rtcd`.",
            "# Keys are documented in docs/configuration.md; check it with `callsctl config validate FILE`.",
        ]
        for section in ["api", "rtc", "limits", "service", "logger"] {
            let keys = out[section] ?? []
            let wantsTurnNote = section == "rtc" && notes.contains("rtc.turn.static_auth_secret_file")
            guard !keys.isEmpty || wantsTurnNote else { continue }
            lines.append("")
            lines.append("[\(section)]")
            for (key, value, comment) in keys {
                lines.append("\(key) = \(value.tomlText)" + (comment.map { "  # \($0)" } ?? ""))
            }
            if wantsTurnNote {
                lines.append("# rtcd had the TURN secret inline. Write it to a file only you can read (chmod 600) and set:")
                lines.append("# turn.static_auth_secret_file = \"/etc/callsctl/turn-secret\"")
            }
        }
        toml = lines.joined(separator: "\n") + "\n"
        self.mapped = mapped
        self.dropped = dropped
        turnSecret = secret
        adminKey = key
    }

    /// An `RTCD_...` value typed like the TOML key it stands for.
    static func environmentValue(_ raw: String, for key: String) -> TOMLValue {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        switch key {
        case "rtc.ice_servers":
            if let data = trimmed.data(using: .utf8), let json = try? JSONSerialization.jsonObject(with: data) as? [Any] {
                return .array(
                    json.compactMap { item -> TOMLValue? in
                        if let s = item as? String { return .string(s) }
                        if let d = item as? [String: Any] {
                            var t: [String: TOMLValue] = [:]
                            if let urls = d["urls"] as? [String] { t["urls"] = .array(urls.map { .string($0) }) }
                            if let url = d["urls"] as? String { t["urls"] = .string(url) }
                            if d["username"] != nil { t["username"] = .string("") }
                            if d["credential"] != nil { t["credential"] = .string("") }
                            return .inlineTable(t)
                        }
                        return nil
                    })
            }
            return .array(trimmed.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
        case "rtc.ice_port_udp", "rtc.ice_port_tcp", "rtc.turn.credentials_expiration_minutes":
            if let n = Int64(trimmed) { return .integer(n) }
            return .string(raw)
        default:
            return .string(raw)
        }
    }
}
