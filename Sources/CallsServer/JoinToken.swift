import CallsStore
import Crypto
import Foundation

/// Who may join which call: the claims of a join token.
public struct JoinTokenClaims: Sendable, Equatable {
    /// What a participant may do. Admins may start calls in channels that test mode keeps closed.
    public enum Role: String, Sendable, CaseIterable {
        case user
        case admin
    }

    /// The Mattermost channel the call belongs to.
    public var channel: ChannelID
    /// The participant's user name (shown in logs).
    public var user: String
    public var role: Role
    /// Issued at (seconds since 1970, UTC).
    public var issuedAt: Int64
    /// Expires at (seconds since 1970, UTC).
    public var expiresAt: Int64

    public init(channel: ChannelID, user: String, role: Role = .user, issuedAt: Int64, expiresAt: Int64) {
        self.channel = channel
        self.user = user
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    /// Claims valid from `now` for `ttl` seconds.
    public init(channel: ChannelID, user: String, role: Role = .user, ttl: Int64, now: Date = Date()) {
        let iat = Int64(now.timeIntervalSince1970.rounded(.down))
        self.init(channel: channel, user: user, role: role, issuedAt: iat, expiresAt: iat + ttl)
    }

    public var expiryDate: Date { Date(timeIntervalSince1970: TimeInterval(expiresAt)) }
}

/// Why a join token was refused. Each ``Code`` has its own message saying what is wrong and how to fix it.
public struct JoinTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not three base64url parts of JSON.
        case malformed
        /// The header names an algorithm other than HS256 (including "none").
        case unsupportedAlgorithm = "unsupported_algorithm"
        /// The signature does not match: forged, altered, or signed with another secret.
        case badSignature = "bad_signature"
        /// `exp` is in the past (beyond the leeway).
        case expired
        /// Signed correctly but a claim is missing or invalid.
        case invalidClaims = "invalid_claims"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public static func == (lhs: JoinTokenError, rhs: JoinTokenError) -> Bool { lhs.code == rhs.code }
}

/// Signs and verifies join tokens: compact JWTs (`header.payload.signature`, base64url without padding)
/// with HMAC-SHA256 over the server's secret.
public struct JoinTokenSigner: Sendable {
    /// Clock skew tolerated on `exp` and `iat`.
    public static let leewaySeconds: Int64 = 30
    /// Tokens longer than this are refused before any decoding.
    public static let maximumLength = 8192

    private let secret: [UInt8]

    /// - Parameter secret: the HMAC key (the decoded bytes of the token secret file).
    public init(secret: [UInt8]) {
        self.secret = secret
    }

    private var key: SymmetricKey { SymmetricKey(data: secret) }

    /// The compact token for `claims`.
    public func sign(_ claims: JoinTokenClaims) -> String {
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let payload =
            "{\"channel\":\(jsonQuote(claims.channel.rawValue)),\"user\":\(jsonQuote(claims.user)),"
            + "\"role\":\(jsonQuote(claims.role.rawValue)),\"iat\":\(claims.issuedAt),\"exp\":\(claims.expiresAt)}"
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    /// Checks structure, algorithm, signature, expiry and claims, in that order.
    /// - Throws: ``JoinTokenError`` with a distinct code for each reason.
    public func verify(_ token: String, now: Date = Date()) throws(JoinTokenError) -> JoinTokenClaims {
        let fix = "Create a new one with `callsctl token create --channel ID --user NAME`."
        guard token.utf8.count <= Self.maximumLength else {
            throw JoinTokenError(.malformed, "the token is \(token.utf8.count) bytes long, more than \(Self.maximumLength). \(fix)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw JoinTokenError(
                .malformed,
                "the token has \(parts.count) part\(parts.count == 1 ? "" : "s") separated by dots, not 3 (header.payload.signature); it may have been cut when copied. \(fix)"
            )
        }
        guard let headerBytes = Base64URL.decode(parts[0]) else {
            throw JoinTokenError(.malformed, "the token's header is not base64url. \(fix)")
        }
        guard let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any] else {
            throw JoinTokenError(.malformed, "the token's header is not a JSON object. \(fix)")
        }
        guard let alg = header["alg"] as? String else {
            throw JoinTokenError(.malformed, "the token's header has no \"alg\". \(fix)")
        }
        guard alg == "HS256" else {
            throw JoinTokenError(
                .unsupportedAlgorithm,
                "the token is signed with \"\(alg)\"; only HS256 tokens signed with this server's secret are accepted. \(fix)")
        }
        guard let signature = Base64URL.decode(parts[2]) else {
            throw JoinTokenError(.malformed, "the token's signature is not base64url. \(fix)")
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        // isValidAuthenticationCode compares in constant time.
        guard signature.count == SHA256.byteCount,
            HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key)
        else {
            throw JoinTokenError(
                .badSignature,
                "the token's signature does not match this server's secret: it was altered, forged, or created with another secret (another data directory or --token-secret-file). \(fix)"
            )
        }
        guard let payloadBytes = Base64URL.decode(parts[1]),
            let payload = try? JSONDecoder().decode(RawClaims.self, from: Data(payloadBytes))
        else {
            throw JoinTokenError(.malformed, "the token's payload is not a base64url JSON object. \(fix)")
        }
        let claims = try Self.claims(from: payload, fix: fix)
        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        if claims.expiresAt + Self.leewaySeconds < nowSeconds {
            throw JoinTokenError(
                .expired,
                "the token expired at \(Self.iso(claims.expiresAt)) (\(nowSeconds - claims.expiresAt) s ago). Create a new one, with a longer --ttl if needed: `callsctl token create --channel \(claims.channel) --user \(claims.user) --ttl 3600`."
            )
        }
        if claims.issuedAt > nowSeconds + Self.leewaySeconds {
            throw JoinTokenError(
                .invalidClaims,
                "the token was issued in the future (iat \(Self.iso(claims.issuedAt))); check the clocks of this server and the token's issuer.")
        }
        return claims
    }

