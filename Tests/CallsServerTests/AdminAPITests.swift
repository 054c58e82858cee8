import Crypto
import Foundation
import Testing

@testable import CallsServer

@Suite struct AdminAPITests {
    static let key = "test-admin-key-0123456789abcdef"
    static let auth = "Authorization: Bearer \(key)\r\n"

    static func start(backend: FakeBackend = FakeBackend()) async throws -> RunningServer {
        try await RunningServer.start(backend: backend, configure: { $0.adminKey = key })
    }

    static func json(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    @Test(arguments: [
        ("GET", "/api/v1/calls", ""),
        ("GET", "/api/v1/calls", "Authorization: Bearer wrong-key-0123456789abcdef\r\n"),
        ("GET", "/api/v1/calls", "Authorization: Basic \(key)\r\n"),
        ("GET", "/api/v1/calls", "Authorization: Bearer \r\n"),
        ("DELETE", "/api/v1/sessions/abc", ""),
        ("GET", "/api/v1/nothing-here", ""),
        ("GET", "/api/v1", ""),
        ("POST", "/api/v1/tokens?channel=4xp9fdt3pbdp7nrw7xjmrd8kkc&user=mallory", ""),
    ])
    func withoutTheKeyEverythingIs401(method: String, path: String, header: String) async throws {
        let s = try await Self.start()
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        _ = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        let r = try await httpRequest(port: s.port, path, method: method, extraHeaders: header)
        #expect(r.status == 401)
        #expect(r.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        let body = try Self.json(r.body)
        #expect(body["error"] as? String == "unauthorized")
        #expect(!r.body.contains("alice"))
        #expect(!r.body.contains(testChannel.rawValue))
    }

    @Test func theKeyMintsAJoinTokenThatJoins() async throws {
        let s = try await Self.start()
        defer { Task { await s.server.shutdown() } }
        let minted = try await httpRequest(
            port: s.port, "/api/v1/tokens?channel=\(testChannel.rawValue)&user=doctor%20bot&ttl=600", method: "POST",
            extraHeaders: Self.auth)
        #expect(minted.status == 201, "\(minted.body)")
        let body = try Self.json(minted.body)
        #expect(body["user"] as? String == "doctor bot")
        #expect(body["role"] as? String == "user")
        let token = try #require(body["token"] as? String)
        let ws = try await TestWebSocket(port: s.port)
        let joined = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(token)\"}")
        #expect(joined["type"] as? String == "joined", "\(joined)")
        #expect(joined["user"] as? String == "doctor bot")

        for (query, field) in [
            ("user=alice", "channel:"), ("channel=nope&user=alice", "channel:"), ("channel=\(testChannel.rawValue)", "user:"),
            ("channel=\(testChannel.rawValue)&user=a&role=boss", "role:"), ("channel=\(testChannel.rawValue)&user=a&ttl=0", "ttl:"),
        ] {
            let r = try await httpRequest(port: s.port, "/api/v1/tokens?\(query)", method: "POST", extraHeaders: Self.auth)
            #expect(r.status == 400, "\(query)")
            #expect((try Self.json(r.body)["message"] as? String)?.hasPrefix(field) == true, "\(query): \(r.body)")
        }
        let get = try await httpRequest(port: s.port, "/api/v1/tokens?channel=\(testChannel.rawValue)&user=a", extraHeaders: Self.auth)
        #expect(get.status == 405)
    }

