import ArgumentParser
import CallsConfig
import CallsServer
import CallsStore
import Foundation
import Probes

/// `callsctl calls ...`: the calls running on a `callsctl serve`, through its admin API.
struct Calls: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the calls running on a media server, end a call, or remove a participant.",
        discussion: """
            Talks to the admin API of a running `callsctl serve` (GET /api/v1/calls, DELETE \
            /api/v1/calls/CHANNEL, DELETE /api/v1/sessions/SESSION) with "Authorization: Bearer KEY". \
            The key is read from --admin-key-file, else $CALLSCTL_ADMIN_KEY_FILE, else the api.security.admin_key_file \
            of serve's config file ($CALLSCTL_CONFIG, or callsctl.toml in the data directory), else admin-key in the \
            data directory (the file serve generates and prints as "admin key file:" at start). The key \
            is never printed.

            Exit codes: 0 done; 2 refused (wrong admin key, no such call or session: the server's \
            message is shown); 3 the server could not be reached, its key file could not be read or it \
            answered something unexpected; 64 usage error.

            Examples:
              callsctl calls list
              callsctl calls list --url http://10.0.0.20:8045 \\
                  --admin-key-file /etc/callsctl/admin-key --json
              callsctl calls end 4xp9fdt3pbdp7nrw7xjmrd8kkc
              callsctl calls remove ktlvts55sc5359of
            """,
        subcommands: [CallsList.self, CallsEnd.self, CallsRemove.self]
    )
}

/// Where the admin API is and how to authenticate to it.
struct AdminAPIOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The media server's API URL (serve's --api-listen).", valueName: "url"))
    var url: String = "http://127.0.0.1:8045"

    @Option(
        help: ArgumentHelp(
            "File with the admin API bearer key.",
            discussion: "Default: $CALLSCTL_ADMIN_KEY_FILE, else serve's config file's api.security.admin_key_file, else admin-key in the data directory.", valueName: "file"),
        completion: .file())
    var adminKeyFile: String?

    @Option(help: ArgumentHelp("Seconds to wait for the server's answer.", valueName: "seconds"))
    var timeout: Double = 10

    func validate() throws {
        let parsed: ProbeURL
        do { parsed = try ProbeURL(parsing: url) } catch { throw ValidationError("--url: \(error)") }
        if parsed.path.contains("?") || parsed.path.contains("#") {
            throw ValidationError("--url \(url): give the API's address without a query, e.g. http://127.0.0.1:8045.")
        }
        guard timeout > 0, timeout <= 600 else {
            throw ValidationError("--timeout must be more than 0 and at most 600 seconds, not \(timeout).")
        }
        if let adminKeyFile, adminKeyFile.isEmpty {
            throw ValidationError("--admin-key-file needs a file path, not an empty string.")
        }
    }
}

/// A request to serve's admin API, with callsctl's exit codes for every way it can go wrong.
struct AdminAPIClient {
    let base: ProbeURL
    let key: String
    let timeout: Duration

    /// Reads the key (never printing it) and checks the URL; errors are ``CLIError``s.
    init(_ options: AdminAPIOptions, global: GlobalOptions) throws {
        do { base = try ProbeURL(parsing: options.url) } catch { throw CLIError("--url \(options.url): \(error)", exitCode: .usage) }
        timeout = .milliseconds(Int64(options.timeout * 1000))
        let environment = ProcessInfo.processInfo.environment
        let env = environment["CALLSCTL_ADMIN_KEY_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        // serve's config file (CALLSCTL_CONFIG, else callsctl.toml in the data directory), as serve finds it.
        let config = ConfigFileLocation.find(flag: nil, environment: environment, dataDir: global.resolvedDataDir).path
        let configured = config.flatMap { CallsConfig.resolve(filePath: $0).config.adminKeyFile }
        let path: String
        let source: String?
        if let file = options.adminKeyFile ?? env {
            path = (file as NSString).expandingTildeInPath
            source = options.adminKeyFile != nil ? "--admin-key-file" : "CALLSCTL_ADMIN_KEY_FILE"
        } else if let file = configured, let config {
            path = (file as NSString).expandingTildeInPath
            source = "\(config) api.security.admin_key_file"
        } else {
            // Read only: serve generates this file, and a key made here would match no server.
            path = (global.resolvedDataDir as NSString).appendingPathComponent(AdminKey.defaultFileName)
            source = nil
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError(
                    "no admin key at \(path): `callsctl serve` creates it there on first start with this data directory.",
                    exitCode: .undecided,
                    hint: "Give the file serve uses with --admin-key-file FILE (serve prints it at start as \"admin key file:\"), "
                        + "or the data directory serve runs with (--data-dir, CALLSCTL_DATA_DIR).")
            }
        }
        do {
            let loaded = try AdminKey.load(path: path, create: false)
            for warning in loaded.warnings { global.output.warning(warning) }
            key = loaded.key
        } catch {
            throw CLIError((source.map { "\($0): " } ?? "") + "\(error)", exitCode: .undecided)
        }
    }

