import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// STUN and TURN URLs handed to clients in `joined`, with TURN REST credentials made per join.
public struct ICEServerSettings: Sendable {
    public var stunURLs: [String]
    public var turnURLs: [String]
    /// The TURN server's shared secret (coturn `static-auth-secret`), used as the HMAC key as-is.
    public var turnSecret: [UInt8]?
    /// Lifetime of a TURN credential, in seconds.
    public var turnTTL: Int

    public init(stunURLs: [String] = [], turnURLs: [String] = [], turnSecret: [UInt8]? = nil, turnTTL: Int = 86400) {
        self.stunURLs = stunURLs
        self.turnURLs = turnURLs
        self.turnSecret = turnSecret
        self.turnTTL = turnTTL
    }

    public var isEmpty: Bool { stunURLs.isEmpty && turnURLs.isEmpty }

    /// The list for one join by `user` at `now`.
    func servers(user: String, now: Date = Date()) -> [ICEServerInfo] {
        var out: [ICEServerInfo] = []
        if !stunURLs.isEmpty { out.append(ICEServerInfo(urls: stunURLs)) }
        if !turnURLs.isEmpty, let turnSecret {
            let c = Self.turnCredential(secret: turnSecret, user: user, ttl: turnTTL, now: now)
            out.append(ICEServerInfo(urls: turnURLs, username: c.username, credential: c.password))
        }
        return out
    }

    /// TURN REST credentials (draft-uberti-behave-turn-rest): username `expiry:user`, password
    /// base64(HMAC-SHA1(secret, username)).
    public static func turnCredential(secret: [UInt8], user: String, ttl: Int, now: Date = Date())
        -> (username: String, password: String)
    {
        let expiry = Int64(now.timeIntervalSince1970) + Int64(ttl)
        let username = "\(expiry):\(user)"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: SymmetricKey(data: secret))
        return (username, Data(mac).base64EncodedString())
    }

    /// Checks a STUN (`stun:`/`stuns:`) or TURN (`turn:`/`turns:`) URL (RFC 7064, RFC 7065).
    /// - Returns: nil when valid, else what is wrong.
    public static func problem(url: String, turn: Bool) -> String? {
        let schemes = turn ? ["turn", "turns"] : ["stun", "stuns"]
        let example = turn ? "turn:turn.example.com:3478?transport=udp or turns:turn.example.com:5349" : "stun:stun.example.com:3478"
        guard let colon = url.firstIndex(of: ":"), schemes.contains(String(url[..<colon]).lowercased()) else {
            return "must start with \(schemes.map { $0 + ":" }.joined(separator: " or ")) (for example \(example))"
        }
        var rest = String(url[url.index(after: colon)...])
        if rest.hasPrefix("//") { return "has no // after the scheme (write \(example))" }
        if let q = rest.firstIndex(of: "?") {
            let query = String(rest[rest.index(after: q)...])
            rest = String(rest[..<q])
            guard turn else { return "a STUN URL takes no ?query" }
            guard ["transport=udp", "transport=tcp"].contains(query.lowercased()) else {
                return "the only query a TURN URL takes is ?transport=udp or ?transport=tcp, not ?\(query)"
            }
        }
        var host = rest
        var port: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return "has an IPv6 address without the closing ]" }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return "has text after the IPv6 address" }
                port = after.dropFirst()
            }
            guard host.contains(":") else { return "has brackets around something that is not an IPv6 address" }
        } else if let c = rest.lastIndex(of: ":") {
            host = String(rest[..<c])
            port = rest[rest.index(after: c)...]
        }
        if host.isEmpty { return "has no host (for example \(example))" }
        if !rest.hasPrefix("["),
            !host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
        {
            return "has an invalid host \"\(host)\""
        }
        if let port {
            guard let n = Int(port), (1...65535).contains(n) else { return "has an invalid port \"\(port)\" (1-65535)" }
        }
        return nil
    }
}

/// Reads the TURN shared secret file: its text, trimmed of surrounding white space, is the HMAC key.
public enum TURNSecret {
    public static func load(path: String) throws(TokenSecretError) -> (secret: [UInt8], warnings: [String]) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            throw TokenSecretError(
                "cannot read the TURN secret file \(path): \(String(cString: strerror(code))). It must hold the TURN server's shared secret (coturn static-auth-secret)."
            )
        }
        guard (st.st_mode & S_IFMT) == S_IFREG, let data = FileManager.default.contents(atPath: path) else {
            throw TokenSecretError("cannot read the TURN secret file \(path): not a readable regular file.")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw TokenSecretError("the TURN secret file \(path) is empty; it must hold the TURN server's shared secret.")
        }
        var warnings: [String] = []
        if st.st_mode & 0o077 != 0 {
            warnings.append(
                "the TURN secret \(path) can be read by other users (mode \(String(st.st_mode & 0o777, radix: 8))); anyone who reads it can use the TURN server. Fix: chmod 600 \(path)"
            )
        }
        return (Array(text.utf8), warnings)
    }
}