    @Test func noConfiguredKeyRefusesEverything() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let r = try await httpRequest(port: s.port, "/api/v1/calls", extraHeaders: "Authorization: Bearer \r\n")
        #expect(r.status == 401)
    }

    @Test func listsCallsAndRemovesAParticipant() async throws {
        let backend = FakeBackend()
        let s = try await Self.start(backend: backend)
        defer { Task { await s.server.shutdown() } }
        let empty = try await httpRequest(port: s.port, "/api/v1/calls", extraHeaders: Self.auth)
        #expect(empty.status == 200)
        #expect(empty.headers["content-type"] == "application/json; charset=utf-8")
        #expect((try Self.json(empty.body)["calls"] as? [Any])?.isEmpty == true)

        let ws = try await TestWebSocket(port: s.port)
        let joined = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        let sessionID = try #require(joined["sessionId"] as? String)
        let answer = try await ws.request("{\"v\":1,\"type\":\"offer\",\"sdp\":\"v=0\"}")
        #expect(answer["type"] as? String == "answer")
        backend.emit(.iceConnected(transport: "udp", remote: "127.0.0.1:5000"), to: "media-1")
        backend.emit(.dtlsConnected(profile: "SRTP_AES128_CM_SHA1_80"), to: "media-1")
        #expect(try await ws.receive()["type"] as? String == "connected")
        #expect(s.server.activeSessions == 1)

        let list = try await httpRequest(port: s.port, "/api/v1/calls", extraHeaders: Self.auth)
        #expect(list.status == 200)
        let calls = try #require(try Self.json(list.body)["calls"] as? [[String: Any]])
        #expect(calls.count == 1)
        #expect(calls.first?["channel"] as? String == testChannel.rawValue)
        let participant = try #require((calls.first?["participants"] as? [[String: Any]])?.first)
        #expect(participant["id"] as? String == sessionID)
        #expect(participant["user"] as? String == "alice")
        #expect(participant["label"] as? String == "alice@\(testChannel.rawValue)/\(sessionID)")
        #expect(participant["mediaSession"] as? String == "media-1")
        #expect(participant["transport"] as? String == "udp")
        #expect(participant["state"] as? String == "connected")
        #expect(participant["connectedSince"] is String)

        let missing = try await httpRequest(
            port: s.port, "/api/v1/sessions/nosuchsession", method: "DELETE", extraHeaders: Self.auth)
        #expect(missing.status == 404)
        #expect(try Self.json(missing.body)["error"] as? String == "session_not_found")
        let unknown = try await httpRequest(port: s.port, "/api/v1/nope", extraHeaders: Self.auth)
        #expect(unknown.status == 404)
        let wrongMethod = try await httpRequest(
            port: s.port, "/api/v1/calls", method: "DELETE", extraHeaders: Self.auth)
        #expect(wrongMethod.status == 405)

        let removed = try await httpRequest(
            port: s.port, "/api/v1/sessions/\(sessionID)", method: "DELETE", extraHeaders: Self.auth)
        #expect(removed.status == 200)
        #expect(try Self.json(removed.body)["removed"] as? String == sessionID)
        // The client is told, then its socket closes.
        var sawClose = false
        for _ in 0..<5 {
            do {
                let message = try await ws.receive()
                if message["type"] as? String == "closed" { #expect(message["reason"] as? String != nil) }
            } catch {
                sawClose = true
                break
            }
        }
        #expect(sawClose)
        for _ in 0..<100 where !backend.closed.contains("media-1") { try await Task.sleep(for: .milliseconds(20)) }
        #expect(backend.closed.contains("media-1"))
        #expect(s.server.activeSessions == 0)
        let after = try await httpRequest(port: s.port, "/api/v1/calls", extraHeaders: Self.auth)
        #expect((try Self.json(after.body)["calls"] as? [Any])?.isEmpty == true)
        let again = try await httpRequest(
            port: s.port, "/api/v1/sessions/\(sessionID)", method: "DELETE", extraHeaders: Self.auth)
        #expect(again.status == 404)
    }

    @Test func endingACallClosesEveryParticipant() async throws {
        let backend = FakeBackend()
        let s = try await Self.start(backend: backend)
        defer { Task { await s.server.shutdown() } }
        let first = try await TestWebSocket(port: s.port)
        _ = try await first.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        let second = try await TestWebSocket(port: s.port)
        _ = try await second.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        #expect(s.server.activeSessions == 2)

        let missing = try await httpRequest(
            port: s.port, "/api/v1/calls/zzzzzzzzzzzzzzzzzzzzzzzzzz", method: "DELETE", extraHeaders: Self.auth)
        #expect(missing.status == 404)
        #expect(try Self.json(missing.body)["error"] as? String == "call_not_found")
        let unauthorized = try await httpRequest(port: s.port, "/api/v1/calls/\(testChannel.rawValue)", method: "DELETE")
        #expect(unauthorized.status == 401)
        #expect(s.server.activeSessions == 2)

        let ended = try await httpRequest(
            port: s.port, "/api/v1/calls/\(testChannel.rawValue)", method: "DELETE", extraHeaders: Self.auth)
        #expect(ended.status == 200)
        let body = try Self.json(ended.body)
        #expect(body["ended"] as? String == testChannel.rawValue)
        #expect(body["participants"] as? Int == 2)
        #expect(s.server.activeSessions == 0)
        // Each participant is told and its socket closes.
        for ws in [first, second] {
            var closed = false
            for _ in 0..<5 {
                do { _ = try await ws.receive() } catch {
                    closed = true
                    break
                }
            }
            #expect(closed)
        }
        let after = try await httpRequest(port: s.port, "/api/v1/calls", extraHeaders: Self.auth)
        #expect((try Self.json(after.body)["calls"] as? [Any])?.isEmpty == true)
    }

    @Test func authorizationComparison() {
        #expect(AdminAPI.authorized("Bearer \(Self.key)", key: Self.key))
        #expect(AdminAPI.authorized("bearer \(Self.key)", key: Self.key))
        #expect(!AdminAPI.authorized("Bearer \(Self.key)x", key: Self.key))
        #expect(!AdminAPI.authorized(Self.key, key: Self.key))
        #expect(!AdminAPI.authorized(nil, key: Self.key))
        #expect(!AdminAPI.authorized("Bearer \(Self.key)", key: nil))
    }

    @Test func keyFileIsGeneratedOnceWithMode0600() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adminkey-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try AdminKey.loadDefault(dataDir: dir.path)
        #expect(first.created)
        #expect(first.key.count == 43)
        #expect(first.key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let attrs = try FileManager.default.attributesOfItem(atPath: first.path)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let second = try AdminKey.loadDefault(dataDir: dir.path)
        #expect(!second.created)
        #expect(second.key == first.key)
        #expect(throws: TokenSecretError.self) { try AdminKey.load(path: dir.path + "/missing", create: false) }
    }
}

