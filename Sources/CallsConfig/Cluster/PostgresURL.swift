import Foundation

/// A PostgreSQL connection URL, `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]`, as libpq writes it.
///
/// `redacted` (and `description`) never hold the password: they are what messages and logs print.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init(user: String, password: String?, host: String, port: Int = 5432, database: String, sslMode: SSLMode = .prefer) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }

    public init(parsing text: String) throws(ParseError) {
        let example = "like postgres://callsctl@db.example.com:5432/mattermost?sslmode=require"
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw ParseError(description: "is not a URL; give one \(example)")
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw ParseError(description: "has the scheme \(scheme)://; use postgres:// (\(example))")
        }
        var rest = Substring(trimmed[schemeEnd.upperBound...])
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw ParseError(description: "names no user; give one before the host, \(example)")
        }
        let userInfo = rest[..<at]
        var hostPart = rest[rest.index(after: at)...]
        var database = ""
        if let slash = hostPart.firstIndex(of: "/") {
            database = String(hostPart[hostPart.index(after: slash)...]).removingPercentEncoding ?? ""
            hostPart = hostPart[..<slash]
        }
        if let colon = userInfo.firstIndex(of: ":") {
            user = String(userInfo[..<colon]).removingPercentEncoding ?? ""
            password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncoding
        } else {
            user = String(userInfo).removingPercentEncoding ?? ""
            password = nil
        }
        guard !user.isEmpty else { throw ParseError(description: "names no user; give one before the host, \(example)") }
        // Host: a name, an IPv4 address or [IPv6], then an optional :port.
        var portText: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else {
                throw ParseError(description: "has an IPv6 host without its closing ]")
            }
            host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw ParseError(description: "has \(after) after the IPv6 host")
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            host = String(hostPart[..<colon])
            portText = hostPart[hostPart.index(after: colon)...]
        } else {
            host = String(hostPart)
        }
        guard !host.isEmpty else { throw ParseError(description: "names no host, \(example)") }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
            throw ParseError(description: "has the host \"\(host)\", which is not a host name or IP address")
        }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ParseError(description: "has the port \"\(portText)\"; use 1-65535 (PostgreSQL's is 5432)")
            }
            port = p
        } else {
            port = 5432
        }
        guard !database.isEmpty else {
            throw ParseError(description: "names no database; add /DATABASE after the host, \(example)")
        }
        self.database = database
        sslMode = .prefer
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0])
            let value = kv.count > 1 ? String(kv[1]) : ""
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw ParseError(
                        description: "has sslmode=\(value); use one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "application_name", "connect_timeout":
                continue
            default:
                throw ParseError(description: "has the parameter \"\(key)\", which callsctl does not use; only sslmode is read")
            }
        }
    }

    /// The URL without the password, for messages and logs.
    public var redacted: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let u = user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? user
        let d = database.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? database
        return "postgres://\(u)@\(h):\(port)/\(d)" + (sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)")
    }

    public var description: String { redacted }

    /// The text as `config show` prints it: the password (if any) replaced.
    public static func redact(_ text: String) -> String {
        guard let url = try? PostgresURL(parsing: text) else { return "<redacted>" }
        guard url.password != nil else { return url.redacted }
        let h = url.host.contains(":") ? "[\(url.host)]" : url.host
        return "postgres://\(url.user):<redacted>@\(h):\(url.port)/\(url.database)"
            + (url.sslMode == .prefer ? "" : "?sslmode=\(url.sslMode.rawValue)")
    }
}

/// Checks an http(s) base URL such as a node's public URL.
public enum HTTPURLCheck {
    /// Nil when `text` is an http(s) URL with a host, an optional port, and no query or fragment.
    public static func problem(_ text: String) -> String? {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return "is not an http(s) URL"
        }
        guard let host = url.host, !host.isEmpty else { return "has no host" }
        if url.query != nil || url.fragment != nil { return "has a query or fragment; give the base URL only" }
        if let port = url.port, !(1...65535).contains(port) { return "has a port out of 1-65535" }
        return nil
    }
}