    /// Sends `method path` and returns a 2xx answer as a JSON object; every other outcome is a ``CLIError``: the
    /// server unreachable or answering something unexpected (3), the key refused or no such call or session (2, with
    /// the server's message).
    func send(_ method: String, _ path: String, out: Output) throws -> [String: Any] {
        // A path in --url is a prefix (a proxy that publishes the API under one).
        let url = base.with(path: (base.path.hasSuffix("/") ? String(base.path.dropLast()) : base.path) + path)
        out.debug("\(method) \(url)")
        let response: HTTPProbeResponse
        do {
            var headers = [("Authorization", "Bearer \(key)"), ("Accept", "application/json")]
            if method != "GET" { headers.append(("Content-Length", "0")) }
            response = try HTTPProbe.request(url, method: method, headers: headers, timeout: timeout)
        } catch {
            let why: String
            switch error.kind {
            case .refused: why = "nothing listens there (connection refused)"
            case .timeout: why = "no answer within \(Self.seconds(timeout))"
            case .resolve: why = "the host name does not resolve"
            default: why = error.message
            }
            throw CLIError(
                "cannot reach the media server's admin API at \(base): \(why)", exitCode: .undecided,
                hint: "Check that `callsctl serve` runs and that --url names its API address (serve's --api-listen, default port 8045)."
                    + (error.kind == .resolve ? "\n(\(error.message))" : ""))
        }
        out.debug("HTTP \(response.status), \(response.body.count) bytes in \(response.elapsed)")
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let serverMessage = (object?["message"] as? String).map { UntrustedText.forLog($0, limit: 500) }
        switch response.status {
        case 200..<300:
            guard let object else {
                throw CLIError(
                    "\(url) answered \(response.status) but not with a JSON object; is --url a callsctl serve API?",
                    exitCode: .undecided)
            }
            return object
        case 401, 403:
            throw CLIError(
                "the admin API at \(base) refused the admin key (HTTP \(response.status))"
                    + (serverMessage.map { ": \($0)" } ?? ""),
                exitCode: .negative,
                hint: "Use the key file of this server: --admin-key-file FILE, the one `callsctl serve` printed as \"admin key file:\" at start.")
        case 404 where object?["error"] as? String == "not_found" || object == nil:
            throw CLIError(
                "\(url) is not a callsctl admin API endpoint (HTTP 404)" + (serverMessage.map { ": \($0)" } ?? ""),
                exitCode: .undecided,
                hint: "Check that --url names the API port of `callsctl serve` (and the path a proxy publishes it under, if one does).")
        case 404:
            throw CLIError(
                serverMessage ?? "not found (HTTP 404)", exitCode: .negative,
                hint: "See the running calls and their sessions with `callsctl calls list`.")
        case 409:
            // A cluster: the call runs on another node, whose admin API ends it.
            throw CLIError(
                serverMessage ?? "conflict (HTTP 409)", exitCode: .negative,
                hint: "Run the command again with --url set to that node's admin API (its API port, 8045).")
        default:
            throw CLIError(
                "\(url) answered HTTP \(response.status)" + (serverMessage.map { ": \($0)" } ?? ""), exitCode: .undecided)
        }
    }

    static func seconds(_ d: Duration) -> String {
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
    }
}

