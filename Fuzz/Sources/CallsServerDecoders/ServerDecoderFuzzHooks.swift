// Public entry points for the fuzzer: JSONLite and Base64URL are internal to this module.
import Crypto
import Foundation

public enum ServerDecoderFuzz {
    // MARK: Signaling JSON

    /// A signaling message as the server reads it (JSONLite over the WebSocket text), with invariants:
    /// rendered output parses back to the same value and is a fixed point, and integer(in:) stays in its range.
    public static func json(_ bytes: UnsafeBufferPointer<UInt8>) {
        let array = Array(bytes)
        let fromBytes = try? JSONLite.parse(bytes: array)
        if let text = String(validating: array, as: UTF8.self) {
            // The two entry points agree on valid UTF-8.
            let fromText = try? JSONLite.parse(text)
            guard fromText == fromBytes else { fatalError("parse(text) and parse(bytes:) disagree") }
        } else if fromBytes != nil {
            fatalError("invalid UTF-8 was accepted")
        }
        guard let value = fromBytes else { return }
        let rendered = value.rendered
        guard let again = try? JSONLite.parse(rendered) else { fatalError("rendered JSON does not parse: \(rendered)") }
        guard again == value else { fatalError("parse(render(v)) != v for \(rendered)") }
        guard again.rendered == rendered else { fatalError("rendering is not a fixed point: \(rendered)") }
        guard depth(value) <= JSONLite.maximumDepth + 1 else { fatalError("nesting beyond maximumDepth was accepted") }
        // What the signaling session reads from every message.
        if case .object(let fields) = value {
            for range: ClosedRange<Int64> in [1...2, Int64.min...Int64.max, -1...0] {
                if let n = fields["v"]?.integer(in: range), !range.contains(n) {
                    fatalError("integer(in: \(range)) returned \(n)")
                }
            }
            _ = fields["type"].map { String($0.rendered.prefix(40)) }
            // The typed messages the session decodes behind the gate: decoding never traps, and what decodes
            // encodes to JSON that decodes to the same value.
            if let text = String(validating: array, as: UTF8.self) {
                typed(Signaling.Join.self, text)
                typed(Signaling.Offer.self, text)
                typed(Signaling.ICE.self, text)
                typed(Signaling.Reaction.self, text)
                typed(Signaling.Bare.self, text)
                typed(Signaling.Joined.self, text)
                typed(Signaling.Speakers.self, text)
                typed(Signaling.Event.self, text)
            }
            // Client text is logged through UntrustedText: the log form never carries a control character.
            for case .string(let s) in fields.values {
                guard UntrustedText.firstControl(in: UntrustedText.forLog(s)) == nil else {
                    fatalError("UntrustedText.forLog left a control character in \(jsonQuote(s))")
                }
            }
        }
    }

    private static func typed<T: Codable & Equatable>(_ type: T.Type, _ text: String) {
        guard let value = try? Signaling.decode(T.self, from: text) else { return }
        let encoded = Signaling.encode(value)
        guard let again = try? Signaling.decode(T.self, from: encoded), again == value else {
            fatalError("\(T.self): decode(encode(v)) != v for \(encoded)")
        }
        guard Signaling.encode(again) == encoded else { fatalError("\(T.self): encoding is not stable: \(encoded)") }
    }

    private static func depth(_ value: JSONLite) -> Int {
        switch value {
        case .array(let items): 1 + (items.map(depth).max() ?? 0)
        case .object(let fields): 1 + (fields.values.map(depth).max() ?? 0)
        default: 1
        }
    }

    // MARK: Join tokens

    private static let secret = Array("fuzzing-secret-fuzzing-secret-32".utf8)
    private static let signer = JoinTokenSigner(secret: secret)
    /// A fixed "now" (2026-12-07) so runs are reproducible.
    private static let now = Date(timeIntervalSince1970: 1_796_601_600)

    /// Join tokens, two ways: the input as the token a client sends (structure, base64url, header JSON,
    /// signature), and the input as a payload signed with the server's key (so the claim checks are reached).
    public static func token(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        check(text)
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            if let decoded = Base64URL.decode(part) {
                // Canonical decoding: exactly one text per byte string.
                guard Base64URL.encode(decoded) == String(part) else { fatalError("base64url is not canonical: \(part)") }
            }
        }
        let raw = Array(bytes)
        guard Base64URL.decode(Base64URL.encode(raw)) == raw else { fatalError("base64url round trip failed") }

        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let signingInput = header + "." + Base64URL.encode(raw)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        let signed = signingInput + "." + Base64URL.encode(Array(mac))
        check(signed)
        // Any change to the signature must be refused.
        var forged = signed
        let last = forged.removeLast()
        forged.append(last == "A" ? "Q" : "A")
        if (try? signer.verify(forged, now: now)) != nil { fatalError("a token with an altered signature verified") }
    }

    private static func check(_ token: String) {
        guard let claims = try? signer.verify(token, now: now) else { return }
        guard token.utf8.count <= JoinTokenSigner.maximumLength else { fatalError("an over-long token verified") }
        for t in [claims.issuedAt, claims.expiresAt, claims.notBefore ?? 0]
        where !(0...JoinTokenSigner.maximumTimestamp).contains(t) {
            fatalError("a time claim outside 0...maximumTimestamp was accepted: \(t)")
        }
        // Claims we accept, signed by us, verify to the same claims.
        let resigned = signer.sign(claims)
        guard let again = try? signer.verify(resigned, now: now) else { fatalError("re-signed claims do not verify") }
        guard again == claims else { fatalError("claims changed through sign/verify: \(claims) vs \(again)") }
        // Another key never verifies.
        if (try? JoinTokenSigner(secret: Array("another-secret".utf8)).verify(token, now: now)) != nil {
            fatalError("a token verified under two different secrets")
        }
    }
}
