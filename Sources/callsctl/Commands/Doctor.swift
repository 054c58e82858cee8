import ArgumentParser
import CallsServer
import CallsStore
import Doctor
import Foundation
import Probes

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Diagnose a calls deployment end to end and rank the most likely cause of trouble.",
        discussion: """
            Checks the Mattermost site (HTTPS, the Calls plugin, the ICE servers it hands clients) with \
            --site-url, the media server's API on 8045 (/version, /readyz, its clock), the RTC port 8443 over \
            UDP and TCP, each STUN and TURN server (TURN with a relayed round trip, telling a wrong secret, \
            expired credentials and clock skew apart), whether a call may start in --channel, and then joins \
            an echo test with its own WebRTC client to prove that media flows both ways over UDP, over ICE-TCP \
            and relayed through each TURN server (turn: over UDP and TCP, turns: over TLS), measuring \
            handshake time, loss and round-trip time. Checks run concurrently under one --timeout; a check \
            whose prerequisite failed is skipped with the reason. With --role server it also checks the \
            ports can be bound, the UDP buffer sysctls, that /metrics and the admin API do not answer beyond \
            loopback, and (with --stun-url) that the ICE host override is the public address STUN sees. \
            --config takes a callsctl.toml or a bundle folder from `callsctl config generate bundle` as the \
            deployment (and checks it). Ctrl-C leaves the calls and frees the TURN allocations first.

            Exit 0 all passed (warnings allowed unless --strict), 1 warnings under --strict, 2 a check \
            failed, 3 nothing could be checked, 64 usage: usable as a Nagios-style monitoring check.
            --json prints one document (schema callsctl.doctor/v1, see docs/doctor.md); --junit FILE \
            writes JUnit XML, one test case per check.

            Examples:
              callsctl doctor --self-test
              callsctl doctor --config ./deploy --channel 4xp9fdt3pbdp7nrw7xjmrd8kkc
              callsctl doctor --url http://calls.example.com:8045 --token-file token.txt
              callsctl doctor --url http://127.0.0.1:8045 --token-secret-file /var/lib/callsctl/token-secret \\
                --channel 4xp9fdt3pbdp7nrw7xjmrd8kkc --stun-url stun:stun.example.com:3478 \\
                --turn-url turn:turn.example.com:3478 --turn-secret-file /etc/turn-secret --json
              callsctl doctor --role server --url http://127.0.0.1:8045 --stun-url stun:stun.example.com:3478 \
                --ice-host-override 203.0.113.7 --junit doctor.xml
              callsctl doctor --site-url https://chat.example.com --site-token-file mm-token \
                --turn-url turns:turn.example.com:5349 --turn-secret-file /etc/turn-secret --url http://calls:8045
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Option(
        name: [.customLong("url"), .customLong("rtcd-url")],
        help: ArgumentHelp("The media server's API (callsctl serve or rtcd).", valueName: "url"))
    var url: String?
    @Option(
        help: ArgumentHelp(
            "The Mattermost site: checks HTTPS, the Calls plugin, and the ICE servers it hands clients.", valueName: "url"))
    var siteURL: String?
    @Option(
        help: ArgumentHelp("File holding a Mattermost access token, to read the Calls plugin's client config.", valueName: "file"),
        completion: .file())
    var siteTokenFile: String?
    @Option(
        name: .customLong("ice-host-override"),
        help: ArgumentHelp("The host clients send media to (default: the --url host).", valueName: "host"))
    var iceHost: String?
    @Option(
        help: ArgumentHelp(
            "A callsctl.toml, or a bundle folder from `callsctl config generate bundle`: the deployment to check (flags win).",
            valueName: "path"),
        completion: .file())
    var config: String?
    @Option(help: ArgumentHelp("The RTC port, UDP and TCP (default: 8443, or the config's).", valueName: "port"))
    var rtcPort: UInt16?
    @Option(name: .customLong("stun-url"), help: ArgumentHelp("A STUN server to check (repeatable).", valueName: "url"))
    var stunURLs: [String] = []
    @Option(name: .customLong("turn-url"), help: ArgumentHelp("A TURN server to check (repeatable).", valueName: "url"))
    var turnURLs: [String] = []
    @Option(help: ArgumentHelp("File holding the TURN REST shared secret.", valueName: "file"), completion: .file())
    var turnSecretFile: String?
    @Option(help: ArgumentHelp("File holding a join token.", valueName: "file"), completion: .file())
    var tokenFile: String?
    @Option(
        help: ArgumentHelp("File holding the token secret, to make a join token (serve's token-secret).", valueName: "file"),
        completion: .file())
    var tokenSecretFile: String?
    @Option(
        help: ArgumentHelp("File holding the media server's admin key, to mint a join token through its admin API.", valueName: "file"),
        completion: .file())
    var adminKeyFile: String?
    @Option(help: ArgumentHelp("Channel in which a call must be allowed to start.", valueName: "channel-id"))
    var channel: String?
    @Option(help: ArgumentHelp("Where this runs: client (where users are) or server (the media host).", valueName: "role"))
    var role: String = "client"
    @Option(
        name: .customLong("cluster-db"),
        help: ArgumentHelp(
            "With --role server on a cluster node: the cluster's PostgreSQL (default: $CALLSCTL_CLUSTER_DB, else [cluster] of --config). Adds CLU001 (it answers) and CLU002 (this node heartbeats).",
            valueName: "postgres://user@host/db"))
    var clusterDB: String?
    @Option(help: ArgumentHelp("This node's cluster id (default: [cluster] node_id of --config, else the host name).", valueName: "id"))
    var clusterNodeID: String?
    @Option(help: ArgumentHelp("CA certificates for https/wss and TURN over TLS.", valueName: "file"), completion: .file())
    var caFile: String?
    @Option(help: ArgumentHelp("Only these checks (comma-separated ids).", valueName: "ids")) var only: String?
    @Option(help: ArgumentHelp("Skip these checks (comma-separated ids).", valueName: "ids")) var skip: String?
    @Option(help: ArgumentHelp("Time budget for the whole run, in seconds.", valueName: "seconds")) var timeout: Double = 30
    @Option(help: ArgumentHelp("Also write the results as JUnit XML to this file.", valueName: "file"), completion: .file())
    var junit: String?
    @Option(help: .hidden) var mediaPackets: Int = 50
    @Flag(help: "Treat warnings as failures (exit 1).") var strict = false
    @Flag(help: "Start a callsctl serve on loopback ephemeral ports and check it: a smoke test of this build and host.")
    var selfTest = false

    func validate() throws {
        guard (1...5000).contains(mediaPackets) else { throw ValidationError("--media-packets must be 1...5000.") }
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds.") }
        guard role == "client" || role == "server" else {
            throw ValidationError("--role must be client or server, not \"\(role)\".")
        }
        if selfTest && url != nil { throw ValidationError("--self-test checks its own server; leave out --url.") }
        if selfTest && config != nil { throw ValidationError("--self-test checks its own server; leave out --config.") }
        if !selfTest && config == nil && url == nil && siteURL == nil && iceHost == nil && stunURLs.isEmpty && turnURLs.isEmpty && role == "client" {
            throw ValidationError(
                "nothing to check: give --url of the media server (and --stun-url/--turn-url, --site-url), or --self-test.")
        }
        if let url { do { _ = try ProbeURL(parsing: url) } catch { throw ValidationError("--url: \(error)") } }
        if let siteURL { do { _ = try ProbeURL(parsing: siteURL) } catch { throw ValidationError("--site-url: \(error)") } }
        for s in stunURLs { do { _ = try ServerURI(parsing: s, defaultScheme: .stun) } catch { throw ValidationError("--stun-url: \(error)") } }
        for t in turnURLs { do { _ = try ServerURI(parsing: t, defaultScheme: .turn) } catch { throw ValidationError("--turn-url: \(error)") } }
        if let channel { do { _ = try ChannelID(validating: channel) } catch { throw ValidationError("--channel: \(error)") } }
        if tokenFile != nil && tokenSecretFile != nil {
            throw ValidationError("--token-file and --token-secret-file: give one (a token, or the secret to make one).")
        }
    }

    func run() async throws {
        let out = global.output
        var target = DoctorTarget()
        target.role = role == "server" ? .server : .client
        target.caFile = caFile
        target.mediaPackets = mediaPackets
        var selfServer: SelfTestServer?
        var selfTURN: SelfTestTURN?
        if selfTest {
            out.note("self-test: starting callsctl serve on loopback ephemeral ports")
            do { selfServer = try SelfTestServer.start() } catch { throw CLIError("self-test: \(error)", exitCode: .undecided) }
            let s = selfServer!
            target.apiURL = try? ProbeURL(parsing: "http://127.0.0.1:\(s.apiPort)")
            target.rtcUDPPort = s.udpPort
            target.rtcTCPPort = s.tcpPort
            target.tokenSecret = s.tokenSecret
            target.channel = try? ChannelID(validating: "calls0doctor0selftest00000")
            if let turnserver = SelfTestTURN.executable {
                out.note("self-test: starting coturn (\(turnserver)) on loopback")
                do {
                    let turn = try SelfTestTURN.start(executable: turnserver)
                    selfTURN = turn
                    target.turnSecret = turn.secret
                    target.stunURLs = [try ServerURI(parsing: "stun:127.0.0.1:\(turn.port)", defaultScheme: .stun)]
                    target.turnURLs = [try ServerURI(parsing: "turn:127.0.0.1:\(turn.port)", defaultScheme: .turn)]
                    if let tls = turn.tlsPort {
                        target.turnURLs.append(try ServerURI(parsing: "turns:127.0.0.1:\(tls)", defaultScheme: .turn))
                        target.caFile = turn.certFile
                    }
                } catch {
                    out.note("self-test: \(error); the TURN checks are left out")
                }
            } else {
                out.note("self-test: coturn is not installed (apt-get install coturn): the TURN checks are left out")
            }
        } else {
            target.apiURL = try url.map { try ProbeURL(parsing: $0) }
            target.rtcUDPPort = rtcPort ?? 8443
            target.rtcTCPPort = rtcPort ?? 8443
            target.channel = try channel.map { try ChannelID(validating: $0) }
        }
        defer {
            selfServer?.stop()
            selfTURN?.stop()
        }
        target.mediaHost = iceHost
        target.siteURL = try siteURL.map { try ProbeURL(parsing: $0) }
        if let siteTokenFile { target.siteToken = try SecretFile.read(siteTokenFile, flag: "--site-token-file") }
        target.stunURLs += try stunURLs.map { try ServerURI(parsing: $0, defaultScheme: .stun) }
        target.turnURLs += try turnURLs.map { try ServerURI(parsing: $0, defaultScheme: .turn) }
        if let turnSecretFile { target.turnSecret = try SecretFile.read(turnSecretFile, flag: "--turn-secret-file") }
        if let tokenFile { target.token = try SecretFile.read(tokenFile, flag: "--token-file") }
        if let adminKeyFile { target.adminKey = try SecretFile.read(adminKeyFile, flag: "--admin-key-file") }
        if let tokenSecretFile {
            do {
                target.tokenSecret = try TokenSecret.load(path: tokenSecretFile, create: false).bytes
            } catch {
                throw CLIError("--token-secret-file \(tokenSecretFile): \(error)", exitCode: .usage)
            }
        }

        var configInput: DoctorConfigInput?
        if let config {
            configInput = try DoctorConfigInput(path: config)
            configInput?.apply(to: &target, urlGiven: url != nil, rtcPortGiven: rtcPort != nil)
        }
        var checks = DoctorChecks.all(for: target)
        if target.role == .server,
            let cluster = try DoctorClusterChecks.target(
                flag: clusterDB, nodeFlag: clusterNodeID, config: configInput?.config, configPath: configInput?.file)
        {
            checks += DoctorClusterChecks.checks(cluster)
        }
        let onlyIDs = Set((only ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() })
        let skipIDs = Set((skip ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() })
        let known = Set(checks.map(\.id))
        for id in onlyIDs.union(skipIDs) where !known.contains(id) {
            throw CLIError(
                "no check \(id); the checks are \(checks.map(\.id).joined(separator: ", "))", exitCode: .usage)
        }
        if !onlyIDs.isEmpty { checks = checks.filter { onlyIDs.contains($0.id) }.map { $0.withoutMissingDependencies(in: onlyIDs) } }
        if !skipIDs.isEmpty { checks = checks.filter { !skipIDs.contains($0.id) }.map { $0.withoutMissingDependencies(in: Set(checks.map(\.id)).subtracting(skipIDs)) } }

        // Ctrl-C (or SIGTERM): leave the calls, free the TURN allocations, stop the self-test's servers, exit 130/143.
        let signals = SignalWait([SIGINT, SIGTERM])
        let caught = CaughtSignal()
        let interrupted = Task { [selfServer, selfTURN] in
            let sig = await signals.next()
            guard !Task.isCancelled else { return }
            caught.set()
            out.note("interrupted: leaving \(JoinCleanup.count) join test(s) and freeing their TURN allocations")
            await JoinCleanup.runAll()
            selfServer?.stop()
            selfTURN?.stop()
            Foundation.exit(128 + sig)
        }
        defer { interrupted.cancel() }
        let live = !global.json && !global.quiet && Terminal.standardError.isTTY
        let report = await DoctorRunner(
            checks: checks, timeout: .milliseconds(Int64(timeout * 1000)), review: DoctorChecks.review
        ) {
            done, total, running in
            guard live else { return }
            let names = running.prefix(4).joined(separator: " ")
            Terminal.standardError.write("\r\u{1B}[K[\(done)/\(total)] \(names)")
        }.run(role: role, strict: strict)
        if live { Terminal.standardError.write("\r\u{1B}[K") }
        // Interrupted: the cleanup ends the running joins, so their checks fail and the run returns; the exit code
        // is the signal's (130/143), which the interrupt task sets once the cleanup is done, not the report's.
        if caught.isSet { await interrupted.value }

        if let junit {
            do {
                try DoctorRendering.junit(report).write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("--junit \(junit): cannot write the file: \(error.localizedDescription)", exitCode: .usage)
            }
        }
        if global.json {
            out.emit(DoctorRendering.json(report, target: target, selfTest: selfTest))
        } else {
            DoctorRendering.human(report, out: out)
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

extension DoctorCheck {
    /// The check with dependencies outside `ids` dropped (they will not run, so they cannot be waited for).
    func withoutMissingDependencies(in ids: Set<String>) -> DoctorCheck {
        DoctorCheck(id, title, severity: severity, dependsOn: dependsOn.filter { ids.contains($0) }, run: run)
    }
}

/// Whether the doctor caught SIGINT/SIGTERM (set by the interrupt task, read by the main path).
final class CaughtSignal: @unchecked Sendable {
    // @unchecked: `value` is read and written only while `lock` is held.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
