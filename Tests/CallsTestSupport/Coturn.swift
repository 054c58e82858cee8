import CallsWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real coturn (`turnserver` from Debian's coturn package) on loopback for one test: TURN REST
/// secret, realm, a relay port range, loopback peers allowed, listening on 127.0.0.1 and 127.0.0.2
/// (two IPs make it an RFC 5780 server), plus TLS with a certificate made for the test.
// @unchecked Sendable: every stored property is a constant set in init.
public final class Coturn: @unchecked Sendable {
    public let port: UInt16
    public let tlsPort: UInt16
    public let secret = "s3cret-\(UInt32.random(in: 0...UInt32.max))"
    public let realm = "calls.test"
    public let directory: URL
    private let process: Process

    public var secretFile: String { directory.appendingPathComponent("secret").path }
    public var certFile: String { directory.appendingPathComponent("cert.pem").path }

    /// - Parameters:
    ///   - clockOffset: run coturn under libfaketime with its clock moved (e.g. "+2d").
    ///   - extraArguments: more turnserver options (e.g. `--user-quota=1`, `--verbose`).
    public init(clockOffset: String? = nil, extraArguments: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("coturn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try secret.write(toFile: directory.appendingPathComponent("secret").path, atomically: true, encoding: .utf8)
        chmod(directory.appendingPathComponent("secret").path, 0o600)
        try Self.makeCertificate(in: directory)
        // A port found free can be taken by a parallel test before coturn binds it (EADDRINUSE): try again with
        // other ports, a few times.
        var attempt = 0
        while true {
            attempt += 1
            let port = try freePort(tcpAndUDP: true)
            let tlsPort = try freePort(tcpAndUDP: true)
            let process = Self.launch(
                directory: directory, secret: secret, realm: realm, port: port, tlsPort: tlsPort, clockOffset: clockOffset,
                extraArguments: extraArguments)
            do {
                try process.run()
                try Self.waitUntilAnswering(process, port: port, directory: directory)
                self.port = port
                self.tlsPort = tlsPort
                self.process = process
                return
            } catch {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let log = (try? String(contentsOf: directory.appendingPathComponent("turn.log"), encoding: .utf8)) ?? ""
                guard attempt < 4, log.contains("errno=98") else { throw error }
                try? FileManager.default.removeItem(at: directory.appendingPathComponent("turn.log"))
            }
        }
    }

    private static func launch(
        directory: URL, secret: String, realm: String, port: UInt16, tlsPort: UInt16, clockOffset: String?,
        extraArguments: [String]
    ) -> Process {
        let relayBase = UInt16.random(in: 40000...59000)
        let args = [
            "-n", "--listening-ip=127.0.0.1", "--listening-ip=127.0.0.2", "--listening-port=\(port)",
            "--alt-listening-port=\(port + 1)", "--tls-listening-port=\(tlsPort)", "--alt-tls-listening-port=\(tlsPort + 1)",
            "--relay-ip=127.0.0.1", "--min-port=\(relayBase)", "--max-port=\(relayBase + 200)",
            "--use-auth-secret", "--static-auth-secret=\(secret)", "--realm=\(realm)", "--fingerprint", "--no-cli",
            "--no-dtls", "--allow-loopback-peers", "--cert=\(directory.appendingPathComponent("cert.pem").path)", "--pkey=\(directory.appendingPathComponent("key.pem").path)",
            "--log-file=\(directory.appendingPathComponent("turn.log").path)", "--pidfile=\(directory.appendingPathComponent("turn.pid").path)",
            "--no-stdout-log", "--simple-log",
        ] + extraArguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/turnserver")
        if let clockOffset {
            // libfaketime preloaded into turnserver itself: the faketime wrapper forks, so killing it left turnserver
            // running as an orphan after every run.
            var env = ProcessInfo.processInfo.environment
            env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
            env["FAKETIME"] = clockOffset
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            process.environment = env
        }
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    deinit {
        // coturn may take seconds to honour SIGTERM; a test's server has nothing to flush.
        kill(process.processIdentifier, SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        try? FileManager.default.removeItem(at: directory)
    }

    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("turn.log"), encoding: .utf8)) ?? "" }

    /// Polls with STUN Bindings until coturn answers (bounded: 10 s).
    private static func waitUntilAnswering(_ process: Process, port: UInt16, directory: URL) throws {
        var log: String { (try? String(contentsOf: directory.appendingPathComponent("turn.log"), encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning { throw CoturnError("turnserver exited at start: \(log.suffix(2000))") }
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let request = try STUNMessage(method: .binding, messageClass: .request).encoded()
            let address = STUNAddress(ip: "127.0.0.1", port: port)!
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = (address.ipv4 ?? 0).bigEndian
            _ = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    request.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            var buffer = [UInt8](repeating: 0, count: 1500)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                // TCP/TLS listeners come up with UDP; give them a moment more.
                usleep(100_000)
                return
            }
        }
        throw CoturnError("turnserver did not answer STUN on 127.0.0.1:\(port) within 10 s: \(log.suffix(2000))")
    }

    public static func makeCertificate(in directory: URL) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", directory.appendingPathComponent("key.pem").path, "-out", directory.appendingPathComponent("cert.pem").path,
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw CoturnError("openssl could not make a test certificate") }
    }
}

public struct CoturnError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A port free for UDP and TCP on 127.0.0.1 and the next port too (coturn also binds port+1 as
/// its alternate port), found by binding port 0.
public func freePort(tcpAndUDP: Bool) throws -> UInt16 {
    for _ in 0..<50 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        close(fd)
        let port = UInt16(bigEndian: sin.sin_port)
        if port < 60000 && port > 1024 && canBind(port) && canBind(port + 1) { return port }
    }
    throw CoturnError("no free port pair found")
}

private func canBind(_ port: UInt16) -> Bool {
    for type in [SOCK_DGRAM, SOCK_STREAM] {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = 0
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { return false }
    }
    return true
}

/// A UDP socket on loopback that never answers (a "filtered" or silent port).
public final class SilentUDP {
    public let fd: Int32
    public let port: UInt16
    public init() {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: sin.sin_port)
    }
    deinit { close(fd) }
}

/// A UDP port with nothing bound: sending there draws ICMP port unreachable on loopback.
public func closedUDPPort() -> UInt16 {
    let s = SilentUDP()
    return s.port  // released when `s` goes away
}
