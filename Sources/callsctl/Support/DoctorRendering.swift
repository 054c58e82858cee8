import CallsServer
import Doctor
import Foundation
import CallsWire
import Probes

/// The doctor's report for people (a table and the most likely cause), for programs (JSON, callsctl.doctor/v1)
/// and for CI systems (JUnit XML).
enum DoctorRendering {
    static func human(_ report: DoctorReport, out: Output) {
        let idWidth = max(6, (report.results.map(\.id.count).max() ?? 0) + 2)
        out.line(
            out.styled(
                "CHECK".padding(toLength: idWidth, withPad: " ", startingAt: 0) + "STATUS  " + "TIME     " + "RESULT", .bold))
        for r in report.results {
            let status = r.status.rawValue.uppercased().padding(toLength: 8, withPad: " ", startingAt: 0)
            let colored: String
            switch r.status {
            case .pass: colored = out.styled(status, .green)
            case .warn: colored = out.styled(status, .yellow)
            case .fail, .error: colored = out.styled(status, .red)
            case .skip: colored = out.styled(status, .dim)
            }
            let time = "\(r.durationMs) ms".padding(toLength: 9, withPad: " ", startingAt: 0)
            out.line(
                r.id.padding(toLength: idWidth, withPad: " ", startingAt: 0) + colored + time + r.title + ": "
                    + r.outcome.message)
        }
        out.line()
        let counts = CheckStatus.allCases.map { "\(report.count($0)) \($0.rawValue)" }.joined(separator: ", ")
        out.line("\(report.results.count) checks in \(milliseconds(report.duration)) ms: \(counts)")
        if let cause = report.mostLikelyCause {
            out.line()
            out.line(out.styled("Most likely cause: \(cause.id) \(cause.title)", .bold))
            out.line("  \(cause.outcome.message)")
            for step in cause.outcome.remediation { out.line("  fix: \(step)") }
            let others = report.results.filter {
                $0.id != cause.id && ($0.status == .fail || $0.status == .warn) && !$0.outcome.remediation.isEmpty
            }
            if !others.isEmpty {
                out.line()
                out.line("Also:")
                for r in others {
                    out.line("  \(r.id) (\(r.status.rawValue)): \(r.outcome.remediation.joined(separator: "; "))")
                }
            }
        } else {
            out.line(out.styled("Everything checked passed.", .green))
        }
    }

    static func json(_ report: DoctorReport, target: DoctorTarget, selfTest: Bool) -> JSONValue {
        let iso = ISO8601DateFormatter()
        let cause = report.mostLikelyCause
        return .object([
            ("schema", .string("callsctl.doctor/v1")),
            ("tool", .object([("name", .string("callsctl")), ("version", .string(BuildInfo.version))])),
            ("startedAt", .string(iso.string(from: report.startedAt))),
            ("durationMs", .int(Int64(milliseconds(report.duration)))),
            ("role", .string(report.role)),
            ("selfTest", .bool(selfTest)),
            (
                "target",
                .object([
                    ("url", target.apiURL.map { .string("\($0)") } ?? .null),
                    ("mediaHost", .string(target.mediaHost ?? target.apiURL?.host)),
                    ("rtcPorts", .object([("udp", .int(Int64(target.rtcUDPPort))), ("tcp", .int(Int64(target.rtcTCPPort)))])),
                    ("stunURLs", .array(target.stunURLs.map { .string("\($0)") })),
                    ("turnURLs", .array(target.turnURLs.map { .string("\($0)") })),
                    ("channel", .string(target.channel?.rawValue)),
                ])
            ),
            (
                "summary",
                .object(
                    [("status", .string(report.verdict))]
                        + CheckStatus.allCases.map { ($0.rawValue, .int(Int64(report.count($0)))) } + [
                            ("exitCode", .int(Int64(report.exitCode))),
                            ("mostLikelyCause", .string(cause?.id)),
                            ("remediation", .array((cause?.outcome.remediation ?? []).map { .string($0) })),
                        ])
            ),
            (
                "checks",
                .array(
                    report.results.map { r in
                        .object([
                            ("id", .string(r.id)), ("title", .string(r.title)), ("status", .string(r.status.rawValue)),
                            ("severity", .string(r.severity.rawValue)), ("message", .string(r.outcome.message)),
                            ("evidence", .object(r.outcome.evidence.map { ($0.0, value($0.1)) })),
                            ("remediation", .array(r.outcome.remediation.map { .string($0) })),
                            ("durationMs", .int(Int64(r.durationMs))),
                            ("dependsOn", .array(r.dependsOn.map { .string($0) })),
                        ])
                    })
            ),
        ])
    }

