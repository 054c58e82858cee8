import CallsTestSupport
import Foundation
import Testing

/// A real `callsctl serve` holds a real call (`callsctl loadtest`: four participants through the signaling, two
/// speaking Opus) while the outside abuses of the hardening issue are applied to it in turn: forged and hostile join
/// tokens, hostile JSON, slow-header and never-joining connections, HTTP garbage, a junk flood and a STUN storm on
/// the media port, and SIGHUP. The call must keep its packets, the server must keep answering and stay within a
/// memory bound. Every loop is bounded in count; the traffic stays on loopback (127.0.0.1-127.0.0.4).
@Suite(.serialized)
struct AbuseDuringCallTests {
    @Test func aCallKeepsFlowingThroughEveryAbuse() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let pid = serve.process.processIdentifier
        let mediaPort = try #require(
            serve.stdoutLines.first { $0.hasPrefix("rtc listening on") }
                .flatMap { line in line.split(separator: ":").last?.split(separator: "/").first.flatMap { Int($0) } })
        let secretFile = dir.url.appendingPathComponent("token-secret")
        // The call: 20 s, started first; the abuses run while it lasts.
        let loadtest = CLI.process(
            [
                "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file", secretFile.path,
                "--participants", "4", "--speakers", "2", "--duration", "20", "--ramp", "20", "--max-loss", "1",
                "--max-join-failures", "0", "--json",
            ], dataDir: dir.path)
        let output = Pipe()
        loadtest.standardOutput = output
        loadtest.standardError = FileHandle.nullDevice
        try loadtest.run()
        let rssBefore = Self.residentKiB(pid)
        usleep(3_000_000)  // joined and speaking

        // 1. Hostile tokens: none may stop the server.
        let secret = try Self.secretBytes(secretFile)
        let now = Int(Date().timeIntervalSince1970)
        let hostile: [String] = [
            Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve","exp":9223372036854775807,"iat":\#(now)}"#, secret),
            Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve","exp":1e400,"iat":\#(now)}"#, secret),
            Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve","user":"mallory","exp":\#(now + 600),"iat":\#(now)}"#, secret),
            Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve\nfake log line","exp":\#(now + 600),"iat":\#(now)}"#, secret),
            Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve","exp":\#(now + 600),"iat":\#(now),"nbf":\#(now + 3600)}"#, secret),
            String(Self.jwt(#"{"channel":"\#(channelID(7))","user":"eve","exp":\#(now + 600),"iat":\#(now)}"#, secret).dropLast()) + "x",
        ]
        for token in hostile {
            let reply = try Self.webSocketExchange(
                port: serve.apiPort, #"{"v":2,"type":"join","token":"\#(token)"}"#)
            #expect(reply.contains("bad_token"), "\(reply)")
        }
        // 2. Hostile JSON: deep nesting and huge numbers.
        for message in [String(repeating: "[", count: 60_000), #"{"v":1e400,"type":"join"}"#, #"{"v":2,"v":2,"type":"join"}"#] {
            let reply = try Self.webSocketExchange(port: serve.apiPort, message)
            #expect(reply.contains("\"error\""), "\(reply.prefix(300))")
        }
        #expect(Self.healthy(serve.apiPort))

        // 3. Slow-header connections (300 from 127.0.0.2) and never-joining WebSockets (50 from 127.0.0.3).
        var held: [Int32] = []
        for _ in 0..<300 {
            if let fd = Self.connect(port: serve.apiPort, from: "127.0.0.2") {
                _ = Self.send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
                held.append(fd)
            }
        }
        for _ in 0..<50 {
            if let fd = Self.connect(port: serve.apiPort, from: "127.0.0.3") {
                _ = Self.send(
                    fd,
                    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                held.append(fd)
            }
        }
        #expect(held.count == 350)
        #expect(Self.healthy(serve.apiPort))

        // 4. HTTP garbage on 50 connections.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            if let fd = Self.connect(port: serve.apiPort, from: "127.0.0.4") {
                _ = Self.send(fd, String((0..<2000).map { _ in Character(UnicodeScalar(UInt8.random(in: 1...255, using: &generator))) }))
                close(fd)
            }
        }
        #expect(Self.healthy(serve.apiPort))

        // 5. Junk on the media port: 150,000 random datagrams from 64 ports (about 3 s), then STUN binding requests
        //    without credentials from 2,000 ports.
        Self.udpJunk(port: mediaPort, datagrams: 150_000, sockets: 64, stun: false)
        Self.udpJunk(port: mediaPort, datagrams: 2_000, sockets: 2_000, stun: true)
        #expect(Self.healthy(serve.apiPort))

        // 6. SIGHUP.
        kill(pid, SIGHUP)
        usleep(500_000)
        #expect(serve.process.isRunning)
        #expect(Self.healthy(serve.apiPort))
        for fd in held { close(fd) }

        // The call went on through all of it.
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        loadtest.waitUntilExit()
        #expect(loadtest.terminationStatus == 0, "\(report)")
        let json = (try? JSONSerialization.jsonObject(with: Data(report.utf8))) as? [String: Any] ?? [:]
        let media = json["media"] as? [String: Any] ?? [:]
        let expected = media["expectedPackets"] as? Int ?? 0
        let received = media["receivedPackets"] as? Int ?? 0
        #expect(expected > 0 && received * 100 >= expected * 99, "\(media)")
        #expect(serve.process.isRunning)
        #expect(Self.healthy(serve.apiPort))
        // Memory bound: the abuses may not make the server grow by more than 64 MiB.
        let rssAfter = Self.residentKiB(pid)
        #expect(rssAfter - rssBefore < 64 * 1024, "RSS \(rssBefore) KiB -> \(rssAfter) KiB")
    }

    // MARK: Helpers

    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func healthy(_ port: Int) -> Bool {
        (try? ServeCLITests.get(port, "/healthz").0) == 200
    }

    static func secretBytes(_ file: URL) throws -> [UInt8] {
        let text = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return Array(try #require(Data(base64Encoded: text)))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// An HS256 JWT over `payload` as written (duplicate keys and all), signed with `openssl dgst -mac HMAC`.
    static func jwt(_ payload: String, _ secret: [UInt8]) -> String {
        let signingInput = base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64URL(Array(payload.utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + secret.map { String(format: "%02x", $0) }.joined(), "-binary"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try? p.run()
        input.fileHandleForWriting.write(Data(signingInput.utf8))
        try? input.fileHandleForWriting.close()
        let mac = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return signingInput + "." + base64URL(Array(mac))
    }

    /// A blocking TCP connection to 127.0.0.1:`port` from `source` (nil on failure).
    static func connect(port: Int, from source: String) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let ok = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0 && withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
        if !ok {
            close(fd)
            return nil
        }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Sends `datagrams` to 127.0.0.1:`port`, spread over `sockets` source ports: random bytes of random sizes, or
    /// STUN binding requests without credentials.
    static func udpJunk(port: Int, datagrams: Int, sockets count: Int, stun: Bool) {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &destination.sin_addr)
        var generator = SystemRandomNumberGenerator()
        var fds: [Int32] = []
        for _ in 0..<count { fds.append(socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)) }
        defer { for fd in fds { close(fd) } }
        for i in 0..<datagrams {
            var bytes: [UInt8]
            if stun {
                bytes = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42] + (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                bytes = (0..<Int.random(in: 1...1200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            _ = bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &destination) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fds[i % fds.count], raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            // About 50,000 per second: a pause every 500.
            if i % 500 == 499 { usleep(10_000) }
        }
    }

    /// Upgrades to a WebSocket on `port`, sends `text` as one frame and returns the first text reply (or what came).
    static func webSocketExchange(port: Int, _ text: String) throws -> String {
        try ServeCLITests.webSocketExchange(port: port, text)
    }
}