/// A call as `GET /api/v1/calls` lists it.
struct ListedCall {
    let channel: String
    let participants: [[String: Any]]
    /// In a cluster: the node the call runs on, its URL when it is another node's, and its size.
    var node: String? = nil
    var nodeURL: String? = nil
    var participantCount: Int? = nil

    /// A call on another node of the cluster: this node knows its size, not its participants.
    var isRemote: Bool { nodeURL != nil }

    static func parse(_ object: [String: Any]) throws -> [ListedCall] {
        guard let calls = object["calls"] as? [[String: Any]] else {
            throw CLIError("the admin API answered without a \"calls\" list; is --url a callsctl serve API?", exitCode: .undecided)
        }
        return calls.map { call in
            ListedCall(
                channel: call["channel"] as? String ?? "?", participants: call["participants"] as? [[String: Any]] ?? [],
                node: call["node"] as? String, nodeURL: call["nodeUrl"] as? String,
                participantCount: (call["participantCount"] as? NSNumber)?.intValue)
        }
    }
}

struct CallsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the running calls and their participants.",
        discussion: """
            One line per participant: the call's channel, the session id (for `callsctl calls remove`), \
            user, role, state (joined: no offer yet; connecting; connected), media transport, when it \
            joined, and flags (muted, hand, presenting, echo). Echo tests are listed under their \
            token's channel but are not part of the call. Exit 0 also when no call runs.

            In a cluster any node lists every node's calls: its own with their participants, the others' \
            with their node, its URL and their size (ask that node for their participants).

            Examples:
              callsctl calls list
              callsctl calls list --url http://10.0.0.20:8045 \\
                  --admin-key-file /etc/callsctl/admin-key
              callsctl calls list --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup(title: "Admin API") var api: AdminAPIOptions

    func run() async throws {
        let client = try AdminAPIClient(api, global: global)
        let out = global.output
        let calls = try ListedCall.parse(client.send("GET", "/api/v1/calls", out: out))
        if global.json {
            out.emit(
                .object([
                    ("url", .string(client.base.description)),
                    ("calls", .array(calls.map { call in
                        .object([
                            ("channel", .string(call.channel)), ("node", call.node.map { .string($0) } ?? .null),
                            ("nodeUrl", call.nodeURL.map { .string($0) } ?? .null),
                            ("participantCount", .int(Int64(call.participantCount ?? call.participants.filter { $0["echo"] as? Bool != true }.count))),
                            ("participants", .array(call.participants.map(Self.json))),
                        ])
                    })),
                ]))
            return
        }
        let rows = calls.flatMap { call in call.participants.map { (call.channel, $0) } }
        let remote = calls.filter(\.isRemote)
        if rows.isEmpty && remote.isEmpty {
            out.line("no calls running")
            return
        }
        defer {
            // A cluster's other nodes: their calls by node (their participants are on that node's admin API).
            for call in remote {
                out.line(
                    "\(call.channel)  on node \(call.node ?? "?") (\(call.nodeURL ?? "?")): \(call.participantCount ?? 0) participant\((call.participantCount ?? 0) == 1 ? "" : "s")")
            }
        }
        if rows.isEmpty { return }
        let header = ["CHANNEL", "SESSION", "USER", "ROLE", "STATE", "TRANSPORT", "JOINED", "FLAGS"]
        let table = rows.map { channel, p -> [String] in
            let flags = [("muted", "muted"), ("handRaised", "hand"), ("presenting", "presenting"), ("echo", "echo")]
                .filter { p[$0.0] as? Bool == true }.map(\.1)
            return [
                channel, Self.text(p["id"]), UntrustedText.forLog(Self.text(p["user"]), limit: 64), Self.text(p["role"]),
                Self.text(p["state"]), Self.text(p["transport"]), Self.text(p["joinedAt"]),
                flags.isEmpty ? "-" : flags.joined(separator: ","),
            ]
        }
        let widths = header.indices.map { i in ([header[i]] + table.map { $0[i] }).map(\.count).max() ?? 0 }
        func format(_ cells: [String]) -> String {
            cells.indices.map { i in i == cells.count - 1 ? cells[i] : cells[i].padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }
                .joined()
        }
        out.line(out.styled(format(header), .bold))
        for row in table { out.line(format(row)) }
        let participants = calls.reduce(0) { $0 + $1.participants.count }
        out.info("\(calls.count) call\(calls.count == 1 ? "" : "s"), \(participants) participant\(participants == 1 ? "" : "s")")
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case let s as String: s
        case let n as NSNumber: n.stringValue
        default: "-"
        }
    }

    /// A participant with the fields of docs/protocol.md in a fixed order.
    static func json(_ p: [String: Any]) -> JSONValue {
        func string(_ key: String) -> JSONValue { (p[key] as? String).map { .string($0) } ?? .null }
        func bool(_ key: String) -> JSONValue { .bool(p[key] as? Bool ?? false) }
        return .object([
            ("id", string("id")), ("user", string("user")), ("role", string("role")), ("state", string("state")),
            ("transport", string("transport")), ("peer", string("peer")), ("mediaSession", string("mediaSession")),
            ("joinedAt", string("joinedAt")), ("connectedSince", string("connectedSince")), ("muted", bool("muted")),
            ("handRaised", bool("handRaised")), ("presenting", bool("presenting")), ("echo", bool("echo")),
        ])
    }
}

struct CallsEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end", abstract: "End the call in a channel: every participant is removed.",
        discussion: """
            Each participant gets the event call_ended and {"type":"closed","reason":"removed by an \
            administrator"}; its media session and WebSocket are closed. Exit 2 with the server's \
            message when no call runs in the channel.

            Examples:
              callsctl calls end 4xp9fdt3pbdp7nrw7xjmrd8kkc
              callsctl calls end 4xp9fdt3pbdp7nrw7xjmrd8kkc --url http://10.0.0.20:8045 --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup(title: "Admin API") var api: AdminAPIOptions
    @Argument(help: ArgumentHelp("The channel id of the call.", valueName: "channel-id")) var channel: String

    func validate() throws {
        do { _ = try ChannelID(validating: channel) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let client = try AdminAPIClient(api, global: global)
        let out = global.output
        let answer = try client.send("DELETE", "/api/v1/calls/\(channel)", out: out)
        let count = (answer["participants"] as? NSNumber)?.intValue ?? 0
        if global.json {
            out.emit(.object([("ended", .string(answer["ended"] as? String ?? channel)), ("participants", .int(Int64(count)))]))
        } else {
            out.line("ended the call in \(channel): \(count) participant\(count == 1 ? "" : "s") removed")
        }
    }
}

