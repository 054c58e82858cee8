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

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("abc=") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("_-8") == [0xFF, 0xEF])
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
