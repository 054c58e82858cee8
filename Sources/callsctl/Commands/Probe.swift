import ArgumentParser
import CallsWire
import Foundation
import Probes

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe STUN and TURN servers and NAT behaviour, with verdicts and exit codes.",
        discussion: """
            Every probe has a time budget, prints a verdict, and exits 0 on success, 2 on a negative \
            answer (no answer, port closed, allocation refused, 100% loss) and 3 when it cannot decide.
            """,
        subcommands: [ProbeSTUN.self, ProbeTURN.self, ProbeNAT.self])
}

/// Options shared by the STUN-speaking probes.
struct TimingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Overall time budget in seconds.", valueName: "seconds")) var timeout: Double = 5
    @Option(help: ArgumentHelp("Initial retransmission timeout in milliseconds (UDP; doubles each time).", valueName: "ms"))
    var rto: Int = 250
    @Option(help: ArgumentHelp("Retransmissions per request (UDP).", valueName: "n")) var retries: Int = 3

    func validate() throws {
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds, got \(timeout).") }
        guard (10...10_000).contains(rto) else { throw ValidationError("--rto must be 10–10000 ms, got \(rto).") }
        guard (0...10).contains(retries) else { throw ValidationError("--retries must be 0–10, got \(retries).") }
    }

    var budget: Duration { .milliseconds(Int64(timeout * 1000)) }
    var policy: RetransmissionPolicy { RetransmissionPolicy(rto: .milliseconds(rto), retries: retries) }
}

extension ProbeTransportKind: ExpressibleByArgument {}

func ms(_ d: Duration?) -> JSONValue {
    guard let d else { return .null }
    return .double((d.inMilliseconds * 100).rounded() / 100)
}

func addressJSON(_ a: STUNAddress?) -> JSONValue { .string(a?.description) }