struct CallsRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove one participant (a signaling session) from its call.",
        discussion: """
            SESSION is the SESSION column of `callsctl calls list` (the sessionId of the join). The \
            participant gets {"type":"closed","reason":"removed by an administrator"}; its media \
            session and WebSocket are closed and the others get participant_left. Exit 2 with the \
            server's message when there is no such session.

            Examples:
              callsctl calls remove ktlvts55sc5359of
              callsctl calls remove ktlvts55sc5359of --admin-key-file /etc/callsctl/admin-key --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup(title: "Admin API") var api: AdminAPIOptions
    @Argument(help: ArgumentHelp("The session id (SESSION in `callsctl calls list`).", valueName: "session")) var session: String

    func validate() throws {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
        guard !session.isEmpty, session.count <= 128, session.unicodeScalars.allSatisfy(allowed.contains) else {
            throw ValidationError(
                "\"\(UntrustedText.forLog(session, limit: 64))\" is not a session id; give the SESSION column of `callsctl calls list` (letters, digits, - and _).")
        }
    }

    func run() async throws {
        let client = try AdminAPIClient(api, global: global)
        let out = global.output
        let answer = try client.send("DELETE", "/api/v1/sessions/\(session)", out: out)
        let channel = answer["channel"] as? String
        let user = answer["user"] as? String
        if global.json {
            out.emit(
                .object([("removed", .string(answer["removed"] as? String ?? session)), ("channel", .string(channel)), ("user", .string(user))]))
        } else {
            out.line(
                "removed session \(session)"
                    + (user.map { " (\(UntrustedText.forLog($0, limit: 64))" + (channel.map { " in \($0))" } ?? ")") } ?? ""))
        }
    }
}
