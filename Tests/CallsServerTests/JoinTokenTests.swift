import CallsStore
import Foundation
import Testing

@testable import CallsServer

@Suite struct JoinTokenTests {
    let signer = JoinTokenSigner(secret: testSecret)

    @Test func roundTripKeepsClaims() throws {
        let claims = JoinTokenClaims(channel: testChannel, user: "alice \"quoted\"", role: .admin, ttl: 60)
        let token = signer.sign(claims)
        #expect(token.split(separator: ".").count == 3)
        #expect(!token.contains("="))
        let back = try signer.verify(token)
        #expect(back == claims)
    }

    @Test func headerIsHS256JWT() throws {
        let token = signer.sign(JoinTokenClaims(channel: testChannel, user: "a", ttl: 60))
        let header = try #require(Base64URL.decode(token.split(separator: ".")[0]))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(header)) as? [String: String])
        #expect(json == ["alg": "HS256", "typ": "JWT"])
    }

    @Test(arguments: ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30"])
    func malformedIsRefused(_ token: String) {
        #expect(throws: JoinTokenError(.malformed, "")) { try signer.verify(token) }
    }

    @Test func badJSONHeaderIsMalformed() {
        let token = Base64URL.encode(Array("not json".utf8)) + ".e30.AAAA"
        #expect(throws: JoinTokenError(.malformed, "")) { try signer.verify(token) }
    }

    @Test(arguments: ["none", "HS512", "RS256"])
    func otherAlgorithmsAreRefused(_ alg: String) throws {
        let good = signer.sign(JoinTokenClaims(channel: testChannel, user: "a", ttl: 60)).split(separator: ".")
        let header = Base64URL.encode(Array("{\"alg\":\"\(alg)\",\"typ\":\"JWT\"}".utf8))
        let token = "\(header).\(good[1])." + (alg == "none" ? "" : String(good[2]))
        do {
            _ = try signer.verify(token)
            Issue.record("accepted alg \(alg)")
        } catch {
            #expect(error.code == .unsupportedAlgorithm)
            #expect(error.message.contains(alg))
        }
    }

    @Test func forgedSignatureIsRefused() throws {
        let other = JoinTokenSigner(secret: [UInt8](repeating: 9, count: 32))
        let forged = other.sign(JoinTokenClaims(channel: testChannel, user: "mallory", ttl: 60))
        #expect(throws: JoinTokenError(.badSignature, "")) { try signer.verify(forged) }
    }

    @Test func alteredPayloadIsRefused() throws {
        let parts = signer.sign(JoinTokenClaims(channel: testChannel, user: "alice", ttl: 60)).split(separator: ".")
        let payload = Base64URL.encode(
            Array("{\"channel\":\"\(testChannel)\",\"user\":\"admin\",\"role\":\"admin\",\"iat\":1,\"exp\":9999999999}".utf8))
        #expect(throws: JoinTokenError(.badSignature, "")) { try signer.verify("\(parts[0]).\(payload).\(parts[2])") }
    }

    @Test func truncatedSignatureIsRefused() throws {
        let token = signer.sign(JoinTokenClaims(channel: testChannel, user: "alice", ttl: 60))
        #expect(throws: JoinTokenError(.badSignature, "")) { try signer.verify(String(token.dropLast(4))) }
    }

    @Test func expiredIsRefusedWithLeeway() throws {
        let now = Date()
        let past = JoinTokenClaims(channel: testChannel, user: "a", ttl: 60, now: now.addingTimeInterval(-3600))
        do {
            _ = try signer.verify(signer.sign(past), now: now)
            Issue.record("expired token accepted")
        } catch {
            #expect(error.code == .expired)
            #expect(error.message.contains("expired"))
        }
        // 10 s past expiry is inside the 30 s leeway.
        let justExpired = JoinTokenClaims(channel: testChannel, user: "a", ttl: 60, now: now.addingTimeInterval(-70))
        #expect(throws: Never.self) { try signer.verify(signer.sign(justExpired), now: now) }
    }

    @Test func invalidClaimsAreRefused() throws {
        func token(_ payload: String) -> String {
            let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
            let input = header + "." + Base64URL.encode(Array(payload.utf8))
            let mac = HMACTestHelper.mac(input)
            return input + "." + mac
        }
        let exp = Int(Date().timeIntervalSince1970) + 600
        let cases = [
            "{\"channel\":\"BAD\",\"user\":\"a\",\"iat\":1,\"exp\":\(exp)}",
            "{\"channel\":\"\(testChannel)\",\"iat\":1,\"exp\":\(exp)}",
            "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"role\":\"root\",\"iat\":1,\"exp\":\(exp)}",
            "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"iat\":1}",
            "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"iat\":1,\"exp\":\"soon\"}",
            "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"iat\":1,\"exp\":true}",
        ]
        for c in cases {
            #expect(throws: JoinTokenError(.invalidClaims, ""), "\(c)") { try signer.verify(token(c)) }
        }
    }

    /// A token signed with the test secret whose payload (and header) are exactly the given JSON text.
    func signed(_ payload: String, header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return input + "." + HMACTestHelper.mac(input)
    }

    func payload(_ time: [String: String]) -> String {
        let now = Int(Date().timeIntervalSince1970)
        let times = ["iat": "\(now)", "exp": "\(now + 600)"].merging(time) { $1 }
        return "{\"channel\":\"\(testChannel)\",\"user\":\"a\","
            + times.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    /// exp = 2^63-1 used to overflow (exp + leeway) and kill the server; every extreme value is a refusal now.
    @Test(arguments: ["exp", "nbf", "iat"], [
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
        "1e300", "-1e300", "1e400", "-1e400", "1e15", "-1", "253402300800",
    ])
    func extremeTimeClaimsAreRefusedNotTrapped(_ claim: String, _ value: String) {
        do {
            let claims = try signer.verify(signed(payload([claim: value])))
            Issue.record("accepted \(claim)=\(value): \(claims)")
        } catch {
            #expect(error.code == .invalidClaims || error.code == .malformed, "\(error)")
            #expect(error.message.contains(claim) || error.message.contains("number too large"), "\(error)")
        }
    }

    @Test func largestTimestampIsAcceptedAsExpiry() throws {
        let claims = try signer.verify(signed(payload(["exp": "\(JoinTokenSigner.maximumTimestamp)"])))
        #expect(claims.expiresAt == JoinTokenSigner.maximumTimestamp)
        // A clock far beyond any claim is clamped, not trapped on.
        #expect(throws: JoinTokenError(.expired, "")) {
            try signer.verify(signed(payload([:])), now: Date(timeIntervalSince1970: 1e300))
        }
    }

    @Test func ttlNearTheLimitsSaturatesInsteadOfTrapping() {
        let claims = JoinTokenClaims(channel: testChannel, user: "a", ttl: .max)
        #expect(claims.expiresAt == .max)
        #expect(throws: JoinTokenError(.invalidClaims, "")) { try signer.verify(signer.sign(claims)) }
        #expect(JoinTokenClaims(channel: testChannel, user: "a", ttl: .min).expiresAt < 0)
    }

    @Test func notBeforeIsHonouredWithTheLeeway() throws {
        let now = Int(Date().timeIntervalSince1970)
        do {
            _ = try signer.verify(signed(payload(["nbf": "\(now + 3600)"])))
            Issue.record("a token valid only in an hour was accepted")
        } catch {
            #expect(error.code == .notYetValid)
            #expect(error.message.contains("not valid before"))
        }
        // 10 s early is inside the 30 s leeway; the past is fine.
        let soon = try signer.verify(signed(payload(["nbf": "\(now + 10)"])))
        #expect(soon.notBefore == Int64(now + 10))
        #expect(throws: Never.self) { try signer.verify(signed(payload(["nbf": "\(now - 100)"]))) }
        #expect(throws: JoinTokenError(.invalidClaims, "")) { try signer.verify(signed(payload(["nbf": "\"later\""]))) }
        // nbf set by the signer round-trips.
        var claims = JoinTokenClaims(channel: testChannel, user: "a", ttl: 600)
        claims.notBefore = Int64(now + 7200)
        #expect(throws: JoinTokenError(.notYetValid, "")) { try signer.verify(signer.sign(claims)) }
    }

    /// The signature's 43rd character carries 2 unused bits: flipping them used to decode to the same MAC.
    @Test func alteredLastSignatureCharacterIsRefused() throws {
        let token = signer.sign(JoinTokenClaims(channel: testChannel, user: "alice", ttl: 60))
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = try #require(token.last)
        let value = try #require(alphabet.firstIndex(of: last))
        for flip in 1...3 {
            let altered = String(token.dropLast()) + String(alphabet[value ^ flip])
            #expect(throws: JoinTokenError.self, "\(altered)") { try signer.verify(altered) }
        }
        #expect(throws: JoinTokenError(.badSignature, "")) { try signer.verify(token + "=") }
        #expect(throws: Never.self) { try signer.verify(token) }
    }

    @Test func duplicateKeysAreRefusedNamingTheKey() {
        let now = Int(Date().timeIntervalSince1970)
        let twice = "{\"channel\":\"\(testChannel)\",\"user\":\"a\",\"iat\":\(now),\"exp\":\(now + 600),\"exp\":9999999999}"
        do {
            _ = try signer.verify(signed(twice))
            Issue.record("duplicate exp accepted")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.message.contains("duplicate key \"exp\""), "\(error)")
        }
        do {
            _ = try signer.verify(signed(payload([:]), header: #"{"alg":"HS256","alg":"none"}"#))
            Issue.record("duplicate alg accepted")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.message.contains("duplicate key \"alg\""), "\(error)")
        }
    }

    @Test(arguments: ["alice\nINFO admin joined", "\u{1B}[31mred", "nul\u{0}", "del\u{7F}", "c1\u{85}", "tab\tx", "ls\u{2028}"])
    func controlCharactersInTheUserClaimAreRefused(_ user: String) {
        let token = signer.sign(JoinTokenClaims(channel: testChannel, user: user, ttl: 60))
        do {
            _ = try signer.verify(token)
            Issue.record("accepted user \(user.debugDescription)")
        } catch {
            #expect(error.code == .invalidClaims)
            #expect(error.message.contains("control character"), "\(error)")
            #expect(UntrustedText.firstControl(in: error.message) == nil, "\(error.message.debugDescription)")
        }
    }

    @Test func deeplyNestedClaimsAreRefused() {
        let deep = "{\"user\":" + String(repeating: "[", count: 5000) + "}"  // within the 8 kB token limit
        #expect(throws: JoinTokenError(.malformed, "")) { try signer.verify(signed(deep)) }
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("abc=") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("_-8") == [0xFF, 0xEF])
        // Non-zero unused bits, padding, the standard alphabet, whitespace: all refused.
        #expect(Base64URL.decode("_-9") == nil)
        #expect(Base64URL.decode("AB") == nil)
        #expect(Base64URL.decode("AQ") == [0x01])
        #expect(Base64URL.decode("AA==") == nil)
        #expect(Base64URL.decode("AA A") == nil)
        #expect(Base64URL.decode("") == [])
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
    }
}