struct ProbeSTUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stun", abstract: "Send STUN Binding requests and report the mapped address and RTT.",
        discussion: """
            Reports the mapped address (XOR and plain; an ALG that rewrites one is flagged), \
            RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE and the RTT of every attempt. UDP requests are \
            retransmitted as RFC 8489 says (RTO, doubling) within the time budget.

            Exit 0 when the server answered; 2 when it did not answer within the budget, the port is \
            closed (ICMP port unreachable, reported at once) or it answered with an error.

            Examples:
              callsctl probe stun stun.example.com
              callsctl probe stun stun:stun.example.com:3478 --transport tcp --json
              callsctl probe stun stuns:turn.example.com:5349 --ca-file ca.pem
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("Server as host[:port] or a stun:/stuns: URI (port 3478, 5349 for stuns:).", valueName: "server"))
    var server: String
    @Option(help: ArgumentHelp("udp, tcp or tls (default: udp; tls for stuns:).", valueName: "udp|tcp|tls"))
    var transport: ProbeTransportKind?
    @Option(help: ArgumentHelp("Number of Binding requests.", valueName: "n")) var count: Int = 3
    @OptionGroup(title: "Timing") var timing: TimingOptions
    @Option(help: ArgumentHelp("Extra trusted CA certificates (PEM) for TLS.", valueName: "file"), completion: .file())
    var caFile: String?

    func validate() throws {
        guard (1...100).contains(count) else { throw ValidationError("--count must be 1–100, got \(count).") }
        do { _ = try ServerURI(parsing: server, defaultScheme: .stun) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let uri = try ServerURI(parsing: server, defaultScheme: .stun)
        var options = STUNProbe.Options()
        options.transport = transport ?? uri.impliedTransport
        options.count = count
        options.timeout = timing.budget
        options.policy = timing.policy
        options.caFile = caFile
        let out = global.output
        out.note("probing \(uri) over \(options.transport.rawValue) (budget \(timing.timeout) s)")
        let report = STUNProbe(uri: uri, options: options).run { out.debug($0) }
        if global.json {
            out.emit(
                .object([
                    ("schema", .string("callsctl.probe.stun/v1")), ("target", .string(report.target)),
                    ("transport", .string(report.transport.rawValue)), ("server", addressJSON(report.server)),
                    ("local", addressJSON(report.local)), ("verdict", .string(report.verdict.rawValue)),
                    ("ok", .bool(report.verdict == .ok)),
                    ("mappedAddress", addressJSON(report.mappedAddressForReport)),
                    ("xorMappedAddress", addressJSON(report.xorMappedAddress)),
                    ("plainMappedAddress", addressJSON(report.mappedAddress)), ("algRewrite", .bool(report.algRewrite)),
                    ("responseOrigin", addressJSON(report.responseOrigin)), ("otherAddress", addressJSON(report.otherAddress)),
                    ("software", .string(report.software)),
                    ("rttMs", ms(report.rtts.isEmpty ? nil : report.rtts.reduce(.zero, +) / report.rtts.count)),
                    ("attempts", .array(report.attempts.map { a in
                        .object([("index", .int(Int64(a.index))), ("transmissions", .int(Int64(a.transmissions))),
                                 ("rttMs", ms(a.rtt)), ("error", .string(a.error))])
                    })),
                    ("tls", tlsJSON(report.tls)),
                    ("message", .string(report.message)), ("durationMs", ms(report.elapsed)),
                ]))
        } else {
            let mark = report.verdict == .ok ? out.styled("OK", .green) : out.styled("FAIL", .red)
            out.line("\(mark)  \(report.message)")
            if let m = report.mappedAddressForReport { out.line("mapped address    \(m)") }
            if report.algRewrite {
                out.line(out.styled("warning: MAPPED-ADDRESS \(report.mappedAddress!) differs from XOR-MAPPED-ADDRESS \(report.xorMappedAddress!): an ALG rewrites STUN; disable SIP/STUN ALG on the router", .yellow))
            }
            if let o = report.responseOrigin { out.info("response origin   \(o)") }
            if let o = report.otherAddress { out.info("other address     \(o) (RFC 5780 capable)") }
            if let s = report.software { out.info("software          \(s)") }
            if let tls = report.tls { out.info("tls               \(tls.protocolVersion) \(tls.cipher), certificate \(tls.verified ? "trusted" : "NOT trusted: \(tls.verifyError ?? "?")")") }
            for a in report.attempts {
                out.info("attempt \(a.index): " + (a.rtt.map { String(format: "%.2f ms", $0.inMilliseconds) } ?? "no answer")
                    + " (\(a.transmissions) transmission\(a.transmissions == 1 ? "" : "s"))" + (a.error.map { " — \($0)" } ?? ""))
            }
        }
        if report.verdict != .ok { throw ExitCode(report.verdict == .failed && report.server == nil ? CallsExitCode.undecided.rawValue : CallsExitCode.negative.rawValue) }
    }
}

func tlsJSON(_ tls: TLSPeerInfo?) -> JSONValue {
    guard let tls else { return .null }
    return .object([
        ("version", .string(tls.protocolVersion)), ("cipher", .string(tls.cipher)), ("certificateTrusted", .bool(tls.verified)),
        ("verifyError", .string(tls.verifyError)), ("subject", .string(tls.subject)),
    ])
}

struct ProbeTURN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turn", abstract: "Allocate on a TURN server and prove a relayed round trip.",
        discussion: """
            Steps, each with status and time: resolve, connect (UDP/TCP/TLS), Allocate (401 → \
            authenticate, 438 stale nonce → retry once), CreatePermission, ChannelBind, a relayed round \
            trip (a second local socket, or --peer, sends through the relay and back), and Refresh \
            with lifetime 0 to clean up. A 401 is explained: expired credentials, a wrong secret, or \
            a TURN server clock far ahead. Secrets are read from files and never printed.

            Exit 0 when the relayed round trip worked; 2 when allocation was refused, credentials \
            failed, or every relayed packet was lost; 3 when the server could not be resolved.

            Examples:
              callsctl probe turn turn:turn.example.com:3478 --secret-file /etc/turn-secret
              callsctl probe turn 'turn:turn.example.com?transport=tcp' --secret-file s.txt --rest-user doctor
              callsctl probe turn turns:turn.example.com:5349 --user alice --password-file pw.txt --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("A turn: or turns: URI (port 3478, 5349 for turns:).", valueName: "uri")) var uri: String
    @Option(help: ArgumentHelp("Long-term credential user name (with --password-file).", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("File holding the password.", valueName: "file"), completion: .file()) var passwordFile: String?
    @Option(help: ArgumentHelp("File holding the TURN REST shared secret (coturn static-auth-secret).", valueName: "file"), completion: .file())
    var secretFile: String?
    @Option(help: ArgumentHelp("User part of the TURN REST user name.", valueName: "name")) var restUser: String = "callsctl-probe"
    @Option(help: ArgumentHelp("TURN REST credential lifetime in seconds.", valueName: "seconds")) var ttl: Int = 3600
    @Option(help: ArgumentHelp("udp, tcp or tls (default: from the URI).", valueName: "udp|tcp|tls")) var transport: ProbeTransportKind?
    @Option(help: ArgumentHelp("Relayed round-trip packets.", valueName: "n")) var count: Int = 5
    @Option(help: ArgumentHelp("A UDP echo peer instead of a local socket (for example turnutils_peer).", valueName: "ip:port"))
    var peer: String?
    @Option(help: ArgumentHelp("Extra trusted CA certificates (PEM) for turns:.", valueName: "file"), completion: .file())
    var caFile: String?
    @OptionGroup(title: "Timing") var timing: TimingOptions

    func validate() throws {
        do {
            let parsed = try ServerURI(parsing: uri, defaultScheme: .turn)
            if !parsed.scheme.isTURN { throw ValidationError("\"\(uri)\" is a STUN URI; give a turn: or turns: URI (use `callsctl probe stun` for STUN).") }
        } catch let error as URIError { throw ValidationError(error.description) }
        switch (user != nil || passwordFile != nil, secretFile != nil) {
        case (true, true): throw ValidationError("use either --user with --password-file, or --secret-file, not both.")
        case (false, false): throw ValidationError("credentials needed: --secret-file FILE (TURN REST shared secret), or --user NAME --password-file FILE.")
        case (true, false):
            if user == nil || passwordFile == nil { throw ValidationError("--user and --password-file go together.") }
        default: break
        }
        guard ttl > 0, ttl <= 10 * 365 * 86400 else { throw ValidationError("--ttl must be a positive number of seconds, got \(ttl).") }
        guard (1...100).contains(count) else { throw ValidationError("--count must be 1–100, got \(count).") }
        if let peer, STUNAddress(peer) == nil { throw ValidationError("--peer must be IP:PORT (for example 198.51.100.2:3480), got \"\(peer)\".") }
        if restUser.isEmpty || restUser.contains(":") { throw ValidationError("--rest-user must be a non-empty name without ':'.") }
    }

    func run() async throws {
        let parsed = try ServerURI(parsing: uri, defaultScheme: .turn)
        let credentials: TURNCredentials
        if let secretFile {
            credentials = .rest(secret: try SecretFile.read(secretFile, flag: "--secret-file"), user: restUser, ttl: ttl)
        } else {
            credentials = .longTerm(username: user!, password: try SecretFile.read(passwordFile!, flag: "--password-file"))
        }
        var options = TURNProbe.Options(credentials: credentials)
        options.transport = transport
        options.count = count
        options.timeout = .milliseconds(Int64(timing.timeout * 1000))
        options.policy = timing.policy
        options.caFile = caFile
        options.echoPeer = peer.flatMap(STUNAddress.init)
        let out = global.output
        out.note("probing \(parsed) over \((transport ?? parsed.impliedTransport).rawValue)")
        let report = TURNProbe(uri: parsed, options: options).run(progress: { out.debug($0) })
        if global.json {
            let rt = report.roundTrip
            let roundTrip: JSONValue = .object([
                ("sent", .int(Int64(rt.sent))), ("received", .int(Int64(rt.received))),
                ("lossPercent", .double(rt.lossPercent)), ("rttMs", ms(rt.averageRTT)),
                ("rttsMs", .array(rt.rtts.map { ms($0) })),
            ])
            let steps: [JSONValue] = report.steps.map { s in
                let code: JSONValue = s.errorCode.map { .int(Int64($0.code)) } ?? .null
                return .object([
                    ("name", .string(s.name)), ("status", .string(s.status.rawValue)), ("durationMs", ms(s.duration)),
                    ("detail", .string(s.detail)), ("errorCode", code), ("reason", .string(s.errorCode?.reason)),
                ])
            }
            let lifetime: JSONValue = report.lifetime.map { .int(Int64($0)) } ?? .null
            var fields: [(String, JSONValue)] = [
                ("schema", .string("callsctl.probe.turn/v1")), ("target", .string(report.target)),
                ("transport", .string(report.transport.rawValue)), ("server", addressJSON(report.server)),
                ("ok", .bool(report.ok)), ("relayedAddress", addressJSON(report.relayedAddress)),
                ("mappedAddress", addressJSON(report.mappedAddress)), ("lifetime", lifetime),
            ]
            fields += [
                ("realm", .string(report.realm)), ("software", .string(report.software)), ("peer", addressJSON(report.peer)),
                ("roundTrip", roundTrip), ("credentialProblem", .string(report.credentialProblem?.rawValue)),
                ("steps", .array(steps)), ("tls", tlsJSON(report.tls)),
                ("warnings", .array(report.warnings.map { .string($0) })),
                ("message", .string(report.message)), ("durationMs", ms(report.elapsed)),
            ]
            out.emit(.object(fields))
        } else {
            for s in report.steps {
                let mark: String
                switch s.status {
                case .pass: mark = out.styled("pass", .green)
                case .warn: mark = out.styled("warn", .yellow)
                case .fail: mark = out.styled("FAIL", .red)
                case .skip: mark = out.styled("skip", .dim)
                }
                let time = s.status == TURNProbe.StepStatus.skip ? "" : String(format: " %6.1f ms", s.duration.inMilliseconds)
                out.line("\(mark) \(s.name.padding(toLength: 13, withPad: " ", startingAt: 0))\(time)  \(s.detail)")
            }
            for w in report.warnings { out.line(out.styled("warning: ", .yellow) + w) }
            out.line(report.ok ? out.styled("OK", .green) + "  \(report.message)" : out.styled("FAIL", .red) + "  \(report.message)")
        }
        if !report.ok {
            let unresolved = report.steps.first?.name == "resolve" && report.steps.first?.status == .fail
            throw ExitCode(unresolved ? CallsExitCode.undecided.rawValue : CallsExitCode.negative.rawValue)
        }
    }
}

