import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `HOST:PORT` helpers that do not need the server module.
enum HostPort {
    static func isIP(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }

    /// A syntactically valid DNS name (letters, digits, hyphens; labels of 1–63; 253 in all).
    static func isHostName(_ s: String) -> Bool {
        let name = s.hasSuffix(".") ? String(s.dropLast()) : s
        guard !name.isEmpty, name.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    /// Splits `host:port`, `[v6]:port` or `:port` (all interfaces). Nil when the shape is wrong.
    static func split(_ text: String) -> (host: String, port: String)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            return (host, String(rest.dropFirst()))
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        if host.contains(":") { return nil }
        return (host, String(text[text.index(after: colon)...]))
    }

    /// A listen address: an IP (or nothing, meaning 0.0.0.0) and a port.
    static func parseListen(_ text: String, allowPortZero: Bool) -> (String, Int)? {
        guard let (host, portText) = split(text), let port = Int(portText),
            (allowPortZero ? 0 : 1)...65535 ~= port
        else { return nil }
        let h = host.isEmpty ? "0.0.0.0" : host
        guard isIP(h) else { return nil }
        return (h, port)
    }

    static func join(_ host: String, _ port: Int) -> String {
        let h = host.isEmpty ? "0.0.0.0" : host
        return h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
    }

    static func isWildcard(_ host: String) -> Bool { host.isEmpty || host == "0.0.0.0" || host == "::" }

    /// Whether two listeners on these hosts would collide on one port.
    static func overlap(_ a: String, _ b: String) -> Bool {
        if isWildcard(a) || isWildcard(b) { return true }
        return a == b
    }

    /// Resolves a host name with the system resolver; nil on success, else the reason.
    static func resolveProblem(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        if rc == 0 { return nil }
        return String(cString: gai_strerror(rc))
    }
}

/// STUN/TURN URL checks (RFC 7064 / RFC 7065 shapes).
enum ICEURL {
    static func isTURN(_ url: String) -> Bool {
        let lower = url.lowercased()
        return lower.hasPrefix("turn:") || lower.hasPrefix("turns:")
    }

    /// The host of a well-formed URL, or every fault found in it (one problem naming them all).
    static func check(_ url: String) -> Result<String, CallsConfig.Problem> {
        let example = "stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349"
        var faults: [String] = []
        var rest = url
        var turn = false
        if let colon = url.firstIndex(of: ":"), ["stun", "stuns", "turn", "turns"].contains(url[..<colon].lowercased()) {
            turn = isTURN(url)
            rest = String(url[url.index(after: colon)...])
        } else {
            faults.append("does not start with stun:, stuns:, turn: or turns:")
            // Check the rest as if the scheme were there: "stun.example.com:3478" still gets its port checked.
            if let colon = url.firstIndex(of: ":"), url[..<colon].allSatisfy({ $0.isLetter }), !url[url.index(after: colon)...].allSatisfy(\.isNumber) {
                rest = String(url[url.index(after: colon)...])
            }
        }
        if rest.hasPrefix("//") {
            faults.append("has // after the scheme")
            rest.removeFirst(2)
        }
        if let q = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: q)...].lowercased()
            rest = String(rest[..<q])
            if !turn {
                faults.append("has a ?query, which STUN URLs do not take")
            } else if query != "transport=udp" && query != "transport=tcp" {
                faults.append("has ?\(query); the only query a TURN URL takes is ?transport=udp or ?transport=tcp")
            }
        }
        var host = rest
        var port: String?
        if rest.hasPrefix("[") {
            if let (h, p) = HostPort.split(rest.hasSuffix("]") ? rest + ":0" : rest), HostPort.isIP(h) {
                host = h
                port = rest.hasSuffix("]") ? nil : p
            } else {
                faults.append("has a malformed IPv6 address")
                host = ""
            }
        } else if let c = rest.lastIndex(of: ":") {
            host = String(rest[..<c])
            port = String(rest[rest.index(after: c)...])
        }
        if let port, Int(port).map({ !(1...65535).contains($0) }) ?? true {
            faults.append("has the port \"\(port)\", which is not a number from 1 to 65535")
        }
        if !rest.hasPrefix("["), !(HostPort.isIP(host) || HostPort.isHostName(host)) {
            faults.append("has \"\(host)\", which is not a host name or IP address")
        }
        guard faults.isEmpty else {
            return .failure(.init(message: faults.joined(separator: "; "), fix: "For example \(example)."))
        }
        return .success(host)
    }
}

/// Secret and other file checks.
enum FileCheck {
    /// Why a file cannot be read, in words.
    static func reason(_ path: String) -> String {
        var st = stat()
        if stat(path, &st) != 0 { return String(cString: strerror(errno)) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return "it is a directory" }
        if access(path, R_OK) != 0 { return String(cString: strerror(errno)) }
        return "it is not UTF-8 text"
    }

    enum Finding {
        case unreadable(String)
        case worldReadable(mode: String)
        case groupReadable(mode: String)
    }