    static func value(_ v: EvidenceValue) -> JSONValue {
        switch v {
        case .string(let s): .string(s)
        case .int(let i): .int(Int64(i))
        case .double(let d): .double(d)
        case .bool(let b): .bool(b)
        }
    }

    /// One test case per check: fail and error are failures, skip is skipped.
    static func junit(_ report: DoctorReport) -> String {
        func esc(_ s: String) -> String {
            var out = ""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case let c where c.value < 0x20 && c != "\n" && c != "\t": out += " "
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let failures = report.count(.fail) + report.count(.error)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml +=
            "<testsuite name=\"callsctl doctor\" tests=\"\(report.results.count)\" failures=\"\(failures)\" skipped=\"\(report.count(.skip))\" time=\"\(String(format: "%.3f", Double(milliseconds(report.duration)) / 1000))\">\n"
        for r in report.results {
            xml +=
                "  <testcase classname=\"doctor\" name=\"\(esc(r.id + " " + r.title))\" time=\"\(String(format: "%.3f", Double(r.durationMs) / 1000))\">"
            let detail = esc(([r.outcome.message] + r.outcome.remediation.map { "fix: \($0)" }).joined(separator: "\n"))
            switch r.status {
            case .fail, .error:
                xml += "\n    <failure message=\"\(esc(r.outcome.message))\" type=\"\(r.status.rawValue)\">\(detail)</failure>\n  "
            case .skip: xml += "\n    <skipped message=\"\(esc(r.outcome.message))\"/>\n  "
            case .warn: xml += "\n    <system-out>warning: \(detail)</system-out>\n  "
            case .pass: break
            }
            xml += "</testcase>\n"
        }
        return xml + "</testsuite>\n"
    }
}

/// `doctor --self-test`: this very binary's `serve`, on loopback ephemeral ports with a temporary data directory.
// @unchecked Sendable: every property is a constant set at start.
final class SelfTestServer: @unchecked Sendable {
    let process: Process
    let dataDir: String
    let apiPort: Int
    let udpPort: UInt16
    let tcpPort: UInt16
    let tokenSecret: [UInt8]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func start() throws -> SelfTestServer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("callsctl-doctor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let p = Process()
        p.executableURL = exe
        p.arguments = ["serve", "--api-listen", "127.0.0.1:0", "--rtc-listen", "127.0.0.1:0", "--data-dir", dir]
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var lines: [String] = []
        var buffer = Data()
        let deadline = Date().addingTimeInterval(30)
        let handle = out.fileHandleForReading
        while !lines.contains(where: { $0.hasPrefix("data directory:") }), Date() < deadline, p.isRunning {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let nl = buffer.firstIndex(of: 0x0A) {
                lines.append(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...nl)
            }
        }
        func fail(_ why: String) -> Failure {
            p.terminate()
            try? FileManager.default.removeItem(atPath: dir)
            return Failure(description: "\(why); serve printed: \(lines.joined(separator: " | "))")
        }
        guard let apiLine = lines.first(where: { $0.hasPrefix("api listening on ") }),
            let api = Int(apiLine.split(separator: ":").last ?? "")
        else { throw fail("serve did not start") }
        guard let rtcLine = lines.first(where: { $0.hasPrefix("rtc listening on ") }) else { throw fail("serve printed no RTC ports") }
        func port(_ proto: String) -> UInt16? {
            let parts = rtcLine.components(separatedBy: CharacterSet(charactersIn: ":, "))
            return parts.first { $0.hasSuffix("/\(proto)") }.flatMap { UInt16($0.dropLast(proto.count + 1)) }
        }
        guard let udp = port("udp"), let tcp = port("tcp") else { throw fail("serve printed no UDP and TCP port") }
        let loaded: [UInt8]
        do { loaded = try TokenSecret.load(path: dir + "/token-secret", create: false).bytes } catch {
            throw fail("serve's token secret: \(error)")
        }
        return SelfTestServer(process: p, dataDir: dir, apiPort: api, udpPort: udp, tcpPort: tcp, tokenSecret: loaded)
    }

    private init(process: Process, dataDir: String, apiPort: Int, udpPort: UInt16, tcpPort: UInt16, tokenSecret: [UInt8]) {
        self.process = process
        self.dataDir = dataDir
        self.apiPort = apiPort
        self.udpPort = udpPort
        self.tcpPort = tcpPort
        self.tokenSecret = tokenSecret
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: dataDir)
    }
}