import Crypto

enum HMACTestHelper {
    static func mac(_ input: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: testSecret))
        return Base64URL.encode(Array(code))
    }
}

@Suite struct TokenSecretTests {
    func tempDir() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("callsctl-secret-\(UUID().uuidString)").path
        return dir
    }

    @Test func createdOnceWithMode0600AndNeverOverwritten() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try TokenSecret.loadDefault(dataDir: dir)
        #expect(first.created)
        #expect(first.bytes.count == 32)
        let attrs = try FileManager.default.attributesOfItem(atPath: first.path)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let second = try TokenSecret.loadDefault(dataDir: dir)
        #expect(!second.created)
        #expect(second.bytes == first.bytes)
        #expect(second.warnings.isEmpty)
    }

    @Test func worldReadableWarns() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try TokenSecret.loadDefault(dataDir: dir)
        chmod(s.path, 0o644)
        let again = try TokenSecret.loadDefault(dataDir: dir)
        #expect(again.warnings.count == 1)
        #expect(again.warnings[0].contains("chmod 600"))
    }

    @Test func missingOrBadFileIsAClearError() throws {
        let dir = tempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/nope"
        #expect { try TokenSecret.load(path: missing, create: false) } throws: { error in
            "\(error)".contains("does not exist") && "\(error)".contains(missing)
        }
        let bad = dir + "/bad"
        _ = FileManager.default.createFile(atPath: bad, contents: Data("short".utf8))
        #expect { try TokenSecret.load(path: bad, create: false) } throws: { error in
            "\(error)".contains("at least 16 bytes")
        }
    }
}