@Suite struct ICEServerTests {
    @Test func joinCarriesSTUNAndTURNWithAVerifiableCredential() async throws {
        let secret = Array("coturn-shared-secret".utf8)
        let s = try await RunningServer.start(configure: { config in
            config.iceServerSettings = ICEServerSettings(
                stunURLs: ["stun:stun.example.com:3478"],
                turnURLs: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
                turnSecret: secret, turnTTL: 3600)
        })
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let before = Int(Date().timeIntervalSince1970)
        let joined = try await ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(goodToken())\"}")
        let after = Int(Date().timeIntervalSince1970)
        let servers = try #require(joined["iceServers"] as? [[String: Any]])
        #expect(servers.count == 2)
        #expect(servers[0]["urls"] as? [String] == ["stun:stun.example.com:3478"])
        #expect(servers[0]["username"] == nil)
        #expect(servers[1]["urls"] as? [String] == ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"])
        let username = try #require(servers[1]["username"] as? String)
        let credential = try #require(servers[1]["credential"] as? String)
        let parts = username.split(separator: ":", maxSplits: 1)
        #expect(parts.count == 2)
        #expect(parts.last == "alice")
        let expiry = try #require(Int(parts[0]))
        #expect(expiry >= before + 3600 && expiry <= after + 3600)
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: SymmetricKey(data: secret))
        #expect(credential == Data(mac).base64EncodedString())
    }

    @Test func knownTURNRESTVector() {
        // expiry 1700003600, user alice, secret "secret": cross-checked with `openssl dgst -sha1 -hmac`.
        let c = ICEServerSettings.turnCredential(
            secret: Array("secret".utf8), user: "alice", ttl: 3600, now: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(c.username == "1700003600:alice")
        #expect(c.password == OpenSSLVector.value)
    }

    @Test(arguments: [
        ("stun:stun.example.com", false, true), ("stun:stun.example.com:3478", false, true),
        ("stun:[2001:db8::1]:3478", false, true), ("stun:192.0.2.1", false, true),
        ("turn:turn.example.com:3478?transport=udp", true, true), ("turns:turn.example.com:5349", true, true),
        ("turn:turn.example.com?transport=tcp", true, true),
        ("stun://stun.example.com", false, false), ("turn:turn.example.com", false, false),
        ("stun:turn.example.com", true, false), ("http://example.com", false, false), ("stun:", false, false),
        ("stun:host:99999", false, false), ("stun:host:abc", false, false),
        ("turn:host?transport=sctp", true, false), ("stun:host?transport=udp", false, false),
        ("stun:bad host", false, false),
    ])
    func urlValidation(url: String, turn: Bool, valid: Bool) {
        #expect((ICEServerSettings.problem(url: url, turn: turn) == nil) == valid, "\(url)")
    }
}

enum OpenSSLVector {
    /// `printf %s 1700003600:alice | openssl dgst -sha1 -hmac secret -binary | base64`
    static let value = "LLPLO4qjdVL2qZhwr3eImhn7J20="
}