/// coturn for `doctor --self-test`, when `turnserver` is installed: TURN REST secret, loopback listeners on ports
/// found free, loopback peers allowed (the media server is on loopback), and TLS when `openssl` can make a
/// certificate for it.
// @unchecked Sendable: every property is a constant set at start.
final class SelfTestTURN: @unchecked Sendable {
    let process: Process
    let directory: String
    let port: UInt16
    let tlsPort: UInt16?
    let secret: String
    var certFile: String? { tlsPort == nil ? nil : directory + "/cert.pem" }

    /// The installed turnserver, or nil.
    static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
            let candidate = "\(dir)/turnserver"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func start(executable: String) throws -> SelfTestTURN {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("callsctl-doctor-turn-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var secretBytes = [UInt8](repeating: 0, count: 24)
        for i in secretBytes.indices { secretBytes[i] = UInt8.random(in: 0...255) }
        let secret = Data(secretBytes).base64EncodedString()
        let tls = makeCertificate(in: dir)
        var lastError = "no free ports"
        for _ in 0..<4 {
            guard let port = freeLoopbackPort(), let tlsPort = freeLoopbackPort(), port != tlsPort else { continue }
            let relayBase = Int.random(in: 40000...59000)
            var args = [
                "-n", "--listening-ip=127.0.0.1", "--listening-port=\(port)", "--relay-ip=127.0.0.1",
                "--min-port=\(relayBase)", "--max-port=\(relayBase + 200)", "--use-auth-secret",
                "--static-auth-secret=\(secret)", "--realm=callsctl.self-test", "--fingerprint", "--no-cli", "--no-dtls",
                "--allow-loopback-peers", "--log-file=\(dir)/turn.log", "--pidfile=\(dir)/turn.pid", "--no-stdout-log",
                "--simple-log",
            ]
            if tls {
                args += ["--tls-listening-port=\(tlsPort)", "--cert=\(dir)/cert.pem", "--pkey=\(dir)/key.pem"]
            } else {
                args += ["--no-tls"]
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let server = SelfTestTURN(process: p, directory: dir, port: port, tlsPort: tls ? tlsPort : nil, secret: secret)
            if server.waitUntilAnswering() { return server }
            lastError = (try? String(contentsOfFile: dir + "/turn.log", encoding: .utf8)).map { String($0.suffix(400)) } ?? "turnserver did not answer"
            server.stop(keepDirectory: true)
        }
        try? FileManager.default.removeItem(atPath: dir)
        throw SelfTestServer.Failure(description: "coturn did not start: \(lastError)")
    }

    private init(process: Process, directory: String, port: UInt16, tlsPort: UInt16?, secret: String) {
        self.process = process
        self.directory = directory
        self.port = port
        self.tlsPort = tlsPort
        self.secret = secret
    }

    /// STUN Bindings until coturn answers (10 s at most; TCP/TLS listeners come up with UDP).
    private func waitUntilAnswering() -> Bool {
        let deadline = Date().addingTimeInterval(10)
        guard let uri = try? ServerURI(parsing: "stun:127.0.0.1:\(port)", defaultScheme: .stun) else { return false }
        while Date() < deadline, process.isRunning {
            var options = STUNProbe.Options()
            options.count = 1
            options.timeout = .milliseconds(300)
            if STUNProbe(uri: uri, options: options).run().verdict == .ok {
                usleep(100_000)
                return true
            }
        }
        return false
    }

    func stop(keepDirectory: Bool = false) {
        if process.isRunning {
            // coturn may take seconds to honour SIGTERM; a self-test's relay has nothing to keep.
            kill(process.processIdentifier, SIGKILL)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
        }
        if !keepDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A self-signed certificate for 127.0.0.1 made with the openssl command, if there is one.
    private static func makeCertificate(in dir: String) -> Bool {
        guard let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: openssl)
        p.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "\(dir)/key.pem", "-out",
            "\(dir)/cert.pem",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// A port free for UDP and TCP on 127.0.0.1 (bound with port 0, then released).
    private static func freeLoopbackPort() -> UInt16? {
        guard let socket = try? UDPProbeSocket(family: .ipv4, local: STUNAddress(ip: "127.0.0.1", port: 0)),
            let port = socket.localAddress?.port
        else { return nil }
        _ = socket
        return port
    }
}