    private static func claims(from payload: RawClaims, fix: String) throws(JoinTokenError) -> JoinTokenClaims {
        guard let channelText = payload.channel else {
            throw JoinTokenError(.invalidClaims, "the token has no \"channel\" claim (a string). \(fix)")
        }
        let channel: ChannelID
        do { channel = try ChannelID(validating: channelText) } catch {
            throw JoinTokenError(.invalidClaims, "the token's \"channel\" claim is an \(error.description)")
        }
        guard let user = payload.user, !user.isEmpty else {
            throw JoinTokenError(.invalidClaims, "the token has no \"user\" claim (a non-empty string). \(fix)")
        }
        let roleText = payload.role ?? "user"
        guard let role = JoinTokenClaims.Role(rawValue: roleText) else {
            throw JoinTokenError(.invalidClaims, "the token's \"role\" is \"\(roleText)\"; it must be user or admin. \(fix)")
        }
        guard let exp = payload.exp else {
            throw JoinTokenError(.invalidClaims, "the token has no numeric \"exp\" (expiry) claim. \(fix)")
        }
        guard let iat = payload.iat else {
            throw JoinTokenError(.invalidClaims, "the token has no numeric \"iat\" (issued at) claim. \(fix)")
        }
        return JoinTokenClaims(channel: channel, user: user, role: role, issuedAt: iat, expiresAt: exp)
    }

    /// The payload as sent: every claim optional and loosely typed, so a wrong type reads as "missing".
    private struct RawClaims: Decodable {
        var channel: String?
        var user: String?
        var role: String?
        var iat: Int64?
        var exp: Int64?

        enum CodingKeys: String, CodingKey { case channel, user, role, iat, exp }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            channel = try? c.decodeIfPresent(String.self, forKey: .channel)
            user = try? c.decodeIfPresent(String.self, forKey: .user)
            role = try? c.decodeIfPresent(String.self, forKey: .role)
            iat = Self.seconds(c, .iat)
            exp = Self.seconds(c, .exp)
        }

        private static func seconds(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) -> Int64? {
            if let i = try? c.decodeIfPresent(Int64.self, forKey: key) { return i }
            if let d = try? c.decodeIfPresent(Double.self, forKey: key), d.isFinite, abs(d) < 1e15 {
                return Int64(d.rounded(.down))
            }
            return nil
        }
    }

    private static func iso(_ seconds: Int64) -> String {
        Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(
            Date.ISO8601FormatStyle(timeZone: .gmt))
    }
}

/// RFC 4648 §5 base64url without padding, strict on decode.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var s = ""
        s.reserveCapacity(text.utf8.count + 3)
        for c in text.unicodeScalars {
            switch c {
            case "A"..."Z", "a"..."z", "0"..."9": s.unicodeScalars.append(c)
            case "-": s += "+"
            case "_": s += "/"
            default: return nil
            }
        }
        if s.count % 4 == 1 { return nil }
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { Array($0) }
    }
}

public func jsonQuote(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