/// Reads a secret from a file: trimmed of the trailing newline, never echoed.
enum SecretFile {
    static func read(_ path: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(flag) \(path): cannot read the file (missing or not readable)", exitCode: .usage)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { throw CLIError("\(flag) \(path): the file is empty", exitCode: .usage) }
        if let attrs = try? FileManager.default.attributesOfItem(atPath: path), let mode = attrs[.posixPermissions] as? Int, mode & 0o004 != 0 {
            Output(json: false, quiet: false, verbose: false, noColor: true).warning("\(path) is world-readable; chmod 600 it")
        }
        return text
    }
}

struct ProbeNAT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nat", abstract: "Classify NAT mapping and filtering behaviour (RFC 5780, RFC 4787).",
        discussion: """
            With an RFC 5780 server (one that offers OTHER-ADDRESS, such as coturn with two listening \
            IPs) it measures mapping and filtering from one local socket; otherwise --servers a,b \
            compares the mappings two servers see. A symmetric NAT on a client is information, not a \
            failure, for an SFU. Exit 0 when classified, 3 when it could not decide.

            Examples:
              callsctl probe nat stun.example.com
              callsctl probe nat stun.example.com --hairpin --json
              callsctl probe nat --servers stun1.example.com,stun2.example.com
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("An RFC 5780 STUN server, host[:port] or stun: URI.", valueName: "server")) var server: String?
    @Option(help: ArgumentHelp("Two servers to compare mappings (comma-separated).", valueName: "a,b")) var servers: String?
    @Flag(help: "Also test hairpinning (a packet to our own mapped address comes back).") var hairpin = false
    @Option(help: ArgumentHelp("Overall time budget in seconds.", valueName: "seconds")) var timeout: Double = 10

    func validate() throws {
        if server == nil && servers == nil { throw ValidationError("give an RFC 5780 STUN server, or --servers a,b.") }
        if server != nil && servers != nil { throw ValidationError("give a server or --servers, not both.") }
        if let servers {
            let parts = servers.split(separator: ",").map(String.init)
            guard parts.count == 2 else { throw ValidationError("--servers needs exactly two servers separated by a comma, got \"\(servers)\".") }
            for p in parts { do { _ = try ServerURI(parsing: p, defaultScheme: .stun) } catch { throw ValidationError(error.description) } }
        }
        if let server { do { _ = try ServerURI(parsing: server, defaultScheme: .stun) } catch { throw ValidationError(error.description) } }
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds.") }
    }

    func run() async throws {
        var options = NATProbe.Options()
        options.timeout = .milliseconds(Int64(timeout * 1000))
        options.hairpin = hairpin
        let primary = try server.map { try ServerURI(parsing: $0, defaultScheme: .stun) }
        let comparison = try (servers?.split(separator: ",").map(String.init) ?? []).map { try ServerURI(parsing: $0, defaultScheme: .stun) }
        let out = global.output
        out.note("classifying NAT behaviour (budget \(timeout) s)")
        let report = NATProbe(primary: primary, comparison: comparison, options: options).run { out.debug($0) }
        if global.json {
            out.emit(
                .object([
                    ("schema", .string("callsctl.probe.nat/v1")), ("method", .string(report.method)),
                    ("servers", .array(report.servers.map { .string($0) })), ("local", addressJSON(report.local)),
                    ("mapped", .object(report.mapped.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value.description)) })),
                    ("otherAddress", addressJSON(report.otherAddress)),
                    ("mapping", .string(report.mapping.rawValue)), ("filtering", .string(report.filtering.rawValue)),
                    ("natType", .string(report.natType)), ("hairpinning", report.hairpinning.map { .bool($0) } ?? .null),
                    ("algRewrite", .bool(report.algRewrite)), ("decided", .bool(report.decided)),
                    ("impact", .string(report.impact)), ("notes", .array(report.notes.map { .string($0) })),
                    ("message", .string(report.message)), ("durationMs", ms(report.elapsed)),
                ]))
        } else {
            out.line("NAT type     \(report.natType)")
            out.line("mapping      \(report.mapping.rawValue)")
            out.line("filtering    \(report.filtering.rawValue)")
            if let h = report.hairpinning { out.line("hairpinning  \(h ? "yes" : "no")") }
            for (k, v) in report.mapped.sorted(by: { $0.key < $1.key }) { out.info("mapped (\(k))  \(v)") }
            out.line("for calls    \(report.impact)")
            for n in report.notes { out.info("note: \(n)") }
            if !report.decided { out.line(out.styled("could not decide: ", .yellow) + report.message) }
        }
        if !report.decided { throw ExitCode(CallsExitCode.undecided.rawValue) }
    }
}
