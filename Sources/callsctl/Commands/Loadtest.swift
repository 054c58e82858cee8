import ArgumentParser
import CallsMedia
import CallsServer
import CallsStore
import Foundation
import LoadTest
import Logging
import Probes

struct Loadtest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a media server with real participants and report joins, loss and server cost.",
        discussion: """
            Every participant is the project's own WebRTC client (ICE, DTLS-SRTP) joined through the server's \
            signaling like a browser: it joins with a token, offers the audio slots `joined` asks for, connects \
            and follows renegotiations and the speaker map. Speakers send real Opus tones (one 20 ms frame every \
            20 ms, with RFC 6464 audio levels); everyone else joins muted and listens. At the end: join success \
            and time (p50/p95/p99), packets expected and received per listener, loss, jitter, renegotiations, and \
            the server's CPU and RSS: from /proc when --server-pid names a local server process, else from the \
            server's /metrics. On a terminal a status line shows joins, packets in and out per second, loss and the \
            server's CPU every second (quiet under --json). --report FILE.html writes one self-contained page with \
            the figures and charts of joins, throughput, loss and server CPU and memory over time; it is written \
            even when the run fails.

            Tokens: signed here with the server's token secret (--token-secret-file), or minted by the admin API \
            (--admin-key-file). Calls go to --channel (repeatable, one per call) or to new random channel ids \
            (with test mode on, enable them first or use --role admin).

            Exit status: 0 when every threshold held, 2 when loss passed --max-loss or failed joins passed \
            --max-join-failures, 1 when nobody could join (the report says why).

            Examples:
              callsctl loadtest --url http://127.0.0.1:8045 --token-secret-file /var/lib/callsctl/token-secret \\
                  --participants 50 --speakers 2 --duration 30
              callsctl loadtest --admin-key-file admin-key --calls 10 --participants 4 --speakers 1 --json
              callsctl loadtest --token-secret-file token-secret --participants 50 --speakers 1 --presenters 1
              callsctl loadtest --participants 1000 --speakers 2 --ramp 100 --server-pid $(pidof callsctl) \\
                  --max-loss 0.5 --max-join-failures 0 --report loadtest.html
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Option(help: ArgumentHelp("The media server's API URL (signaling at /ws).", valueName: "url"))
    var url: String = "http://127.0.0.1:8045"
    @Option(
        name: .customLong("join-url"),
        help: ArgumentHelp(
            "Join through these API URLs in turn (repeatable): the nodes of a cluster, which redirect each join to its call's node. Default: --url.",
            valueName: "url"))
    var joinURLs: [String] = []
    @Option(help: ArgumentHelp("The server's token secret, to sign join tokens here.", valueName: "file"), completion: .file())
    var tokenSecretFile: String?
    @Option(help: ArgumentHelp("The server's admin key, to mint join tokens with POST /api/v1/tokens.", valueName: "file"), completion: .file())
    var adminKeyFile: String?
    @Option(name: .customLong("channel"), help: ArgumentHelp("Channel id for a call (repeatable; one per call). Default: random ids.", valueName: "id"))
    var channels: [String] = []
    @Option(help: "Number of calls.") var calls: Int = 1
    @Option(help: "Participants per call.") var participants: Int = 10
    @Option(help: "Speakers per call (they send Opus tones; the others join muted).") var speakers: Int = 1
    @Option(help: ArgumentHelp("Presenters per call, 0 or 1: the first participant also shares a screen (a VP8 stream of about 130 kbit/s at 15 fps).", valueName: "n"))
    var presenters: Int = 0
    @Option(help: ArgumentHelp("Seconds of media after everyone joined.", valueName: "seconds")) var duration: Int = 10
    @Option(help: ArgumentHelp("Joins started per second (all calls together).", valueName: "n")) var ramp: Int = 50
    @Option(help: ArgumentHelp("Media transport: udp or tcp (ICE-TCP).", valueName: "udp|tcp")) var transport: String = "udp"
    @Option(help: ArgumentHelp("Role in the join tokens: user or admin.", valueName: "role")) var role: String = "user"
    @Option(help: ArgumentHelp("A local server process to sample CPU and RSS from /proc.", valueName: "pid")) var serverPid: Int32?
    @Option(help: ArgumentHelp("Exit 2 when the mean loss per listener passes this percentage.", valueName: "percent"))
    var maxLoss: Double?
    @Option(help: ArgumentHelp("Exit 2 when more joins than this fail.", valueName: "n")) var maxJoinFailures: Int?
    @Option(help: ArgumentHelp("Seconds a join (signaling, ICE, DTLS) may take.", valueName: "seconds")) var joinTimeout: Int = 20
    @Option(help: ArgumentHelp("Write an HTML report (figures and charts, self-contained) to this file.", valueName: "file.html"), completion: .file(extensions: ["html"]))
    var report: String?

    func validate() throws {
        if calls < 1 || calls > 1000 { throw ValidationError("--calls needs 1 to 1000 calls, not \(calls).") }
        if participants < 1 || participants > 5000 {
            throw ValidationError("--participants needs 1 to 5000 participants per call, not \(participants).")
        }
        if speakers < 0 || speakers > participants {
            throw ValidationError("--speakers needs 0 to --participants (\(participants)) speakers, not \(speakers).")
        }
        if !(0...1).contains(presenters) { throw ValidationError("--presenters is 0 or 1 (a call has one presenter at a time), not \(presenters).") }
        if presenters == 1 && participants < 2 { throw ValidationError("--presenters 1 needs at least 2 --participants (someone to view the screen).") }
        if duration < 1 || duration > 86_400 { throw ValidationError("--duration needs 1 to 86400 seconds, not \(duration).") }
        if ramp < 1 || ramp > 10_000 { throw ValidationError("--ramp needs 1 to 10000 joins per second, not \(ramp).") }
        if !["udp", "tcp"].contains(transport) { throw ValidationError("--transport must be udp or tcp, not \"\(transport)\".") }
        if JoinTokenClaims.Role(rawValue: role) == nil { throw ValidationError("--role must be user or admin, not \"\(role)\".") }
        if let maxLoss, !(0...100).contains(maxLoss) { throw ValidationError("--max-loss is a percentage from 0 to 100, not \(maxLoss).") }
        if let maxJoinFailures, maxJoinFailures < 0 { throw ValidationError("--max-join-failures needs 0 or more, not \(maxJoinFailures).") }
        if tokenSecretFile == nil && adminKeyFile == nil {
            throw ValidationError("give --token-secret-file (the server's token-secret) or --admin-key-file (its admin-key) so participants can get join tokens.")
        }
        if joinTimeout < 1 || joinTimeout > 600 { throw ValidationError("--join-timeout needs 1 to 600 seconds, not \(joinTimeout).") }
        for c in channels {
            do { _ = try ChannelID(validating: c) } catch { throw ValidationError("--channel \(error)") }
        }
        if let report {
            // Fail before the run, not after it: the folder must exist and be writable.
            let folder = URL(fileURLWithPath: report).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--report \(report): the folder \(folder) does not exist; create it or name another file.")
            }
            guard FileManager.default.isWritableFile(atPath: folder) else {
                throw ValidationError("--report \(report): the folder \(folder) is not writable.")
            }
        }
    }

    func run() async throws {
        let out = global.output
        let api: ProbeURL
        do { api = try ProbeURL(parsing: url) } catch {
            throw CLIError("--url \(url): \(error)", exitCode: .usage)
        }
        guard !api.secure else {
            throw CLIError("--url \(url): the load generator speaks ws:// only for now; point it at the API port directly (http://HOST:8045)", exitCode: .usage)
        }
        var plan = LoadTestPlan(host: api.host, port: Int(api.port), apiURL: api)
        for text in joinURLs {
            let u: ProbeURL
            do { u = try ProbeURL(parsing: text) } catch { throw CLIError("--join-url \(text): \(error)", exitCode: .usage) }
            guard !u.secure else {
                throw CLIError("--join-url \(text): the load generator speaks ws:// only for now; give http://HOST:8045", exitCode: .usage)
            }
            plan.joinTargets.append((u.host, Int(u.port)))
        }
        if let tokenSecretFile {
            do { plan.tokenSecret = try TokenSecret.load(path: tokenSecretFile, create: false).bytes } catch {
                throw CLIError("--token-secret-file \(tokenSecretFile): \(error)", exitCode: .usage)
            }
        }
        if let adminKeyFile { plan.adminKey = try SecretFile.read(adminKeyFile, flag: "--admin-key-file") }
        plan.calls = calls
        plan.participants = participants
        plan.speakers = speakers
        plan.presenters = presenters
        plan.duration = .seconds(duration)
        plan.ramp = ramp
        plan.transport = transport == "tcp" ? .tcp : .udp
        plan.channels = channels
        plan.role = JoinTokenClaims.Role(rawValue: role) ?? .user
        plan.serverPID = serverPid
        plan.joinTimeout = .seconds(joinTimeout)
        var logger = Logger(label: "callsctl.loadtest")
        logger.logLevel = global.verbose ? .info : .critical
        let showProgress = !global.json && !global.quiet
        out.note("loadtest: \(calls) call(s) x \(participants) participants, \(speakers) speaker(s) each, against \(url)")
        var progress: (@Sendable (String) -> Void)?
        var onSample: (@Sendable (LoadTestSample) -> Void)?
        let printer = ProgressPrinter(out: out)
        if showProgress {
            progress = { printer.print($0) }
            onSample = { printer.status($0) }
        }
        let startedAt = Date()
        let report = await LoadTestRunner.run(plan, logger: logger, progress: progress, onSample: onSample)
        if showProgress { printer.finish() }
        if let path = self.report {
            let page = LoadTestHTMLReport.render(
                report,
                run: .init(
                    title: "callsctl loadtest: \(calls) × \(participants) participants", url: url, calls: calls,
                    participantsPerCall: participants, speakersPerCall: speakers, presentersPerCall: presenters, transport: transport,
                    startedAt: startedAt))
            do {
                try Data(page.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                out.note("loadtest: report written to \(path)")
            } catch {
                out.warning("--report \(path): could not write the report: \(error.localizedDescription)")
            }
        }

        // Audio and the screen each hold the threshold.
        let lossExceeded = maxLoss.map { max(report.meanLoss, report.meanVideoLoss) * 100 > $0 } ?? false
        let failuresExceeded = maxJoinFailures.map { report.failedJoins.count > $0 } ?? false
        if global.json {
            out.emit(Self.json(report, plan: plan, lossExceeded: lossExceeded, failuresExceeded: failuresExceeded))
        } else {
            Self.human(report, out: out)
        }
        if report.joined == 0 {
            throw CLIError(
                "nobody could join: \(report.failedJoins.first ?? "no participant")", exitCode: .internalError,
                hint: "Check --url (the API port, 8045) and the token source; `callsctl doctor --url \(url)` tells more.")
        }
        if lossExceeded || failuresExceeded {
            var why: [String] = []
            if lossExceeded, let maxLoss {
                why.append("mean loss \(Self.pct(max(report.meanLoss, report.meanVideoLoss))) passed --max-loss \(maxLoss) %")
            }
            if failuresExceeded, let maxJoinFailures { why.append("\(report.failedJoins.count) failed joins passed --max-join-failures \(maxJoinFailures)") }
            throw CLIError(why.joined(separator: "; "), exitCode: .negative)
        }
    }

    static func pct(_ f: Double) -> String { String(format: "%.2f %%", f * 100) }
    static func ms(_ s: Double) -> String { String(format: "%.0f ms", s * 1000) }

    static func human(_ r: LoadTestReport, out: Output) {
        out.line("Joins: \(r.joined) of \(r.participants) in \(String(format: "%.1f", r.joinWallSeconds)) s (\(Int(r.joinsPerSecond))/s); join time p50 \(ms(r.percentile(0.5))), p95 \(ms(r.percentile(0.95))), p99 \(ms(r.percentile(0.99)))")
        for f in r.failedJoins.prefix(5) { out.line("  failed: \(f)") }
        if r.failedJoins.count > 5 { out.line("  ... and \(r.failedJoins.count - 5) more") }
        out.line("Renegotiations asked of participants: \(r.renegotiations)")
        if r.redirects > 0 || r.joinedAt.count > 1 {
            out.line("Cluster: \(r.redirects) redirect(s) followed; joined at " + r.joinedAt.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
        }
        out.line("Media: \(r.receivedPackets) of \(r.expectedPackets) packets received in \(String(format: "%.1f", r.mediaSeconds)) s; loss per listener mean \(pct(r.meanLoss)), worst \(pct(r.worstLoss)); \(r.undecryptable) undecryptable")
        if r.videoExpectedPackets > 0 || r.presenting > 0 {
            out.line("Screen: \(r.presenting) presenting; \(r.videoReceivedPackets) of \(r.videoExpectedPackets) packets received by the viewers; loss per viewer mean \(pct(r.meanVideoLoss)), worst \(pct(r.viewerLoss.max() ?? 0))")
        }
        if let mean = r.meanJitterMilliseconds, let worst = r.worstJitterMilliseconds {
            out.line("Jitter: mean \(String(format: "%.2f", mean)) ms, worst stream \(String(format: "%.2f", worst)) ms")
        }
        if let cpu = r.serverCPUSeconds {
            out.line("Server (\(r.serverSource == "proc" ? "/proc" : "/metrics")): \(String(format: "%.2f", cpu)) s of CPU during the run" + (r.serverRSSBytesAfter.map { ", RSS \($0 / 1_048_576) MiB" } ?? "") + (r.serverRSSBytesBefore.map { " (\($0 / 1_048_576) MiB before)" } ?? ""))
        }
    }

    static func json(_ r: LoadTestReport, plan: LoadTestPlan, lossExceeded: Bool, failuresExceeded: Bool) -> JSONValue {
        var server: [(String, JSONValue)] = []
        if let cpu = r.serverCPUSeconds { server.append(("cpuSeconds", .double(cpu))) }
        if let b = r.serverRSSBytesBefore { server.append(("rssBytesBefore", .int(Int64(b)))) }
        if let a = r.serverRSSBytesAfter { server.append(("rssBytesAfter", .int(Int64(a)))) }
        if let source = r.serverSource { server.append(("source", .string(source))) }
        let peakCPU = r.timeline.compactMap(\.serverCPU).max()
        if let peakCPU { server.append(("peakCores", .double(peakCPU))) }
        return .object([
            ("calls", .int(Int64(plan.calls))), ("participantsPerCall", .int(Int64(plan.participants))),
            ("speakersPerCall", .int(Int64(plan.speakers))), ("presentersPerCall", .int(Int64(plan.presenters))), ("channels", .array(r.channels.map { .string($0) })),
            ("joins", .object([
                ("attempted", .int(Int64(r.participants))), ("joined", .int(Int64(r.joined))),
                ("failed", .int(Int64(r.failedJoins.count))), ("failures", .array(r.failedJoins.prefix(20).map { .string($0) })),
                ("wallSeconds", .double(r.joinWallSeconds)), ("perSecond", .double(r.joinsPerSecond)),
                ("p50Seconds", .double(r.percentile(0.5))), ("p95Seconds", .double(r.percentile(0.95))),
                ("p99Seconds", .double(r.percentile(0.99))),
            ])),
            ("renegotiations", .int(Int64(r.renegotiations))),
            ("redirects", .int(Int64(r.redirects))),
            ("joinedAt", .object(r.joinedAt.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
            ("media", .object([
                ("seconds", .double(r.mediaSeconds)), ("expectedPackets", .int(Int64(r.expectedPackets))),
                ("receivedPackets", .int(Int64(r.receivedPackets))), ("meanLoss", .double(r.meanLoss)),
                ("worstLoss", .double(r.worstLoss)), ("undecryptable", .int(Int64(r.undecryptable))),
                ("listenersAbove0.5Percent", .int(Int64(r.listenerLoss.filter { $0 > 0.005 }.count))),
                ("listenersWithFullSpeakerMap", .int(Int64(r.listenersWithFullSpeakerMap))),
                ("meanJitterMs", r.meanJitterMilliseconds.map { .double($0) } ?? .null),
                ("worstJitterMs", r.worstJitterMilliseconds.map { .double($0) } ?? .null),
            ])),
            ("timeline", .array(r.timeline.map { s in
                .object([
                    ("seconds", .double(s.seconds)), ("phase", .string(s.phase)), ("joined", .int(Int64(s.joined))),
                    ("failed", .int(Int64(s.failed))), ("receivedPerSecond", .double(s.receivedPerSecond)),
                    ("sentPerSecond", .double(s.sentPerSecond)), ("loss", s.loss.map { .double($0) } ?? .null),
                    ("serverCores", s.serverCPU.map { .double($0) } ?? .null),
                    ("serverRSSBytes", s.serverRSSBytes.map { .int(Int64($0)) } ?? .null),
                ])
            })),
            ("video", .object([
                ("presenting", .int(Int64(r.presenting))), ("sentPackets", .int(Int64(r.videoPacketsSent))),
                ("expectedPackets", .int(Int64(r.videoExpectedPackets))), ("receivedPackets", .int(Int64(r.videoReceivedPackets))),
                ("meanLoss", .double(r.meanVideoLoss)), ("worstLoss", .double(r.viewerLoss.max() ?? 0)),
            ])),
            ("server", .object(server)),
            ("thresholds", .object([("lossExceeded", .bool(lossExceeded)), ("joinFailuresExceeded", .bool(failuresExceeded))])),
        ])
    }
}

/// Progress of a load test on standard error: step lines, and each second's figures. On a terminal the figures
/// rewrite one status line; in a log (not a terminal) each second gets a line.
final class ProgressPrinter: @unchecked Sendable {
    // @unchecked: `statusShown` is behind `lock`.
    let out: Output
    private let lock = NSLock()
    private var statusShown = false
    private let tty = Terminal.standardError.isTTY

    init(out: Output) {
        self.out = out
    }

    func print(_ line: String) {
        lock.withLock {
            clearStatus()
            out.note("loadtest: \(line)")
        }
    }

    func status(_ sample: LoadTestSample) {
        lock.withLock {
            if tty {
                Terminal.standardError.write("\r\u{1B}[K" + "loadtest: " + sample.progressLine)
                statusShown = true
            } else {
                out.note("loadtest: \(sample.progressLine)")
            }
        }
    }

    func finish() { lock.withLock { clearStatus() } }

    private func clearStatus() {
        guard statusShown else { return }
        Terminal.standardError.write("\r\u{1B}[K")
        statusShown = false
    }
}
