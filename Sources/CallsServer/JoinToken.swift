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
    /// Not valid before (seconds since 1970, UTC), if the issuer set `nbf`.
    public var notBefore: Int64?

    public init(
        channel: ChannelID, user: String, role: Role = .user, issuedAt: Int64, expiresAt: Int64, notBefore: Int64? = nil
    ) {
        self.channel = channel
        self.user = user
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
    }

    /// Claims valid from `now` for `ttl` seconds. The expiry saturates instead of overflowing; a token whose expiry
    /// is past ``JoinTokenSigner/maximumTimestamp`` is refused when verified.
    public init(channel: ChannelID, user: String, role: Role = .user, ttl: Int64, now: Date = Date()) {
        let iat = JoinTokenSigner.seconds(now)
        let (sum, overflow) = iat.addingReportingOverflow(ttl)
        let exp = overflow ? (ttl > 0 ? Int64.max : Int64.min) : sum
        self.init(channel: channel, user: user, role: role, issuedAt: iat, expiresAt: exp)
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
        /// `nbf` is in the future (beyond the leeway).
        case notYetValid = "not_yet_valid"
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
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
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
            + "\"role\":\(jsonQuote(claims.role.rawValue)),\"iat\":\(claims.issuedAt),\"exp\":\(claims.expiresAt)"
            + (claims.notBefore.map { ",\"nbf\":\($0)" } ?? "") + "}"
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    /// Checks structure, algorithm, signature, claims, expiry, issue time and not-before, in that order.
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
            throw JoinTokenError(
                .malformed,
                "the token's header is not canonical base64url (A-Z a-z 0-9 - _, no padding, unused bits zero). \(fix)")
        }
        let header: [String: JSONLite]
        do {
            guard case .object(let fields) = try JSONLite.parse(bytes: headerBytes) else {
                throw JoinTokenError(.malformed, "the token's header is not a JSON object. \(fix)")
            }
            header = fields
        } catch let error as JoinTokenError {
            throw error
        } catch {
            throw JoinTokenError(.malformed, "the token's header is not valid JSON: \(error). \(fix)")
        }
        guard case .string(let alg)? = header["alg"] else {
            throw JoinTokenError(.malformed, "the token's header has no \"alg\" string. \(fix)")
        }
        guard alg == "HS256" else {
            throw JoinTokenError(
                .unsupportedAlgorithm,
                "the token is signed with \(jsonQuote(UntrustedText.forLog(alg, limit: 32))); only HS256 tokens signed with this server's secret are accepted. \(fix)")
        }
        guard let signature = Base64URL.decode(parts[2]) else {
            // Refused like any other wrong signature: a cut or altered signature often stops being canonical.
            throw JoinTokenError(
                .badSignature,
                "the token's signature is not canonical base64url (A-Z a-z 0-9 - _, no padding, unused bits zero): it was altered or cut when copied. \(fix)")
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
        guard let payloadBytes = Base64URL.decode(parts[1]) else {
            throw JoinTokenError(.malformed, "the token's payload is not canonical base64url. \(fix)")
        }
        let payload: [String: JSONLite]
        do {
            guard case .object(let fields) = try JSONLite.parse(bytes: payloadBytes) else {
                throw JoinTokenError(.malformed, "the token's payload is not a JSON object. \(fix)")
            }
            payload = fields
        } catch let error as JoinTokenError {
            throw error
        } catch {
            throw JoinTokenError(.malformed, "the token's payload is not valid JSON: \(error). \(fix)")
        }
        let claims = try Self.claims(from: payload, fix: fix)
        let nowSeconds = Self.seconds(now)
        // Every time claim is within 0...maximumTimestamp and nowSeconds is clamped to it, so none of this overflows.
        if claims.expiresAt + Self.leewaySeconds < nowSeconds {
            throw JoinTokenError(
                .expired,
                "the token expired at \(Self.iso(claims.expiresAt)) (\(nowSeconds - claims.expiresAt) s ago). Create a new one, with a longer --ttl if needed: `callsctl token create --channel \(claims.channel) --user NAME --ttl 3600`."
            )
        }
        if claims.issuedAt > nowSeconds + Self.leewaySeconds {
            throw JoinTokenError(
                .invalidClaims,
                "the token was issued in the future (iat \(Self.iso(claims.issuedAt))); check the clocks of this server and the token's issuer.")
        }
        if let notBefore = claims.notBefore, notBefore > nowSeconds + Self.leewaySeconds {
            throw JoinTokenError(
                .notYetValid,
                "the token is not valid before \(Self.iso(notBefore)) (nbf, \(notBefore - nowSeconds) s from now); use it then, or check the clocks of this server and the token's issuer.")
        }
        return claims
    }

    /// Latest time claim accepted: 9999-12-31T23:59:59Z. Larger values (up to 2^63-1 or 1e300) are refused as
    /// invalid claims, so that adding the leeway or subtracting two claims can never overflow.
    public static let maximumTimestamp: Int64 = 253_402_300_799

    /// `date` in whole seconds since 1970, clamped to 0...maximumTimestamp.
    static func seconds(_ date: Date) -> Int64 {
        let t = date.timeIntervalSince1970.rounded(.down)
        guard t.isFinite else { return t > 0 ? maximumTimestamp : 0 }
        return Int64(min(max(t, 0), Double(maximumTimestamp)))
    }

    private static func claims(from payload: [String: JSONLite], fix: String) throws(JoinTokenError) -> JoinTokenClaims {
        guard case .string(let channelText)? = payload["channel"] else {
            throw JoinTokenError(.invalidClaims, "the token has no \"channel\" claim (a string). \(fix)")
        }
        let channel: ChannelID
        do { channel = try ChannelID(validating: channelText) } catch {
            throw JoinTokenError(.invalidClaims, "the token's \"channel\" claim is an \(error.description)")
        }
        guard case .string(let user)? = payload["user"], !user.isEmpty else {
            throw JoinTokenError(.invalidClaims, "the token has no \"user\" claim (a non-empty string). \(fix)")
        }
        if let (position, scalar) = UntrustedText.firstControl(in: user) {
            throw JoinTokenError(
                .invalidClaims,
                "the token's \"user\" claim has the control character \(UntrustedText.describe(scalar)) at position \(position); user names must be plain text without newlines, tabs or escape sequences. Create a token with a plain --user. \(fix)")
        }
        let roleText: String
        switch payload["role"] {
        case nil: roleText = "user"
        case .string(let text)?: roleText = text
        default: throw JoinTokenError(.invalidClaims, "the token's \"role\" claim is not a string; it must be \"user\" or \"admin\". \(fix)")
        }
        guard let role = JoinTokenClaims.Role(rawValue: roleText) else {
            throw JoinTokenError(
                .invalidClaims,
                "the token's \"role\" is \(jsonQuote(UntrustedText.forLog(roleText, limit: 32))); it must be user or admin. \(fix)")
        }
        let exp = try time(payload, "exp", "expiry", required: true, fix: fix)
        let iat = try time(payload, "iat", "issued at", required: true, fix: fix)
        let nbf = try time(payload, "nbf", "not before", required: false, fix: fix)
        guard let exp, let iat else { throw JoinTokenError(.invalidClaims, "the token lacks a time claim. \(fix)") }
        return JoinTokenClaims(channel: channel, user: user, role: role, issuedAt: iat, expiresAt: exp, notBefore: nbf)
    }

    /// A time claim: a number of seconds since 1970 within 0...maximumTimestamp (fractions are dropped).
    private static func time(
        _ payload: [String: JSONLite], _ key: String, _ meaning: String, required: Bool, fix: String
    ) throws(JoinTokenError) -> Int64? {
        guard let value = payload[key] else {
            if required {
                throw JoinTokenError(.invalidClaims, "the token has no numeric \"\(key)\" (\(meaning)) claim. \(fix)")
            }
            return nil
        }
        guard case .number(let n) = value else {
            throw JoinTokenError(
                .invalidClaims, "the token's \"\(key)\" (\(meaning)) claim is not a number of seconds since 1970. \(fix)")
        }
        guard let seconds = JSONLite.number(n.rounded(.down)).integer(in: 0...maximumTimestamp) else {
            throw JoinTokenError(
                .invalidClaims,
                "the token's \"\(key)\" (\(meaning)) claim \(value.rendered) is out of range; it must be seconds since 1970 between 0 and \(maximumTimestamp) (the end of year 9999). \(fix)")
        }
        return seconds
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

    /// The bytes of `text`, or nil unless it is canonical unpadded base64url: only A-Z a-z 0-9 - _, no `=`, a length
    /// that is not 1 more than a multiple of 4, and the unused low bits of the last character zero (so that exactly
    /// one text encodes each byte string, and an altered last character never decodes to the same bytes).
    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "_"): v = 63
            default: return nil
            }
            accumulator = (accumulator << 6 | v) & 0xFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // 0 bits left over: a whole number of groups. 2 or 4: the padding bits must be zero. 6: a lone character
        // (length 1 more than a multiple of 4), which encodes no byte.
        guard bits != 6, accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
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
            // C0 and C1 controls, DEL and the line/paragraph separators (which some readers take as newlines).
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