    static func check(_ path: String, secret: Bool) -> Finding? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR, access(path, R_OK) == 0 else {
            return .unreadable(reason(path))
        }
        guard secret else { return nil }
        let mode = String(format: "%04o", Int(st.st_mode & 0o7777))
        if st.st_mode & S_IROTH != 0 { return .worldReadable(mode: mode) }
        if st.st_mode & S_IRGRP != 0 { return .groupReadable(mode: mode) }
        return nil
    }
}

extension CallsConfig {
    /// Checks every value and returns every problem at once.
    ///
    /// Rules: listen addresses parse, with ports 1–65535 (0, "any free port", only from a flag or the
    /// environment); the media TCP port and the API port differ when their addresses overlap; the ICE host
    /// override is an IP or host name (and resolves with `resolve`); STUN servers and ICE URLs are
    /// well-formed; TURN URLs come with a TURN secret file; files are readable. Secret files readable by
    /// everyone are errors (anyone on the machine could join calls or use the TURN server); readable by
    /// the group is a warning.
    /// - Parameter resolve: also resolve host names with the system resolver.
    public func validate(resolve: Bool = false) -> [ConfigDiagnostic] {
        var out: [ConfigDiagnostic] = []
        func report(
            _ severity: ConfigDiagnostic.Severity, _ key: String, _ message: String, allowed: String? = nil,
            fix: String? = nil
        ) {
            let source = self.source(of: key)
            var text = message
            if let allowed { text += "; allowed: \(allowed)" }
            var file: String?
            var line: Int?
            switch source {
            case .file(let path, let l):
                file = path
                line = l
            case .environment(let name): text += " (set by \(name))"
            case .flag(let name): text += " (set by \(name))"
            case .default: break
            }
            out.append(ConfigDiagnostic(severity: severity, file: file, line: line, key: key, message: text, fix: fix))
        }
        func fromOutsideFile(_ key: String) -> Bool {
            switch source(of: key) {
            case .flag, .environment: true
            default: false
            }
        }

        for key in ConfigKey.all {
            guard let value = values[key.name] else { continue }
            switch (key.kind, value) {
            case (.listenAddress, .string(let s)):
                if HostPort.parseListen(s, allowPortZero: fromOutsideFile(key.name)) == nil {
                    report(.error, key.name, "\(value) is not a valid listen address", allowed: key.kind.allowed)
                }
            case (.localIP, .string(let s)):
                if !s.isEmpty && !HostPort.isIP(s) {
                    report(
                        .error, key.name, "\(value) is not an IP address", allowed: key.kind.allowed,
                        fix: "Listen addresses take IP literals; host names belong in rtc.ice_host_override.")
                }
            case (.port, .integer(let n)):
                let low = fromOutsideFile(key.name) ? 0 : 1
                if !(low...65535).contains(n) {
                    report(.error, key.name, "\(n) is not a port number", allowed: key.kind.allowed)
                }
            case (.integer(let min, let max), .integer(let n)):
                if n < min || n > max {
                    report(.error, key.name, "\(n) is out of range", allowed: key.kind.allowed)
                }
            case (.choice(let words), .string(let s)):
                if !words.contains(s.lowercased()) && !(s.lowercased() == "warning" && words.contains("warn")) {
                    report(.error, key.name, "\(value) is not a known value", allowed: key.kind.allowed)
                }
            case (.postgresURL, .string(let s)):
                if !s.isEmpty {
                    do { _ = try PostgresURL(parsing: s) } catch {
                        // The value may hold a password: the message names the key, never the value.
                        report(.error, key.name, "\(error.description)", allowed: key.kind.allowed)
                    }
                }
            case (.httpURL, .string(let s)):
                if let problem = HTTPURLCheck.problem(s) {
                    report(.error, key.name, "\(value) \(problem)", allowed: key.kind.allowed)
                }
            case (.name, .string(let s)):
                if s.isEmpty || s.count > 63 || !s.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) }) {
                    report(.error, key.name, "\(value) is not a node name", allowed: key.kind.allowed)
                }
            case (.host, .string(let s)):
                let host = s.trimmingCharacters(in: .whitespaces)
                if host.isEmpty {
                    report(.error, key.name, "\"\" is empty", allowed: key.kind.allowed)
                } else if !HostPort.isIP(host) && !HostPort.isHostName(host) {
                    report(.error, key.name, "\(value) is not an IP address or host name", allowed: key.kind.allowed)
                } else if resolve && !HostPort.isIP(host), let why = HostPort.resolveProblem(host) {
                    report(
                        .error, key.name, "\(value) does not resolve: \(why)", allowed: key.kind.allowed,
                        fix: "Give an IP address, or a host name this machine can resolve (see /etc/resolv.conf, /etc/hosts).")
                }
            case (.stunServerList, .list(let items)):
                for item in items {
                    let lower = item.lowercased()
                    let url = lower.hasPrefix("stun:") || lower.hasPrefix("stuns:") ? item : "stun:" + item
                    switch ICEURL.check(url) {
                    case .failure(let p):
                        report(.error, key.name, "\(TOMLValue.quoted(item)) \(p.message)", allowed: key.kind.allowed)
                    case .success(let host):
                        if resolve && !HostPort.isIP(host), let why = HostPort.resolveProblem(host) {
                            report(.error, key.name, "\(TOMLValue.quoted(item)): \(host) does not resolve: \(why)")
                        }
                    }
                }
            case (.iceURLList, .list(let items)):
                for item in items {
                    switch ICEURL.check(item) {
                    case .failure(let p):
                        report(.error, key.name, "\(TOMLValue.quoted(item)) \(p.message)", allowed: key.kind.allowed, fix: p.fix)
                    case .success(let host):
                        if resolve && !HostPort.isIP(host), let why = HostPort.resolveProblem(host) {
                            report(.error, key.name, "\(TOMLValue.quoted(item)): \(host) does not resolve: \(why)")
                        }
                    }
                }
            case (.bool, .bool):
                break
            case (.file(let secret), .string(let path)):
                let expanded = (path as NSString).expandingTildeInPath
                switch FileCheck.check(expanded, secret: secret) {
                case .unreadable(let why)?:
                    report(.error, key.name, "\(value) cannot be read: \(why)", allowed: key.kind.allowed)
                case .worldReadable(let mode)?:
                    report(
                        .error, key.name, "\(value) is readable by everyone (mode \(mode))", allowed: key.kind.allowed,
                        fix: "chmod 600 \(path)")
                case .groupReadable(let mode)?:
                    report(
                        .warning, key.name, "\(value) is readable by its group (mode \(mode))",
                        fix: "chmod 600 \(path), unless the group is meant to read it")
                case nil: break
                }
            default:
                report(.error, key.name, "\(value) has the wrong type", allowed: key.kind.allowed)
            }
        }

        // The media TCP listener and the API listener cannot share a TCP port on overlapping addresses.
        if case .integer(let tcpPort)? = values["rtc.ice_port_tcp"], tcpPort != 0,
            case .string(let api)? = values["api.http.listen_address"],
            let (apiHost, apiPort) = HostPort.parseListen(api, allowPortZero: true), apiPort == tcpPort,
            case .string(let tcpHost)? = values["rtc.ice_address_tcp"], HostPort.overlap(tcpHost, apiHost)
        {
            // Point at the line that made the clash: the TCP port if the file set it, else the API address.
            var tcpFromFile = false
            if case .file = source(of: "rtc.ice_port_tcp") { tcpFromFile = true }
            var apiFromFile = false
            if case .file = source(of: "api.http.listen_address") { apiFromFile = true }
            if tcpFromFile || !apiFromFile {
                report(
                    .error, "rtc.ice_port_tcp",
                    "\(tcpPort) is also the TCP port of api.http.listen_address (\"\(api)\", \(source(of: "api.http.listen_address")))",
                    allowed: "a TCP port the API does not use on the same address",
                    fix: "Use 8443 for media and 8045 for the API, as rtcd does.")
            } else {
                report(
                    .error, "api.http.listen_address",
                    "\"\(api)\" uses the media TCP port rtc.ice_port_tcp (\(tcpPort), \(source(of: "rtc.ice_port_tcp")))",
                    allowed: "a TCP port the media listener does not use on the same address",
                    fix: "Use 8443 for media and 8045 for the API, as rtcd does.")
            }
        }

        let turn = turnURLs
        if !turn.isEmpty && turnSecretFile == nil {
            report(
                .error, "rtc.ice_servers", "has TURN URLs but rtc.turn.static_auth_secret_file is not set",
                fix: "Set rtc.turn.static_auth_secret_file to the file with the TURN server's shared secret.")
        }
        if turn.isEmpty && turnSecretFile != nil {
            report(
                .warning, "rtc.turn.static_auth_secret_file", "is set but rtc.ice_servers has no TURN URL; clients get no TURN server",
                fix: "Add a turn: or turns: URL to rtc.ice_servers.")
        }
        if let db = clusterDatabaseURL {
            if clusterPublicURL == nil {
                report(
                    .error, "cluster.public_url", "is not set, and a cluster node needs it: joins for a call on this node are redirected to it",
                    allowed: ConfigKeyKind.httpURL.allowed,
                    fix: "Set cluster.public_url (or --cluster-public-url) to the URL clients reach this node's API at, e.g. https://calls-1.example.com.")
            }
            if let url = try? PostgresURL(parsing: db), url.password != nil, clusterDatabasePasswordFile != nil {
                report(
                    .error, "cluster.database_password_file", "is set, but cluster.database_url holds a password too",
                    fix: "Keep the password in one place: remove it from the URL (postgres://USER@HOST/DB) and keep the file.")
            }
        }
        // Cluster keys without a database URL are not judged here: a generated node's file leaves the URL to
        // CALLSCTL_CLUSTER_DB (it holds a password). `serve` warns when its effective config has them alone.
        return out
    }
}
