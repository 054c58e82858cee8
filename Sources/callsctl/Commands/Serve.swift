import ArgumentParser
import CallsCluster
import CallsConfig
import CallsServer
import CallsStore
import Foundation
import Logging
import Probes

import CallsMedia

/// Builds the media transport; the one place to switch implementations.
func makeMediaBackend(configuration: MediaBackendConfiguration, logger: Logger) throws -> any MediaBackend {
    try MediaServer(configuration: MediaServerConfiguration(configuration), logger: logger)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the embedded media server (SFU) on embedded defaults or the given settings.",
        discussion: """
            Listens for media on UDP and TCP 8443 (ICE-lite, DTLS-SRTP, RTP/RTCP) and serves the \
            WebSocket signaling, admin API and metrics on TCP 8045. With no flags it uses embedded \
            defaults: settings in calls.db and generated secrets in the data directory. Open \
            http://HOST:8045/?token=TOKEN in a browser to join the call of the token's channel (tokens come \
            from `callsctl token create`; add &echo=1 for an echo test).

            Calls: a call belongs to a channel; it starts when the first participant joins (the channel \
            policy of `callsctl channel` is asked then, with no restart needed after a change) and ends when \
            the last leaves. Each participant receives --audio-slots audio streams (default 3) holding the \
            call's current speakers (unmuted, loudest first, never itself), so a listener costs the same in a \
            call of 5 or 1,000 and joins need no renegotiation; one participant at a time shares a screen. \
            --max-participants caps a call (default: unlimited, as in the Calls plugin; 50 is advised).

            Stopping: SIGTERM or SIGINT drains: /readyz turns 503, new joins are refused (server_draining), \
            running calls go on until they end or --drain-timeout passes, then the process exits 0. A second \
            SIGTERM or SIGINT stops at once. SIGHUP reloads the config file: the TURN secret and URLs, \
            --max-participants, the log level and the drain timeout apply to the joins after it; other changes are \
            logged as needing a restart; running calls are not touched, and a file that does not load changes nothing.

            systemd: under Type=notify serve sends READY=1 once the ports are bound, WATCHDOG=1 from the media thread \
            when the unit sets WatchdogSec=, RELOADING=1 on SIGHUP and STOPPING=1 when draining (callsctl config \
            generate systemd writes such a unit). Logs: --log-format json prints one JSON object per line (time, \
            level, msg, logger, and metadata such as session.id and call.channel) for Loki or Elasticsearch.

            Admin API: GET /api/v1/calls lists calls and participants, DELETE /api/v1/calls/CHANNEL ends a \
            call, DELETE /api/v1/sessions/ID removes a participant. It needs "Authorization: Bearer KEY"; the key is the file --admin-key-file, else \
            admin-key in the data directory (generated on first start, mode 0600). Its path is printed at \
            start, never the key.

            Clusters: with --cluster-db postgres://USER@HOST/DB (env CALLSCTL_CLUSTER_DB, or [cluster] in the config \
            file) serve is one node of several sharing that PostgreSQL: channel settings live there (changes reach \
            every node at once), nodes heartbeat into a registry, and each channel's call runs on one node: the first \
            join claims it, joins reaching other nodes get a redirect to --cluster-public-url of its node. Nodes must \
            share the token and TURN secrets (compared by keyed fingerprint; a node whose secrets differ exits 2). An \
            unreachable database at start is exit 3; lost later, running calls go on and new calls are refused until \
            it is back. Without --cluster-db: one node on SQLite, as always.

            ICE servers for clients: --stun-url and --turn-url are handed to clients in the join answer; TURN \
            URLs get fresh TURN REST credentials made with the shared secret in --turn-secret-file (never \
            printed or logged), valid for --turn-ttl seconds.

            Every flag has an environment twin; flags win: CALLSCTL_RTC_LISTEN, CALLSCTL_API_LISTEN, \
            CALLSCTL_ICE_HOST_OVERRIDE, CALLSCTL_STUN_SERVERS (comma-separated), \
            CALLSCTL_TOKEN_SECRET_FILE, CALLSCTL_NO_UDP_CANDIDATES=1, CALLSCTL_ADMIN_KEY_FILE, \
            CALLSCTL_DRAIN_TIMEOUT, CALLSCTL_MAX_PARTICIPANTS, CALLSCTL_AUDIO_SLOTS, CALLSCTL_STUN_URLS and CALLSCTL_TURN_URLS (comma-separated), \
            CALLSCTL_TURN_SECRET_FILE, CALLSCTL_TURN_TTL.

            Config file: --config FILE (or CALLSCTL_CONFIG), else callsctl.toml in the data directory if it \
            exists. Precedence: defaults < file < environment < flags. Every key also has the environment \
            name CALLSCTL_<SECTION>_<KEY> (CALLSCTL_RTC_ICE_PORT_UDP); see `callsctl config show --effective`. \
            An invalid config file stops serve with exit 2 and every error listed.

            Advertised address: --ice-host-override, else the public IP learned once at start from \
            the --stun-server list, else the addresses of the local interfaces (air-gapped networks).

            Examples:
              callsctl serve
              callsctl serve --ice-host-override calls.example.com --stun-server stun.example.com
              callsctl serve --rtc-listen 0.0.0.0:8443 --api-listen 127.0.0.1:8045
              callsctl serve --drain-timeout 120 --admin-key-file /etc/callsctl/admin-key
              callsctl serve --stun-url stun:stun.example.com:3478 \\
                --turn-url 'turn:turn.example.com:3478?transport=udp' --turn-url turns:turn.example.com:5349 \\
                --turn-secret-file /etc/callsctl/turn-secret --turn-ttl 3600
              curl -H "Authorization: Bearer $(cat ~/.local/share/callsctl/admin-key)" http://127.0.0.1:8045/api/v1/calls
              callsctl serve --cluster-db postgres://callsctl@db.internal:5432/mattermost?sslmode=require \
                --cluster-db-password-file /etc/callsctl/db-password --cluster-node-id calls-1 \
                --cluster-public-url https://calls-1.example.com --token-secret-file /etc/callsctl/token-secret
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions

    @Option(help: ArgumentHelp("Media address, UDP and TCP. Default: 0.0.0.0:8443.", valueName: "host:port"))
    var rtcListen: String?

    @Option(help: ArgumentHelp("HTTP/WebSocket API address. Default: 0.0.0.0:8045.", valueName: "host:port"))
    var apiListen: String?

    @Option(help: ArgumentHelp("IP or hostname advertised in ICE candidates (resolved at start).", valueName: "host"))
    var iceHostOverride: String?

    @Option(
        name: .customLong("stun-server"),
        help: ArgumentHelp("STUN server used once at start to learn the public IP (repeatable).", valueName: "host[:port]"))
    var stunServers: [String] = []

    @Option(
        help: ArgumentHelp(
            "File with the secret that signs join tokens (base64). Default: token-secret in the data directory.",
            valueName: "file"),
        completion: .file())
    var tokenSecretFile: String?

    @Flag(
        name: .customLong("no-udp-candidates"),
        help: "Diagnostic: offer only the TCP candidate in answers (forces ICE-TCP, to test TCP 8443).")
    var noUDPCandidates = false

    @Option(
        help: ArgumentHelp(
            "File with the admin API bearer key. Default: admin-key in the data directory (generated).", valueName: "file"),
        completion: .file())
    var adminKeyFile: String?

    @Option(
        help: ArgumentHelp(
            "After SIGTERM, how long running calls may go on before the process exits. Default: 30.",
            valueName: "seconds"))
    var drainTimeout: Int?

    @Option(
        help: ArgumentHelp(
            "Participants allowed in one call; the next join is refused with a reason. Default: unlimited (the docs advise 50).",
            valueName: "n"))
    var maxParticipants: Int?

    @Option(
        help: ArgumentHelp(
            "Audio streams each participant receives: the call's current speakers (loudest first, never itself), whatever the call's size. 1-16, default 3.",
            valueName: "n"))
    var audioSlots: Int?

    @Option(
        help: ArgumentHelp(
            "API connections open at once (HTTP and WebSocket); the next one gets a 503. Default: half the open-file limit, at most 100000.",
            valueName: "n"))
    var maxConnections: Int?

    @Option(
        help: ArgumentHelp(
            "API connections open at once from one IP address; 0 is no limit. Default 2048. Behind a reverse proxy every client comes from the proxy's address: raise it.",
            valueName: "n"))
    var maxConnectionsPerAddress: Int?

    @Option(
        help: ArgumentHelp(
            "Helper threads that share a large call's audio fan-out (one packet to hundreds of listeners) with the media thread. 0-16; default: one less than the processors, at most 3.",
            valueName: "n"))
    var fanoutThreads: Int?

    @Option(
        help: ArgumentHelp(
            "Run the media threads with real-time scheduling (SCHED_RR) at this priority, so a busy machine does not delay forwarding. 1-99; default 0 (normal scheduling).",
            discussion: "Needs root, CAP_SYS_NICE or a RLIMIT_RTPRIO of at least this value (LimitRTPRIO= in a systemd unit); without them serve warns and runs with normal scheduling.",
            valueName: "priority"))
    var realtimePriority: Int?

    @Option(
        help: ArgumentHelp(
            "Log lines on standard error: text, or json (one object per line: time, level, msg, logger and the metadata such as session.id and call.channel).",
            valueName: "text|json"))
    var logFormat: String?

    @Option(help: ArgumentHelp("Log level: debug, info, warn or error (default info; --verbose is debug, --quiet is warn).", valueName: "level"))
    var logLevel: String?

    @Option(
        name: .customLong("stun-url"),
        help: ArgumentHelp("STUN URL handed to clients in the join answer (repeatable).", valueName: "stun:host[:port]"))
    var stunURLs: [String] = []

    @Option(
        name: .customLong("turn-url"),
        help: ArgumentHelp(
            "TURN URL handed to clients with fresh credentials (repeatable; needs --turn-secret-file).",
            valueName: "turn:host[:port][?transport=udp|tcp]"))
    var turnURLs: [String] = []

    @Option(
        help: ArgumentHelp("File with the TURN server's shared secret (coturn static-auth-secret).", valueName: "file"),
        completion: .file())
    var turnSecretFile: String?

    @Option(help: ArgumentHelp("Lifetime of TURN credentials in seconds. Default: 86400.", valueName: "seconds"))
    var turnTTL: Int?

    @Option(
        name: .customLong("cluster-db"),
        help: ArgumentHelp(
            "Join a cluster: the PostgreSQL the nodes share (channel settings, node registry, call placement). Default: one node on SQLite.",
            discussion: "The password may be in the URL or in --cluster-db-password-file; messages and logs print the URL without it.",
            valueName: "postgres://user@host:5432/db"))
    var clusterDB: String?

    @Option(
        help: ArgumentHelp("File with the cluster database's password (when the URL holds none).", valueName: "file"),
        completion: .file())
    var clusterDBPasswordFile: String?

    @Option(help: ArgumentHelp("This node's id in the cluster, unique per node. Default: the host name.", valueName: "id"))
    var clusterNodeID: String?

    @Option(
        help: ArgumentHelp(
            "The URL clients reach this node's API at directly; joins for a call on this node are redirected there.",
            valueName: "url"))
    var clusterPublicURL: String?

    @Option(
        help: ArgumentHelp(
            "Seconds without a heartbeat after which a node counts as gone and its calls may start elsewhere. 2-60, default 5.",
            valueName: "seconds"))
    var clusterHeartbeatTimeout: Int?

    @Option(
        help: ArgumentHelp(
            "Config file (TOML). Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory if present.",
            discussion: "Precedence: defaults < file < CALLSCTL_... environment < flags. Keys: docs/configuration.md.",
            valueName: "file"),
        completion: .file(extensions: ["toml"]))
    var config: String?

    func validate() throws {
        if let audioSlots, !(1...16).contains(audioSlots) {
            throw ValidationError("--audio-slots needs a number of audio streams per participant from 1 to 16, not \(audioSlots).")
        }
        if let maxConnections, maxConnections < 1 {
            throw ValidationError("--max-connections needs a number of connections, 1 or more, not \(maxConnections).")
        }
        if let maxConnectionsPerAddress, maxConnectionsPerAddress < 0 {
            throw ValidationError("--max-connections-per-address needs a number of connections, 0 (no limit) or more, not \(maxConnectionsPerAddress).")
        }
        if let fanoutThreads, !(0...16).contains(fanoutThreads) {
            throw ValidationError("--fanout-threads needs a number of helper threads from 0 to 16, not \(fanoutThreads).")
        }
        if let logFormat, !["text", "json"].contains(logFormat.lowercased()) {
            throw ValidationError("--log-format is text or json, not \"\(logFormat)\".")
        }
        if let logLevel, !["debug", "info", "warn", "warning", "error"].contains(logLevel.lowercased()) {
            throw ValidationError("--log-level is debug, info, warn or error, not \"\(logLevel)\".")
        }
        if let realtimePriority, !(0...99).contains(realtimePriority) {
            throw ValidationError("--realtime-priority needs a SCHED_RR priority from 1 to 99 (0: off), not \(realtimePriority).")
        }
        if let maxParticipants, maxParticipants < 1 {
            throw ValidationError("--max-participants needs a number of participants, 1 or more, not \(maxParticipants).")
        }
        if let drainTimeout, drainTimeout < 0 {
            throw ValidationError("--drain-timeout needs a number of seconds, 0 or more, not \(drainTimeout).")
        }
        if let turnTTL, turnTTL <= 0 {
            throw ValidationError("--turn-ttl needs a number of seconds greater than 0, not \(turnTTL).")
        }
        for (name, value) in [("--rtc-listen", rtcListen), ("--api-listen", apiListen)] {
            if let value {
                do { _ = try ListenAddress(parsing: value) } catch { throw ValidationError("\(name) \(error.description)") }
            }
        }
        if let clusterDB {
            do { _ = try PostgresURL(parsing: clusterDB) } catch { throw ValidationError("--cluster-db \(error.description)") }
        }
        if let clusterPublicURL, let problem = HTTPURLCheck.problem(clusterPublicURL) {
            throw ValidationError("--cluster-public-url \"\(clusterPublicURL)\" \(problem); give the URL clients reach this node at, e.g. https://calls-1.example.com")
        }
        if let clusterHeartbeatTimeout, !(2...60).contains(clusterHeartbeatTimeout) {
            throw ValidationError("--cluster-heartbeat-timeout needs 2 to 60 seconds, not \(clusterHeartbeatTimeout).")
        }
        if let clusterNodeID,
            clusterNodeID.isEmpty || clusterNodeID.count > 63
                || !clusterNodeID.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) })
        {
            throw ValidationError("--cluster-node-id \"\(clusterNodeID)\" is not a node id; use 1 to 63 letters, digits, '-', '_' or '.'.")
        }
        if let iceHostOverride, iceHostOverride.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--ice-host-override needs an IP address or host name, not an empty string.")
        }
    }

    func run() async throws {
        let signals = SignalWait([SIGTERM, SIGINT])
        // SIGHUP (a closed terminal, or `systemctl reload`) must not end the calls: it is caught from the start.
        let hangups = SignalWait([SIGHUP])
        var out = global.output
        // JSON log lines from the start when the flag or the environment asks (the config file is read next).
        out.logsJSON = (logFormat ?? ProcessInfo.processInfo.environment["CALLSCTL_LOG_FORMAT"])?.lowercased() == "json"
        let settings = try ServeSettings(
            resolving: self, environment: ProcessInfo.processInfo.environment, dataDir: global.resolvedDataDir, out: out)
        out.logsJSON = settings.logFormat == "json"
        let level = effectiveLevel(settings)
        let json = settings.logFormat == "json"
        let liveLevel = LiveLogLevel(level)
        LoggingSystem.bootstrap { label in
            json ? JSONLogHandler(label: label, level: liveLevel) as any LogHandler : TextLogHandler(label: label, level: liveLevel)
        }
        let logger = Logger(label: "callsctl.serve")
        // Every API connection and ICE-TCP session holds a descriptor: take what the hard limit allows.
        if let raised = APIConnectionLimits.raiseOpenFileLimit() {
            logger.info("raised the open-file limit", metadata: ["from": "\(raised.before)", "to": "\(raised.after)"])
        }

        // Prepare the data directory now, so the first run leaves a usable store behind. A cluster node keeps its
        // channel settings in the cluster's database and opens no calls.db.
        let store = settings.clusterDatabaseURL == nil ? try StoreAccess.open(global) : nil
        let secret = try TokenSecretAccess.load(file: settings.tokenSecretFile, global: global)
        for warning in secret.warnings { out.warning(warning) }
        if secret.created { out.note("created the token secret \(secret.path) (mode 0600)") }
        let adminKey = try AdminKeyAccess.load(file: settings.adminKeyFile, global: global)
        for warning in adminKey.warnings { out.warning(warning) }
        if adminKey.created { out.note("created the admin key \(adminKey.path) (mode 0600)") }
        var ice = ICEServerSettings(stunURLs: settings.stunURLs, turnURLs: settings.turnURLs, turnTTL: settings.turnTTL)
        if let file = settings.turnSecretFile {
            do {
                let loaded = try TURNSecret.load(path: (file as NSString).expandingTildeInPath)
                for warning in loaded.warnings { out.warning(warning) }
                ice.turnSecret = loaded.secret
            } catch {
                throw CLIError(error.description, exitCode: .undecided)
            }
            if settings.turnURLs.isEmpty { out.warning("--turn-secret-file is set but no --turn-url; clients get no TURN server") }
        }

        // A cluster node checks the database before it binds anything: unreachable is exit 3, secrets or a node id
        // that conflict with the cluster are exit 2.
        let cluster = try await ClusterJoin.connect(settings: settings, secret: secret, turnSecret: ice.turnSecret, logger: logger)

        let advertised = try AdvertisedAddress.resolve(settings: settings, out: out)
        var media = MediaBackendConfiguration()
        media.udpListen = settings.rtcListen.description
        media.tcpListen = settings.rtcTCPListen.description
        media.advertisedAddresses = advertised.addresses
        media.offerUDPCandidates = !settings.noUDPCandidates
        media.audioSlots = settings.audioSlots
        media.fanoutThreads = settings.fanoutThreads
        media.realtimePriority = settings.realtimePriority

        let backend: any MediaBackend
        do {
            backend = try makeMediaBackend(configuration: media, logger: logger)
            try await backend.start()
        } catch {
            throw PortTrouble.explain(error, address: settings.rtcListen, protos: [.udp, .tcp], what: "media (--rtc-listen)")
        }

        var api = APIServerConfiguration()
        api.listen = settings.apiListen
        api.version = VersionInfo(version: BuildInfo.version)
        api.adminKey = adminKey.key
        api.iceServerSettings = ice
        api.maxParticipants = settings.maxParticipants
        if let n = settings.maxConnections { api.limits.maxConnections = n }
        api.limits.maxConnectionsPerAddress = settings.maxConnectionsPerAddress
        api.audioSlots = settings.audioSlots
        let admission: JoinAdmission
        if let cluster {
            // The cluster's settings (a cache LISTEN/NOTIFY keeps current), not this host's calls.db.
            admission = { claims in await cluster.admission(channel: claims.channel, isAdmin: claims.role == .admin) }
        } else if let store {
            admission = { claims in
                do {
                    let decision = try store.mayStartCall(in: claims.channel, isAdmin: claims.role == .admin)
                    if case .refused(let reason) = decision { return reason }
                    return nil
                } catch {
                    return "cannot read the channel settings: \(error)"
                }
            }
        } else {
            preconditionFailure("a node has either a cluster or a local store")
        }
        let server = APIServer(
            configuration: api, backend: backend, signer: secret.signer, admission: admission, placement: cluster, logger: logger)
        let bound: ListenAddress
        do {
            bound = try await server.start()
        } catch {
            await backend.shutdown()
            throw PortTrouble.explain(error, address: settings.apiListen, protos: [.tcp], what: "API (--api-listen)")
        }
        if let cluster {
            do {
                try await cluster.start(localCalls: { server.callParticipants }, draining: { server.isDraining })
            } catch {
                await server.shutdown()
                await backend.shutdown()
                throw CLIError(error.description, exitCode: .undecided)
            }
        }

        let rtcPorts = [backend.udpPort.map { "\($0)/udp" }, backend.tcpPort.map { "\($0)/tcp" }].compactMap { $0 }
        if global.json {
            out.emit(
                .object([
                    ("api", .string(bound.description)), ("rtc", .string(settings.rtcListen.description)),
                    ("rtcPorts", .array(rtcPorts.map { .string($0) })),
                    ("advertisedAddresses", .array(advertised.addresses.map { .string($0) })),
                    ("advertisedFrom", .string(advertised.source)), ("dataDir", .string(global.resolvedDataDir)),
                    ("offerUDPCandidates", .bool(!settings.noUDPCandidates)),
                    ("adminKeyFile", .string(adminKey.path)), ("drainTimeout", .int(Int64(settings.drainTimeout))),
                    ("stunURLs", .array(settings.stunURLs.map { .string($0) })),
                    ("turnURLs", .array(settings.turnURLs.map { .string($0) })),
                    ("configFile", settings.configFile.map { .string($0) } ?? .null),
                    ("cluster", cluster.map { c in
                        .object([
                            ("node", .string(c.nodeID)), ("publicURL", .string(c.settings.publicURL)),
                            ("database", .string(c.settings.url.redacted)), ("liveNodes", .int(Int64(c.liveNodes().count))),
                        ])
                    } ?? .null),
                ]))
        } else {
            out.line("api listening on \(bound)")
            out.line("rtc listening on \(settings.rtcListen.host):\(rtcPorts.joined(separator: ", "))")
            out.line("advertised addresses: \(advertised.addresses.joined(separator: ", ")) (\(advertised.source))")
            if settings.noUDPCandidates { out.line("diagnostic: answers offer only the TCP candidate") }
            out.line("admin key file: \(adminKey.path)")
            if !ice.isEmpty {
                out.line("ice servers for clients: \((settings.stunURLs + settings.turnURLs).joined(separator: ", "))")
            }
            if let file = settings.configFile { out.line("config file: \(file)") }
            if let cluster {
                out.line(
                    "cluster: node \(cluster.nodeID) at \(cluster.settings.publicURL), database \(cluster.settings.url.redacted), \(cluster.liveNodes().count) live node(s)")
            }
            out.line("data directory: \(global.resolvedDataDir)")
            let host = bound.isWildcard ? "127.0.0.1" : bound.host
            out.info("test page: http://\(bound.isIPv6 ? "[\(host)]" : host):\(bound.port)/?token=TOKEN (tokens: callsctl token create)")
        }

        // systemd (Type=notify): ready now that the media ports and the API are bound; watchdog pings only
        // while the media thread answers; STOPPING when draining. Without $NOTIFY_SOCKET nothing is sent.
        let notifier = SystemdNotifier()
        notifier?.send("READY=1\nSTATUS=serving: API \(bound), media \(rtcPorts.joined(separator: " "))\nMAINPID=\(getpid())")
        let watchdog = Task {
            guard let notifier, let interval = SystemdNotifier.watchdogInterval() else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: interval / 2)
                if Task.isCancelled { break }
                if await backend.heartbeat() {
                    notifier.send("WATCHDOG=1")
                } else {
                    logger.error("the media thread did not answer; no watchdog ping (systemd restarts serve after WatchdogSec)")
                }
            }
        }
        defer { watchdog.cancel() }

        let current = Locked(RunningSettings(settings: settings, turnSecret: ice.turnSecret))
        let hangupTask = Task {
            while !Task.isCancelled {
                _ = await hangups.next()
                if Task.isCancelled { break }
                notifier?.send("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
                self.reload(current, server: server, level: liveLevel, logger: logger, out: out)
                notifier?.send("READY=1\nSTATUS=serving: API \(bound), media \(rtcPorts.joined(separator: " "))")
            }
        }
        defer { hangupTask.cancel() }
        let signal = await signals.next()
        server.drain()
        let active = server.activeSessions
        notifier?.send("STOPPING=1\nSTATUS=draining \(active) session(s)")
        let drainTimeout = current.current.settings.drainTimeout
        logger.info(
            "draining", metadata: ["signal": "\(Self.name(signal))", "sessions": "\(active)", "timeout": "\(drainTimeout)"])
        if active > 0 && drainTimeout > 0 {
            out.note("draining: \(active) session(s) may go on for up to \(drainTimeout)s; send the signal again to stop at once")
            let outcome = await Self.drain(server: server, signals: signals, timeout: drainTimeout)
            logger.info("stopping", metadata: ["after": "\(outcome)"])
        }
        await server.shutdown()
        await cluster?.stop()
        await backend.shutdown()
        out.note("stopped")
    }
}

extension Serve {
    /// An explicit --log-level wins over --verbose/--quiet; they win over the environment and the file.
    func effectiveLevel(_ settings: ServeSettings) -> Logger.Level {
        logLevel != nil ? settings.logLevel : (global.verbose ? .debug : (global.quiet ? .warning : settings.logLevel))
    }

    /// SIGHUP: reads the config file (and the environment, flags still winning) again. What can change while calls
    /// run changes for the joins after it: the ICE servers handed to clients (TURN secret, URLs and credential
    /// lifetime), the participant limit, the log level and the drain timeout. Other changes are logged as needing
    /// a restart. A config that does not load, or a TURN secret that cannot be read, changes nothing.
    func reload(_ current: Locked<RunningSettings>, server: APIServer, level: LiveLogLevel, logger: Logger, out: Output) {
        let running = current.current
        let old = running.settings
        let new: ServeSettings
        do {
            new = try ServeSettings(resolving: self, environment: ProcessInfo.processInfo.environment, dataDir: global.resolvedDataDir, out: out)
        } catch {
            logger.error("reload failed; the running settings stay", metadata: ["error": "\(error)"])
            return
        }
        var ice = ICEServerSettings(stunURLs: new.stunURLs, turnURLs: new.turnURLs, turnTTL: new.turnTTL)
        if let file = new.turnSecretFile {
            do {
                ice.turnSecret = try TURNSecret.load(path: (file as NSString).expandingTildeInPath).secret
            } catch {
                logger.error("reload failed; the running settings stay", metadata: ["error": "\(error)"])
                return
            }
        }
        var applied: [String] = []
        if new.stunURLs != old.stunURLs || new.turnURLs != old.turnURLs { applied.append("rtc.ice_servers") }
        if new.turnTTL != old.turnTTL { applied.append("rtc.turn.credentials_expiration_minutes") }
        if new.turnSecretFile != old.turnSecretFile || ice.turnSecret != running.turnSecret {
            applied.append("rtc.turn.static_auth_secret_file")
        }
        if new.maxParticipants != old.maxParticipants { applied.append("limits.max_participants") }
        if effectiveLevel(new) != effectiveLevel(old) { applied.append("logger.console_level") }
        if new.drainTimeout != old.drainTimeout { applied.append("service.drain_timeout") }
        var restart: [String] = []
        func check(_ changed: Bool, _ key: String) { if changed { restart.append(key) } }
        check("\(new.rtcListen)" != "\(old.rtcListen)", "rtc.ice_address_udp/ice_port_udp")
        check("\(new.rtcTCPListen)" != "\(old.rtcTCPListen)", "rtc.ice_address_tcp/ice_port_tcp")
        check("\(new.apiListen)" != "\(old.apiListen)", "api.http.listen_address")
        check(new.iceHostOverride != old.iceHostOverride, "rtc.ice_host_override")
        check(new.stunServers != old.stunServers, "rtc.stun_servers")
        check(new.tokenSecretFile != old.tokenSecretFile, "api.security.token_secret_file")
        check(new.adminKeyFile != old.adminKeyFile, "api.security.admin_key_file")
        check(new.noUDPCandidates != old.noUDPCandidates, "rtc.no_udp_candidates")
        check(new.audioSlots != old.audioSlots, "limits.audio_slots")
        check(new.fanoutThreads != old.fanoutThreads, "rtc.fanout_threads")
        check(new.realtimePriority != old.realtimePriority, "rtc.realtime_priority")
        check(new.maxConnections != old.maxConnections, "api.max_connections")
        check(new.maxConnectionsPerAddress != old.maxConnectionsPerAddress, "api.max_connections_per_address")
        check(new.logFormat != old.logFormat, "logger.log_format")
        check(new.clusterDatabaseURL != old.clusterDatabaseURL, "cluster.database_url")
        check(new.clusterPasswordFile != old.clusterPasswordFile, "cluster.database_password_file")
        check(new.clusterNodeID != old.clusterNodeID, "cluster.node_id")
        check(new.clusterPublicURL != old.clusterPublicURL, "cluster.public_url")
        check(new.clusterHeartbeatTimeout != old.clusterHeartbeatTimeout, "cluster.heartbeat_timeout")
        server.updateLiveSettings(iceServerSettings: ice, maxParticipants: new.maxParticipants)
        level.withLock { $0 = effectiveLevel(new) }
        // What needs a restart keeps its running value, so that a later reload still reports it.
        var kept = new
        kept.rtcListen = old.rtcListen
        kept.rtcTCPListen = old.rtcTCPListen
        kept.apiListen = old.apiListen
        kept.iceHostOverride = old.iceHostOverride
        kept.stunServers = old.stunServers
        kept.tokenSecretFile = old.tokenSecretFile
        kept.adminKeyFile = old.adminKeyFile
        kept.noUDPCandidates = old.noUDPCandidates
        kept.audioSlots = old.audioSlots
        kept.fanoutThreads = old.fanoutThreads
        kept.realtimePriority = old.realtimePriority
        kept.maxConnections = old.maxConnections
        kept.maxConnectionsPerAddress = old.maxConnectionsPerAddress
        kept.logFormat = old.logFormat
        kept.clusterDatabaseURL = old.clusterDatabaseURL
        kept.clusterPasswordFile = old.clusterPasswordFile
        kept.clusterNodeID = old.clusterNodeID
        kept.clusterPublicURL = old.clusterPublicURL
        kept.clusterHeartbeatTimeout = old.clusterHeartbeatTimeout
        current.withLock { $0 = RunningSettings(settings: kept, turnSecret: ice.turnSecret) }
        logger.notice(
            "reloaded the config",
            metadata: [
                "applied": .array(applied.map { .string($0) }), "restart.needed": .array(restart.map { .string($0) }),
                "config.file": .string(new.configFile ?? "none"),
            ])
        if !restart.isEmpty {
            logger.warning("restart needed to apply: \(restart.joined(separator: ", ")) (running calls were not touched)")
        }
    }

    static func name(_ signal: Int32) -> String { signal == SIGTERM ? "SIGTERM" : "SIGINT" }

    /// Waits until no session is left, the timeout passes, or a second signal comes; says which.
    static func drain(server: APIServer, signals: SignalWait, timeout: Int) async -> String {
        await withTaskGroup(of: String.self) { group in
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(timeout)
                while !Task.isCancelled {
                    if server.activeSessions == 0 { return "sessions ended" }
                    if ContinuousClock.now >= deadline { return "drain timeout" }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return "cancelled"
            }
            group.addTask {
                let second = await signals.next()
                return Task.isCancelled ? "cancelled" : "second \(name(second))"
            }
            let first = await group.next() ?? "drain"
            group.cancelAll()
            return first
        }
    }
}

/// Reads the admin key for `serve`, with errors as exit 3.
enum AdminKeyAccess {
    static func load(file: String?, global: GlobalOptions) throws -> AdminKey {
        do {
            if let file { return try AdminKey.load(path: (file as NSString).expandingTildeInPath, create: false) }
            return try AdminKey.loadDefault(dataDir: global.resolvedDataDir)
        } catch {
            throw CLIError(error.description, exitCode: .undecided)
        }
    }
}

/// The settings `serve` runs with now, as reloads change them, and the TURN secret read for them.
struct RunningSettings: Sendable {
    var settings: ServeSettings
    var turnSecret: [UInt8]?
}

/// The settings after merging defaults, config file, environment and flags (flags win); see Serve+Config.swift.
struct ServeSettings: Sendable {
    var rtcListen: ListenAddress
    var rtcTCPListen: ListenAddress
    var apiListen: ListenAddress
    var iceHostOverride: String?
    var stunServers: [String]
    var tokenSecretFile: String?
    var noUDPCandidates: Bool
    var adminKeyFile: String?
    var drainTimeout: Int
    var maxParticipants: Int?
    var audioSlots: Int
    var fanoutThreads: Int?
    var realtimePriority: Int
    var maxConnections: Int?
    var maxConnectionsPerAddress: Int
    var stunURLs: [String]
    var turnURLs: [String]
    var turnSecretFile: String?
    var turnTTL: Int
    var configFile: String?
    var logLevel: Logger.Level
    var logFormat: String
    /// The cluster's database URL (nil: one node on SQLite), and the node's settings in it.
    var clusterDatabaseURL: String?
    var clusterPasswordFile: String?
    var clusterNodeID: String?
    var clusterPublicURL: String?
    var clusterHeartbeatTimeout: Int
}

/// The address written into host candidates, and where it came from.
enum AdvertisedAddress {
    static func resolve(settings: ServeSettings, out: Output) throws -> (addresses: [String], source: String) {
        if let host = settings.iceHostOverride {
            do {
                let addresses = try Resolver.resolve(host: host, port: 0).map(\.ipString)
                let source = addresses == [host] ? "--ice-host-override" : "--ice-host-override \(host)"
                return (addresses, source)
            } catch {
                throw CLIError(
                    "--ice-host-override \(host) does not resolve: \(error.message)", exitCode: .undecided,
                    hint: "Give an IP address, or a host name this machine can resolve (check /etc/resolv.conf or /etc/hosts).")
            }
        }
        if !settings.stunServers.isEmpty {
            for text in settings.stunServers {
                let uri: ServerURI
                do { uri = try ServerURI(parsing: text, defaultScheme: .stun) } catch {
                    throw InvalidArgumentError(message: "--stun-server \(text): \(error.description)")
                }
                var options = STUNProbe.Options()
                options.count = 1
                options.timeout = .seconds(5)
                let report = STUNProbe(uri: uri, options: options).run()
                if report.verdict == .ok, let mapped = report.mappedAddressForReport {
                    return ([mapped.ipString], "public address from STUN \(uri.host):\(uri.port)")
                }
                out.warning("STUN server \(text) did not tell the public address: \(report.message)")
            }
            out.warning("no STUN server answered; advertising the local interface addresses, which clients behind other NATs may not reach")
        }
        if !settings.rtcListen.isWildcard {
            return ([settings.rtcListen.host], "the --rtc-listen address")
        }
        return (LocalAddresses.ipv4(), "local interfaces")
    }
}

/// Turns a bind failure into a message naming the port and, when visible, who holds it.
enum PortTrouble {
    static func explain(_ error: any Error, address: ListenAddress, protos: [Probes.PortsCheck.Proto], what: String) -> CLIError {
        var lines: [String] = []
        if address.port != 0, let port = UInt16(exactly: address.port) {
            let checks = Probes.PortsCheck.local(protos.map { Probes.PortsCheck.Port($0, port) }, bindAddress: address.host)
            for check in checks where check.state == .inUse || check.state == .denied {
                lines.append("\(address.host):\(check.port.label) \(check.detail)")
            }
        }
        let message: String
        if lines.isEmpty {
            message = "cannot start the \(what) on \(address): \(error)"
        } else {
            message = "cannot start the \(what): " + lines.joined(separator: "; ")
        }
        return CLIError(
            message, exitCode: .undecided,
            hint: "Stop the other program, or choose another address with \(what.contains("API") ? "--api-listen" : "--rtc-listen") HOST:PORT.")
    }
}

/// Reads the token secret for `serve` and `token create`, with errors as exit 3.
enum TokenSecretAccess {
    static func load(file: String?, global: GlobalOptions) throws -> TokenSecret {
        do {
            if let file {
                return try TokenSecret.load(path: (file as NSString).expandingTildeInPath, create: false)
            }
            return try TokenSecret.loadDefault(dataDir: global.resolvedDataDir)
        } catch {
            throw CLIError(error.description, exitCode: .undecided)
        }
    }
}

/// Catches the given signals from the moment it is created (so a signal during start-up is not lost
/// to the default action) and hands out the first one.
final class SignalWait: Sendable {
    private let stream: AsyncStream<Int32>
    private let sources: SourceBox

    init(_ signals: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        var list: [any DispatchSourceSignal] = []
        for sig in signals {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            list.append(source)
        }
        sources = SourceBox(list)
    }

    /// The first signal caught (immediately if one already arrived).
    func next() async -> Int32 {
        for await sig in stream { return sig }
        return SIGTERM
    }

    private final class SourceBox: @unchecked Sendable {
        // @unchecked: set once in init and never mutated; only kept alive.
        let sources: [any DispatchSourceSignal]
        init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
    }
}

/// Joins the cluster `serve` was given (`--cluster-db`, `[cluster]`), or nil for a single node.
enum ClusterJoin {
    static func connect(settings: ServeSettings, secret: TokenSecret, turnSecret: [UInt8]?, logger: Logger) async throws -> ClusterNode? {
        guard let text = settings.clusterDatabaseURL else { return nil }
        let url: PostgresURL
        do { url = try PostgresURL(parsing: text) } catch {
            throw InvalidArgumentError(message: "--cluster-db \(error.description)")
        }
        guard let publicURL = settings.clusterPublicURL else {
            throw InvalidArgumentError(
                message:
                    "--cluster-public-url is missing: a cluster node needs the URL clients reach it at (joins for its calls are redirected there), e.g. --cluster-public-url https://calls-1.example.com")
        }
        let password = try settings.clusterPasswordFile.map(ClusterDatabaseSource.readPassword)
        let nodeID = settings.clusterNodeID ?? defaultNodeID()
        let node = ClusterNodeSettings(
            url: url, password: password, nodeID: nodeID, publicURL: publicURL, version: BuildInfo.version,
            heartbeatTimeout: .seconds(settings.clusterHeartbeatTimeout), tokenSecret: secret.bytes, turnSecret: turnSecret)
        do {
            return try await ClusterNode.connect(settings: node, logger: logger)
        } catch {
            switch error.kind {
            case .unreachable:
                throw CLIError(
                    error.description, exitCode: .undecided,
                    hint: "Check that PostgreSQL runs and accepts this host (listen_addresses, pg_hba.conf) and that the URL's user, password and database are right; `psql '\(url.redacted)'` tries the same.")
            case .conflict:
                throw CLIError(error.description, exitCode: .negative)
            }
        }
    }

    /// The host name, cut to what a node id may hold.
    static func defaultNodeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let cleaned = String(host.filter { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_".contains($0) }.prefix(63))
        return cleaned.isEmpty ? "node" : cleaned
    }
}
