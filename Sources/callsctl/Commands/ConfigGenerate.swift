import ArgumentParser
import CallsConfig
import Foundation

struct ConfigGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write consistent configs for callsctl, rtcd, coturn, nginx, Kubernetes, systemd, ...",
        discussion: """
            From one set of inputs, writes configs that agree with each other: the same ports, TURN \
            secret, advertised address and hosts everywhere. After editing a bundle, check it with \
            `callsctl config validate --bundle DIR`.

            Targets and the files they write:
              callsctl         callsctl/callsctl.toml (every serve key and its default)
              rtcd             rtcd/config.toml, rtcd/rtcd.env (RTCD_* variables)
              mattermost-plugin
                               mattermost/plugin-settings.json and mmctl-commands.sh
              coturn           coturn/turnserver.conf (use-auth-secret, no private peers)
              nginx            nginx/callsctl.conf (HTTPS, WebSocket upgrade); with
                               --nginx-stream also nginx/callsctl-stream.conf (media port)
              kubernetes       kubernetes/callsctl.yaml (Secret, Deployment or DaemonSet,
                               Service), kubernetes/rtcd-values.yaml (rtcd Helm chart)
              systemd          systemd/callsctl.service, systemd/90-callsctl.conf (sysctl)
              firewall         firewall/*.nft (nftables; needs --chat-server-cidr)
              calls-offloader  calls-offloader/config.toml (needs --mattermost-url)
              grafana          grafana/callsctl-dashboard.json (a dashboard for serve's
                               /metrics: calls, forwarding, loss, latency, failures)
              bundle           all of the above, secrets/ and README.md; needs --out

            Without --out the files go to standard output (several files each after \
            a line "==> path <=="). With --out they are written into that folder all or nothing, and \
            existing files are kept unless --force. Secrets not given are generated (32 random \
            bytes); files holding a secret get mode 0600. --json lists the files.

            Cluster form (several callsctl serve nodes sharing one PostgreSQL): --cluster-db-url-file \
            FILE with --media-nodes N or one --cluster-node NAME[=ADDRESS] per node. Each node gets its \
            own node id, public URL (https://NAME) and advertised address: callsctl writes \
            callsctl/NODE/callsctl.toml per node, kubernetes one Deployment and Service per node, an \
            Ingress and the URL in the Secret; the URL itself only goes into secret files \
            (secrets/cluster-db.env, read as CALLSCTL_CLUSTER_DB).

            Exit codes: 0 written, 2 bad input (the flag is named) or files already there, 64 usage.

            Examples (IN stands for --domain calls.example.com --public-ip 203.0.113.7):
              callsctl config generate bundle IN --out ./deploy \\
                --mattermost-url https://chat.example.com --chat-server-cidr 10.0.0.5/32
              callsctl config generate callsctl IN > callsctl.toml
              callsctl config generate rtcd IN --turn-secret-file turn-secret --out .
              callsctl config generate mattermost-plugin IN --out . \\
                --turn-secret-file turn-secret --max-participants 50 --test-mode off
              callsctl config generate coturn IN --turn-secret-file turn-secret \\
                --relay-ports 49152-65535 > turnserver.conf
              callsctl config generate nginx IN --out . \\
                --nginx-stream --upstream-host 10.0.0.20
              callsctl config generate kubernetes IN --kubernetes-kind daemonset \\
                --image registry.example.com/callsctl:1.0 --out .
              callsctl config generate systemd IN --out .
              callsctl config generate firewall IN --turn-domain turn.example.com \\
                --chat-server-cidr 10.0.0.0/24 --out .
              callsctl config generate calls-offloader IN \\
                --mattermost-url https://chat.example.com
              callsctl config generate grafana IN --out .
              callsctl config generate bundle IN --out ./cluster --media-nodes 3 \\
                --cluster-db-url-file db-url --mattermost-url https://chat.example.com \\
                --chat-server-cidr 10.0.0.5/32
            """)

    @OptionGroup(title: "Global options") var global: GlobalOptions

    @Argument(
        help: ArgumentHelp(
            "What to generate: \(GenerateTarget.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "target"),
        completion: .list(GenerateTarget.allCases.map(\.rawValue)))
    var target: String

    @Option(help: ArgumentHelp("Public DNS name of the media server (required).", valueName: "name")) var domain: String?
    @Option(name: .customLong("public-ip"), help: ArgumentHelp("Public IP of the media server (required).", valueName: "ip"))
    var publicIP: String?
    @Option(help: ArgumentHelp("Address advertised in ICE candidates. Default: the public IP.", valueName: "host"))
    var iceHostOverride: String?
    @Option(help: ArgumentHelp("DNS name of the TURN server. Default: the domain (coturn on the media host).", valueName: "name"))
    var turnDomain: String?
    @Option(name: .customLong("mattermost-url"), help: ArgumentHelp("Site URL of the Mattermost server.", valueName: "url"))
    var mattermostURL: String?
    @Option(help: ArgumentHelp("Media port, UDP and TCP.", valueName: "port")) var rtcPort: Int = 8443
    @Option(help: ArgumentHelp("API port (chat servers only).", valueName: "port")) var apiPort: Int = 8045
    @Option(help: ArgumentHelp("TURN port, UDP and TCP.", valueName: "port")) var turnPort: Int = 3478
    @Option(help: ArgumentHelp("TURN over TLS port.", valueName: "port")) var turnsPort: Int = 5349
    @Option(help: ArgumentHelp("coturn relay port range.", valueName: "min-max"))
    var relayPorts: String = "49152-65535"
    @Option(help: ArgumentHelp("TURN shared secret (visible in the process list; prefer --turn-secret-file).", valueName: "secret"))
    var turnSecret: String?
    @Option(help: ArgumentHelp("File with the TURN shared secret. Default: generated.", valueName: "file"), completion: .file())
    var turnSecretFile: String?
    @Option(help: ArgumentHelp("File with the media server's admin key. Default: generated.", valueName: "file"), completion: .file())
    var adminKeyFile: String?
    @Option(help: ArgumentHelp("File with callsctl's join-token secret (base64). Default: generated.", valueName: "file"), completion: .file())
    var tokenSecretFile: String?
    @Option(
        name: .customLong("chat-server-cidr"),
        help: ArgumentHelp("Address or network of the chat servers, allowed to the API port (repeatable).", valueName: "cidr"))
    var chatServerCIDRs: [String] = []
    @Flag(help: "nginx: also forward the media port (UDP and TCP) with a stream block.") var nginxStream = false
    @Option(help: ArgumentHelp("nginx: the media server's private address to forward to.", valueName: "host"))
    var upstreamHost: String = "127.0.0.1"
    @Option(help: ArgumentHelp("kubernetes: deployment or daemonset.", valueName: "kind"))
    var kubernetesKind: String = "deployment"
    @Option(help: ArgumentHelp("kubernetes: container image of callsctl.", valueName: "image"))
    var image: String = "callsctl:latest"
    @Option(help: ArgumentHelp("systemd: path of the callsctl binary.", valueName: "path"))
    var callsctlPath: String = "/usr/local/bin/callsctl"
    @Option(help: ArgumentHelp("TLS certificate for nginx and coturn. Default: /etc/letsencrypt/live/DOMAIN/fullchain.pem.", valueName: "file"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("TLS key for nginx and coturn. Default: /etc/letsencrypt/live/DOMAIN/privkey.pem.", valueName: "file"))
    var tlsKey: String?
    @Option(help: ArgumentHelp("Participants per call. Default: unlimited.", valueName: "n")) var maxParticipants: Int?
    @Option(help: ArgumentHelp("Calls plugin test mode, on or off.", valueName: "on|off")) var testMode: String = "on"
    @Option(help: ArgumentHelp("Lifetime of TURN credentials for clients, minutes.", valueName: "minutes"))
    var turnCredentialMinutes: Int = 240
    @Option(help: ArgumentHelp("File with rtcd's admin key. Default: generated (its own, not callsctl's).", valueName: "file"), completion: .file())
    var rtcdAdminKeyFile: String?
    @Option(help: ArgumentHelp("File with calls-offloader's admin key. Default: generated (its own).", valueName: "file"), completion: .file())
    var offloaderAdminKeyFile: String?
    @Option(help: ArgumentHelp("Media servers (rtcd or callsctl) sharing the load; each learns its own public address by STUN when more than 1.", valueName: "n"))
    var mediaNodes: Int = 1
    @Option(help: ArgumentHelp("Private name or address the chat servers reach the API port at. Default: the domain (it must then resolve to the private address for them).", valueName: "host"))
    var internalHost: String?
    @Option(help: ArgumentHelp("coturn release the config is for (4.7 dropped no-tlsv1/no-tlsv1_1).", valueName: "major.minor"))
    var coturnVersion: String = "4.6"
    @Option(
        name: .customLong("cluster-db-url-file"),
        help: ArgumentHelp(
            "Cluster form of callsctl serve: file with the PostgreSQL URL the nodes share (postgres://USER:PASSWORD@HOST/DB); it goes into secret files only.",
            valueName: "file"),
        completion: .file())
    var clusterDBURLFile: String?
    @Option(
        name: .customLong("cluster-node"),
        help: ArgumentHelp(
            "Cluster form: a node's own public DNS name, and the address it advertises if not that name (repeatable, one per node). Default: the domain's first label with -1, -2, ... (calls-1.example.com).",
            valueName: "name[=address]"))
    var clusterNodes: [String] = []
    @Option(help: ArgumentHelp("Write the files into this folder (required for bundle).", valueName: "dir"), completion: .directory)
    var out: String?
    @Flag(help: "Overwrite existing files in --out.") var force = false

    func validate() throws {
        guard GenerateTarget(rawValue: target) != nil else {
            throw ValidationError(
                "unknown target '\(target)'; choose one of: \(GenerateTarget.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        if target == GenerateTarget.bundle.rawValue && out == nil {
            throw ValidationError("bundle writes a folder; give it with --out DIR.")
        }
        if turnSecret != nil && turnSecretFile != nil {
            throw ValidationError("--turn-secret and --turn-secret-file cannot be used together; choose one.")
        }
        if force && out == nil {
            throw ValidationError("--force only applies with --out (files are never overwritten on standard output).")
        }
    }

    func run() async throws {
        let target = GenerateTarget(rawValue: target)!
        let out = global.output
        var raw = DeploymentInputs.Raw()
        raw.domain = domain
        raw.publicIP = publicIP
        raw.iceHostOverride = iceHostOverride
        raw.turnDomain = turnDomain
        raw.mattermostURL = mattermostURL
        raw.rtcPort = rtcPort
        raw.apiPort = apiPort
        raw.turnPort = turnPort
        raw.turnsPort = turnsPort
        raw.relayPorts = relayPorts
        raw.turnSecret = try turnSecret ?? turnSecretFile.map { try Self.readSecret($0, flag: "--turn-secret-file") }
        raw.adminKey = try adminKeyFile.map { try Self.readSecret($0, flag: "--admin-key-file") }
        raw.tokenSecret = try tokenSecretFile.map { try Self.readSecret($0, flag: "--token-secret-file") }
        raw.rtcdAdminKey = try rtcdAdminKeyFile.map { try Self.readSecret($0, flag: "--rtcd-admin-key-file") }
        raw.offloaderAdminKey = try offloaderAdminKeyFile.map { try Self.readSecret($0, flag: "--offloader-admin-key-file") }
        raw.chatServerCIDRs = chatServerCIDRs
        raw.nginxStream = nginxStream
        raw.upstreamHost = upstreamHost
        raw.kubernetesKind = kubernetesKind
        raw.image = image
        raw.callsctlPath = callsctlPath
        raw.tlsCert = tlsCert
        raw.tlsKey = tlsKey
        raw.maxParticipants = maxParticipants
        raw.testMode = testMode
        raw.turnCredentialMinutes = turnCredentialMinutes
        raw.mediaNodes = mediaNodes
        raw.internalHost = internalHost
        raw.coturnVersion = coturnVersion
        raw.clusterDatabaseURL = try clusterDBURLFile.map {
            try Self.readSecret($0, flag: "--cluster-db-url-file", hint: "Write the URL into a file: printf '%s\\n' 'postgres://USER:PASSWORD@HOST/DB' > FILE; chmod 600 FILE")
        }
        raw.clusterNodes = clusterNodes
        let inputs: DeploymentInputs
        do {
            inputs = try DeploymentInputs(raw)
        } catch {
            throw CLIError(error.description, exitCode: .negative)
        }
        let missing = target.missingInputs(inputs)
        if !missing.isEmpty {
            throw CLIError(missing.map(\.description).joined(separator: "\nerror: "), exitCode: .negative)
        }
        let files = target.files(inputs)
        // Said after the files are out, so that a failed write shows only its error.
        func warnAboutGeneratedSecrets() {
            let generated = inputs.generatedSecrets(in: files)
            if target != .bundle, !generated.isEmpty, files.contains(where: { $0.mode == 0o600 }) {
                out.warning(
                    "generated a new \(generated.joined(separator: ", ")); targets generated separately get other values. "
                        + "Pass the same --turn-secret-file/--admin-key-file to each, or generate a bundle.")
            }
        }
        guard let dir = self.out else {
            defer { warnAboutGeneratedSecrets() }
            if global.json {
                out.emit(.object([("target", .string(target.rawValue)), ("files", .array(files.map { Self.json($0, contents: true) }))]))
            } else if files.count == 1 {
                Terminal.standardOutput.write(files[0].contents)
            } else {
                Terminal.standardOutput.write(
                    files.map { "==> \($0.path) <==\n\($0.contents)" }.joined(separator: "\n"))
            }
            return
        }
        do {
            try BundleWriter.write(files, to: dir, force: force)
        } catch {
            throw CLIError(error.message, exitCode: .negative)
        }
        warnAboutGeneratedSecrets()
        if global.json {
            out.emit(
                .object([
                    ("target", .string(target.rawValue)), ("out", .string(dir)),
                    ("files", .array(files.map { Self.json($0, contents: false) })),
                    ("generatedSecrets", .array(inputs.generatedSecrets(in: files).map { .string($0) })),
                ]))
        } else {
            out.line("wrote \(files.count) file(s) to \(dir):")
            for f in files { out.line("  \(f.path) (\(String(f.mode, radix: 8))) \(f.description)") }
            if target == .bundle { out.info("next: read \((dir as NSString).appendingPathComponent("README.md")) for the order of steps") }
        }
    }

    static func json(_ f: GeneratedFile, contents: Bool) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("path", .string(f.path)), ("mode", .string(String(f.mode, radix: 8))), ("description", .string(f.description)),
        ]
        if contents { fields.append(("contents", .string(f.contents))) }
        return .object(fields)
    }

    /// A secret file's first line, trimmed; errors name the flag and the file.
    static func readSecret(_ path: String, flag: String, hint: String = "Create one with: openssl rand -hex 32 > FILE; chmod 600 FILE") throws -> String {
        let expanded = (path as NSString).expandingTildeInPath
        guard let data = FileManager.default.contents(atPath: expanded) else {
            let reason = FileManager.default.fileExists(atPath: expanded) ? "cannot be read (permissions?)" : "does not exist"
            throw CLIError("\(flag): the file \(path) \(reason).", exitCode: .negative, hint: hint)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw CLIError("\(flag): the file \(path) is empty.", exitCode: .negative, hint: hint)
        }
        return text
    }
}
