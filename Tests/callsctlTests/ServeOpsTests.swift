import CallsTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `serve` operations: drain on SIGTERM, the admin key and API, ICE servers in the join answer.
@Suite(.serialized) struct ServeOpsTests {
    typealias RunningServe = ServeCLITests.RunningServe

    /// A WebSocket to /ws that stays open; every read waits under one generous deadline for the connection.
    final class OpenSocket {
        /// -1 once closed: closing a number twice can close another test's descriptor that reused it (that crashed
        /// a pipe read in the man-page test under load).
        private(set) var fd: Int32
        private var pending: [UInt8] = []
        private let deadline = TestDeadline()

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr)
            let rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { throw ServeCLITests.CLIProblem(description: "connect failed") }
            send(Array("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
            var head: [UInt8] = []
            while !head.suffix(4).elementsEqual([13, 10, 13, 10]) { head += try read(1) }
            guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
                throw ServeCLITests.CLIProblem(description: "no upgrade")
            }
        }

        deinit { close() }

        func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        private func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

        private func read(_ n: Int) throws -> [UInt8] {
            while pending.count < n {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, deadline.remainingMilliseconds)
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { throw deadline.timeout(waitingFor: "a reply from serve's /ws") }
                var buf = [UInt8](repeating: 0, count: 4096)
                let got = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard got > 0 else { throw ServeCLITests.CLIProblem(description: "connection closed") }
                pending += buf[0..<got]
            }
            defer { pending.removeFirst(n) }
            return Array(pending[0..<n])
        }

        /// Sends one text message and returns the next text reply as JSON.
        func request(_ text: String) throws -> [String: Any] {
            let payload = Array(text.utf8)
            var frame: [UInt8] = [0x81, 0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), 1, 2, 3, 4]
            frame += payload.enumerated().map { $0.element ^ [1, 2, 3, 4][$0.offset % 4] }
            send(frame)
            while true {
                let h = try read(2)
                var length = Int(h[1] & 0x7F)
                if length == 126 {
                    let b = try read(2)
                    length = Int(b[0]) << 8 | Int(b[1])
                }
                let body = try read(length)
                if h[0] & 0x0F == 1 {
                    let message = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
                    if message["type"] as? String == "event" { continue }  // call events are not replies
                    return message
                }
            }
        }
    }

    static func token(_ dir: TempDir, user: String = "carol") throws -> String {
        try CLI.run(["token", "create", "--channel", channelID(2), "--user", user], dataDir: dir.path)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func request(_ port: Int, _ path: String, method: String = "GET", bearer: String? = nil) -> (Int, String) {
        var req = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        req.httpMethod = method
        if let bearer { req.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        let s = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String) = (0, "")
        URLSession.shared.dataTask(with: req) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self))
            s.signal()
        }.resume()
        _ = s.wait(timeout: .now() + 60)
        return result
    }

    /// Closing, then dropping, a socket must not close the descriptor number a second time: by then it may belong
    /// to someone else (here: a descriptor the test places on that number).
    @Test func aClosedSocketNeverClosesItsNumberAgain() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        var ws: OpenSocket? = try OpenSocket(port: serve.apiPort)
        let number = ws!.fd
        ws!.close()
        let other = open("/dev/null", O_RDONLY)
        #expect(dup2(other, number) == number)
        ws = nil
        #expect(fcntl(number, F_GETFD) != -1, "dropping the closed socket closed descriptor \(number) again")
        Glibc.close(number)
        Glibc.close(other)
        _ = ws
    }

    @Test func sigtermDrainsUntilTheLastSessionEnds() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path, extraArgs: ["--drain-timeout", "60"])
        let token = try Self.token(dir)
        let ws = try OpenSocket(port: serve.apiPort)
        let joined = try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(token)\"}")
        #expect(joined["type"] as? String == "joined")
        #expect(Self.request(serve.apiPort, "/readyz").0 == 200)

        kill(serve.process.processIdentifier, SIGTERM)
        var ready = 0
        for _ in 0..<50 {
            ready = Self.request(serve.apiPort, "/readyz").0
            if ready == 503 { break }
            usleep(100_000)
        }
        #expect(ready == 503)
        #expect(serve.process.isRunning)
        let late = try OpenSocket(port: serve.apiPort)
        let refused = try late.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(token)\"}")
        #expect(refused["type"] as? String == "error")
        #expect(refused["code"] as? String == "server_draining")
        #expect((refused["message"] as? String)?.contains("draining") == true)
        // The running session goes on.
        #expect(try ws.request("{\"v\":1,\"type\":\"ping\"}")["type"] as? String == "pong")
        usleep(300_000)
        #expect(serve.process.isRunning)

        let started = Date()
        ws.close()
        let deadline = Date().addingTimeInterval(20)
        while serve.process.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!serve.process.isRunning)
        #expect(Date().timeIntervalSince(started) < 20)
        let (status, err) = serve.stop()
        #expect(status == 0, "\(err)")
    }

    @Test func drainTimeoutEndsRunningSessions() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path, env: ["CALLSCTL_DRAIN_TIMEOUT": "1"])
        let ws = try OpenSocket(port: serve.apiPort)
        #expect(try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(try Self.token(dir))\"}")["type"] as? String == "joined")
        kill(serve.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while serve.process.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!serve.process.isRunning)
        #expect(serve.stop().0 == 0)
    }

    @Test func secondSignalStopsAtOnce() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path, extraArgs: ["--drain-timeout", "300"])
        let ws = try OpenSocket(port: serve.apiPort)
        #expect(try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(try Self.token(dir))\"}")["type"] as? String == "joined")
        kill(serve.process.processIdentifier, SIGTERM)
        for _ in 0..<50 where Self.request(serve.apiPort, "/readyz").0 != 503 { usleep(100_000) }
        #expect(serve.process.isRunning)
        let (status, err) = serve.stop(signal: SIGINT)
        #expect(status == 0, "\(err)")
    }

    @Test func adminKeyIsGeneratedAndGuardsTheAPI() throws {
        let dir = TempDir()
        let serve = try RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let keyPath = dir.url.appendingPathComponent("admin-key").path
        #expect(serve.stdoutLines.contains("admin key file: \(keyPath)"))
        let key = try String(contentsOfFile: keyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.count == 43)
        #expect(!serve.stdoutLines.joined().contains(key))
        let attrs = try FileManager.default.attributesOfItem(atPath: keyPath)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)

        let ws = try OpenSocket(port: serve.apiPort)
        let joined = try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(try Self.token(dir, user: "dave"))\"}")
        let sessionID = try #require(joined["sessionId"] as? String)
        let denied = Self.request(serve.apiPort, "/api/v1/calls")
        #expect(denied.0 == 401)
        #expect(!denied.1.contains("dave"))
        #expect(Self.request(serve.apiPort, "/api/v1/calls", bearer: "nope-nope-nope-nope-nope").0 == 401)
        let list = Self.request(serve.apiPort, "/api/v1/calls", bearer: key)
        #expect(list.0 == 200)
        #expect(list.1.contains("\"user\":\"dave\""))
        #expect(list.1.contains(sessionID))
        #expect(Self.request(serve.apiPort, "/api/v1/sessions/unknown", method: "DELETE", bearer: key).0 == 404)
        #expect(Self.request(serve.apiPort, "/api/v1/sessions/\(sessionID)", method: "DELETE", bearer: key).0 == 200)
        #expect(!Self.request(serve.apiPort, "/api/v1/calls", bearer: key).1.contains("dave"))
    }

    @Test func joinCarriesConfiguredICEServers() throws {
        let dir = TempDir()
        let secretFile = dir.url.appendingPathComponent("turn-secret")
        try "very-secret-turn\n".write(to: secretFile, atomically: true, encoding: .utf8)
        chmod(secretFile.path, 0o600)
        let serve = try RunningServe(
            dataDir: dir.path,
            extraArgs: [
                "--stun-url", "stun:stun.example.com:3478", "--turn-url", "turn:turn.example.com:3478?transport=udp",
                "--turn-secret-file", secretFile.path, "--turn-ttl", "600",
            ])
        let ws = try OpenSocket(port: serve.apiPort)
        let joined = try ws.request("{\"v\":1,\"type\":\"join\",\"token\":\"\(try Self.token(dir))\"}")
        let servers = try #require(joined["iceServers"] as? [[String: Any]])
        #expect(servers.first?["urls"] as? [String] == ["stun:stun.example.com:3478"])
        let turn = try #require(servers.last)
        #expect(turn["urls"] as? [String] == ["turn:turn.example.com:3478?transport=udp"])
        let username = try #require(turn["username"] as? String)
        #expect(username.hasSuffix(":carol"))
        let credential = try #require(turn["credential"] as? String)
        // Verify with openssl: base64(HMAC-SHA1(secret, username)).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "printf %s \"$U\" | openssl dgst -sha1 -hmac very-secret-turn -binary | base64"]
        p.environment = ["U": username, "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(credential == expected)
        ws.close()
        let (status, err) = serve.stop()
        #expect(status == 0)
        #expect(!err.contains("very-secret-turn"))
        #expect(!err.contains(credential))
    }

    @Test(arguments: [
        (["--stun-url", "stun.example.com"], "--stun-url stun.example.com must start with stun:"),
        (["--turn-url", "http://turn.example.com"], "--turn-url http://turn.example.com must start with turn:"),
        (["--turn-url", "turn:turn.example.com"], "--turn-url needs --turn-secret-file"),
        (["--drain-timeout", "-1"], "--drain-timeout"),
    ])
    func badICEAndDrainSettingsAreClearErrors(_ args: [String], _ expected: String) throws {
        let dir = TempDir()
        let r = try CLI.run(["serve", "--api-listen", "127.0.0.1:0", "--rtc-listen", "127.0.0.1:0"] + args, dataDir: dir.path, timeout: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
    }
}
