import Foundation

/// One file a generator writes: where it goes inside the output folder, its text, its mode, and one
/// line saying what it is and where it belongs on the target machine.
public struct GeneratedFile: Sendable, Equatable {
    /// Path relative to the output folder, e.g. `coturn/turnserver.conf`.
    public var path: String
    public var contents: String
    /// POSIX mode: 0o600 for anything holding a secret, else 0o644.
    public var mode: Int
    public var description: String

    public init(path: String, contents: String, mode: Int = 0o644, description: String) {
        self.path = path
        self.contents = contents
        self.mode = mode
        self.description = description
    }
}

/// A problem with the generator inputs: the flag, what was wrong, and how to fix it.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    public let flag: String
    public let message: String

    public init(_ flag: String, _ message: String) {
        self.flag = flag
        self.message = message
    }

    public var description: String { "\(flag): \(message)" }
}

/// The one set of inputs every generator reads, so that the files they write agree with each other.
/// Build it with ``DeploymentInputs/init(_:)`` from ``DeploymentInputs/Raw`` (strings as typed on the
/// command line): it checks every value and names the flag of the first bad one.
public struct DeploymentInputs: Sendable, Equatable {
    /// Public DNS name of the media server (API and media).
    public var domain: String
    /// Public IPv4 or IPv6 address of the media server.
    public var publicIP: String
    /// What the media server advertises in ICE candidates (default: the public IP).
    public var iceHostOverride: String
    /// Public DNS name of the TURN server (default: the domain, i.e. coturn on the media host).
    public var turnDomain: String
    /// Site URL of the Mattermost (chat) server, if given.
    public var mattermostURL: String?
    public var rtcPort: Int
    public var apiPort: Int
    public var turnPort: Int
    public var turnsPort: Int
    public var relayPorts: ClosedRange<Int>
    /// coturn `static-auth-secret`, shared by every TURN REST credential issuer.
    public var turnSecret: String
    /// Admin key of callsctl's API (the bearer key).
    public var adminKey: String
    /// rtcd's admin secret and calls-offloader's: one key per service, so that one leaked file opens one service.
    public var rtcdAdminKey: String
    public var offloaderAdminKey: String
    /// The secret signing callsctl join tokens (base64 of 32 bytes).
    public var tokenSecret: String
    /// Networks of the chat servers, the only ones allowed to reach the API port.
    public var chatServerCIDRs: [String]
    /// Write an nginx `stream` block for the media ports.
    public var nginxStream: Bool
    /// Where nginx forwards to (the media server's private address).
    public var upstreamHost: String
    public var kubernetesKind: KubernetesKind
    /// Path of the callsctl binary in the systemd unit.
    public var callsctlPath: String
    /// Container image for the Kubernetes manifests.
    public var image: String
    public var tlsCert: String
    public var tlsKey: String
    /// Participants per call; nil = unlimited.
    public var maxParticipants: Int?
    /// Calls plugin test mode (only system admins start calls where not explicitly enabled).
    public var testMode: Bool
    /// Lifetime of TURN REST credentials handed to clients, in minutes.
    public var turnCredentialMinutes: Int
    /// True when the TURN secret, admin key or token secret was generated here (not given).
    public var generatedSecrets: [String]
    /// Media servers (rtcd or callsctl) that share the load; each must advertise its own address.
    public var mediaNodes: Int
    /// The name or address the chat servers use for the API port (private network); nil = the domain, which must
    /// then resolve to the media server's private address for them.
    public var internalHost: String?
    /// coturn's version: 4.7 removed `no-tlsv1` and `no-tlsv1_1`.
    public var coturnVersion: CoturnVersion
    /// The cluster form: the PostgreSQL URL the callsctl serve nodes share (it may hold the database password, so
    /// it only goes into secret files); nil for a single node on SQLite.
    public var clusterDatabaseURL: String?
    /// The callsctl serve nodes of the cluster form, one per media node; empty without a cluster.
    public var clusterNodes: [ClusterNode]

    /// One callsctl serve node of a cluster: its own name, URL and advertised address.
    public struct ClusterNode: Sendable, Equatable {
        /// `cluster.node_id`: the first label of the public name (`calls-1` for calls-1.example.com).
        public var id: String
        /// The node's own public DNS name; its public URL is https://NAME.
        public var host: String
        /// What the node advertises in ICE candidates (`rtc.ice_host_override`): an address or name of this node only.
        public var address: String
        /// `cluster.public_url`: where clients reconnect when a join is redirected to this node.
        public var publicURL: String { "https://\(Render.hostForURL(host))" }

        public init(id: String, host: String, address: String) {
            self.id = id
            self.host = host
            self.address = address
        }
    }

    /// coturn's release, major.minor.
    public struct CoturnVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
        public var major: Int
        public var minor: Int
        public init(major: Int, minor: Int) {
            self.major = major
            self.minor = minor
        }
        public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
        public var description: String { "\(major).\(minor)" }
        /// The first release without `no-tlsv1` / `no-tlsv1_1` (TLS 1.0 and 1.1 are off by default there).
        public static let withoutOldTLSOptions = CoturnVersion(major: 4, minor: 7)
    }

    /// The ports rtcd and the Calls plugin accept for media and the API.
    public static let mediaServerPorts = 80...49151


    public enum KubernetesKind: String, Sendable, CaseIterable { case deployment, daemonset }

    /// Inputs as typed, before checking.
    public struct Raw: Sendable {
        public var domain: String?
        public var publicIP: String?
        public var iceHostOverride: String?
        public var turnDomain: String?
        public var mattermostURL: String?
        public var rtcPort: Int = 8443
        public var apiPort: Int = 8045
        public var turnPort: Int = 3478
        public var turnsPort: Int = 5349
        public var relayPorts: String = "49152-65535"
        public var turnSecret: String?
        public var adminKey: String?
        public var tokenSecret: String?
        public var chatServerCIDRs: [String] = []
        public var nginxStream = false
        public var upstreamHost: String = "127.0.0.1"
        public var kubernetesKind: String = "deployment"
        public var callsctlPath: String = "/usr/local/bin/callsctl"
        public var image: String = "callsctl:latest"
        public var tlsCert: String?
        public var tlsKey: String?
        public var maxParticipants: Int?
        public var testMode: String = "on"
        public var turnCredentialMinutes: Int = 240
        public var mediaNodes: Int = 1
        public var internalHost: String?
        public var rtcdAdminKey: String?
        public var offloaderAdminKey: String?
        public var coturnVersion: String = "4.6"
        /// The cluster's PostgreSQL URL as read from --cluster-db-url-file; nil: no cluster.
        public var clusterDatabaseURL: String?
        /// `NAME` or `NAME=ADDRESS` per node (--cluster-node); empty: derived from the domain.
        public var clusterNodes: [String] = []

        public init() {}
    }

    /// Checks `raw` and fills in defaults; secrets not given are generated from the system's
    /// cryptographic random source.
    /// - Throws: ``InputError`` naming the flag.
    public init(_ raw: Raw) throws(InputError) {
        var rng = SystemRandomNumberGenerator()
        try self.init(raw, random: &rng)
    }

    /// As ``init(_:)`` with a chosen random source (tests).
    public init(_ raw: Raw, random: inout some RandomNumberGenerator) throws(InputError) {
        guard let domainText = raw.domain?.trimmingCharacters(in: .whitespaces), !domainText.isEmpty else {
            throw InputError("--domain", "missing; give the public DNS name of the media server, e.g. --domain calls.example.com.")
        }
        guard Self.isHostName(domainText) else {
            throw InputError("--domain", "\"\(domainText)\" is not a DNS name; use letters, digits, '-' and '.', e.g. calls.example.com.")
        }
        domain = domainText.lowercased()
        guard let ipText = raw.publicIP?.trimmingCharacters(in: .whitespaces), !ipText.isEmpty else {
            throw InputError("--public-ip", "missing; give the public IP address clients reach the media server at, e.g. --public-ip 203.0.113.7.")
        }
        guard Self.isIPAddress(ipText) else {
            throw InputError("--public-ip", "\"\(ipText)\" is not an IPv4 or IPv6 address, e.g. 203.0.113.7.")
        }
        publicIP = ipText
        if let override = raw.iceHostOverride {
            let text = override.trimmingCharacters(in: .whitespaces)
            guard Self.isIPAddress(text) || Self.isHostName(text) else {
                throw InputError("--ice-host-override", "\"\(override)\" is neither an IP address nor a DNS name.")
            }
            iceHostOverride = text
        } else {
            iceHostOverride = ipText
        }
        if let turn = raw.turnDomain {
            let text = turn.trimmingCharacters(in: .whitespaces).lowercased()
            guard Self.isHostName(text) else {
                throw InputError("--turn-domain", "\"\(turn)\" is not a DNS name, e.g. turn.example.com.")
            }
            turnDomain = text
        } else {
            turnDomain = domain
        }
        if let url = raw.mattermostURL {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http",
                let host = parsed.host, !host.isEmpty
            else {
                throw InputError("--mattermost-url", "\"\(url)\" is not an http(s) URL; give the site URL, e.g. https://chat.example.com.")
            }
            mattermostURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            mattermostURL = nil
        }
        for (flag, value) in [("--rtc-port", raw.rtcPort), ("--api-port", raw.apiPort), ("--turn-port", raw.turnPort), ("--turns-port", raw.turnsPort)] {
            guard (1...65535).contains(value) else {
                throw InputError(flag, "\(value) is not a port; use 1-65535.")
            }
        }
        for (flag, value) in [("--rtc-port", raw.rtcPort), ("--api-port", raw.apiPort)] where !Self.mediaServerPorts.contains(value) {
            throw InputError(
                flag,
                "\(value) is outside \(Self.mediaServerPorts.lowerBound)-\(Self.mediaServerPorts.upperBound), the ports rtcd and the Calls plugin accept (below: privileged; above: the ephemeral range, where coturn relays); e.g. 8443 for media, 8045 for the API."
            )
        }
        rtcPort = raw.rtcPort
        apiPort = raw.apiPort
        turnPort = raw.turnPort
        turnsPort = raw.turnsPort
        if rtcPort == apiPort {
            throw InputError("--api-port", "\(apiPort) is also the media port (--rtc-port); both listen on TCP, so choose different ports.")
        }
        if turnPort == turnsPort {
            throw InputError("--turns-port", "\(turnsPort) is also --turn-port; TURN over TLS needs its own port.")
        }
        let parts = raw.relayPorts.split(separator: "-", omittingEmptySubsequences: false).map {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        guard parts.count == 2, let low = parts[0], let high = parts[1], (1...65535).contains(low), (1...65535).contains(high), low <= high else {
            throw InputError("--relay-ports", "\"\(raw.relayPorts)\" is not a port range MIN-MAX within 1-65535, e.g. 49152-65535.")
        }
        relayPorts = low...high
        for (flag, port) in [("--turn-port", turnPort), ("--turns-port", turnsPort)] where relayPorts.contains(port) {
            throw InputError("--relay-ports", "\(low)-\(high) contains the TURN listening port \(port) (\(flag)); move the range or the port.")
        }
        // coturn on the media host: its ports and relay range share the host with the media and API ports.
        if turnDomain == domain {
            for (flag, port) in [("--rtc-port", rtcPort), ("--api-port", apiPort)] where relayPorts.contains(port) {
                throw InputError(
                    "--relay-ports",
                    "\(low)-\(high) contains \(port) (\(flag)); coturn runs on the media host and would hand that port out as a relay port. Move the range (e.g. 49152-65535) or the port.")
            }
            for (flag, port) in [("--turn-port", turnPort), ("--turns-port", turnsPort)] where port == rtcPort || port == apiPort {
                throw InputError(
                    flag,
                    "\(port) is also \(port == rtcPort ? "the media port (--rtc-port)" : "the API port (--api-port)"); coturn runs on the media host, so it needs its own port.")
            }
        }
        var generated: [String] = []
        if let secret = raw.turnSecret?.trimmingCharacters(in: .whitespacesAndNewlines) {
            guard secret.count >= 16 else {
                throw InputError("--turn-secret", "too short (\(secret.count) characters); use at least 16, e.g. `openssl rand -hex 32`.")
            }
            guard secret.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "'" && $0 != "\\" && $0 != "#" }) else {
                throw InputError("--turn-secret", "must be printable ASCII without spaces, quotes, '\\' or '#' (it goes into several config formats); e.g. `openssl rand -hex 32`.")
            }
            turnSecret = secret
        } else {
            turnSecret = Self.hex(32, &random)
            generated.append("turn secret")
        }
        if let key = raw.adminKey?.trimmingCharacters(in: .whitespacesAndNewlines) {
            guard key.count >= 16, !key.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "\\" }) else {
                throw InputError("--admin-key-file", "the key must be one line of at least 16 characters without spaces or quotes.")
            }
            adminKey = key
        } else {
            adminKey = Self.hex(32, &random)
            generated.append("admin key")
        }
        if let token = raw.tokenSecret?.trimmingCharacters(in: .whitespacesAndNewlines) {
            guard let bytes = Data(base64Encoded: token), bytes.count >= 16 else {
                throw InputError("--token-secret-file", "the secret must be at least 16 bytes in base64, as callsctl serve reads it; e.g. `head -c 32 /dev/urandom | base64`.")
            }
            tokenSecret = token
        } else {
            tokenSecret = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }).base64EncodedString()
            generated.append("token secret")
        }
        generatedSecrets = generated
        var cidrs: [String] = []
        for cidr in raw.chatServerCIDRs.flatMap({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }) {
            guard Self.isCIDR(cidr) else {
                throw InputError("--chat-server-cidr", "\"\(cidr)\" is not an address or network, e.g. 10.0.0.5 or 10.0.0.0/24.")
            }
            cidrs.append(cidr)
        }
        chatServerCIDRs = cidrs
        nginxStream = raw.nginxStream
        let upstream = raw.upstreamHost.trimmingCharacters(in: .whitespaces)
        guard Self.isIPAddress(upstream) || Self.isHostName(upstream) else {
            throw InputError("--upstream-host", "\"\(raw.upstreamHost)\" is neither an IP address nor a DNS name.")
        }
        upstreamHost = upstream
        if nginxStream && (upstream == "127.0.0.1" || upstream == "::1" || upstream == "localhost") {
            throw InputError(
                "--nginx-stream",
                "the stream block listens on the media port \(rtcPort) and cannot forward to a media server on the same host (--upstream-host \(upstream)); run nginx on another host and set --upstream-host to the media server's private address."
            )
        }
        guard let kind = KubernetesKind(rawValue: raw.kubernetesKind.lowercased()) else {
            throw InputError("--kubernetes-kind", "\"\(raw.kubernetesKind)\" is not one of deployment, daemonset.")
        }
        kubernetesKind = kind
        guard raw.callsctlPath.hasPrefix("/") else {
            throw InputError("--callsctl-path", "\"\(raw.callsctlPath)\" is not an absolute path; systemd needs one, e.g. /usr/local/bin/callsctl.")
        }
        callsctlPath = raw.callsctlPath
        guard !raw.image.isEmpty, !raw.image.contains(where: { $0.isWhitespace }) else {
            throw InputError("--image", "\"\(raw.image)\" is not a container image reference, e.g. registry.example.com/callsctl:1.0.")
        }
        image = raw.image
        tlsCert = raw.tlsCert ?? "/etc/letsencrypt/live/\(domain)/fullchain.pem"
        tlsKey = raw.tlsKey ?? "/etc/letsencrypt/live/\(domain)/privkey.pem"
        for (flag, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey)] where !path.hasPrefix("/") {
            throw InputError(flag, "\"\(path)\" is not an absolute path; nginx and coturn need one.")
        }
        if let max = raw.maxParticipants, max < 1 {
            throw InputError("--max-participants", "\(max) is not a number of participants; use 1 or more (leave it out for no limit).")
        }
        maxParticipants = raw.maxParticipants
        switch raw.testMode.lowercased() {
        case "on": testMode = true
        case "off": testMode = false
        default: throw InputError("--test-mode", "\"\(raw.testMode)\" is not on or off.")
        }
        guard (1..<10080).contains(raw.turnCredentialMinutes) else {
            throw InputError("--turn-credential-minutes", "\(raw.turnCredentialMinutes) is out of range; rtcd accepts 1-10079 (under a week).")
        }
        turnCredentialMinutes = raw.turnCredentialMinutes
        guard (1...100).contains(raw.mediaNodes) else {
            throw InputError("--media-nodes", "\(raw.mediaNodes) is not a number of media servers; use 1-100.")
        }
        mediaNodes = raw.mediaNodes
        if mediaNodes > 1, raw.iceHostOverride != nil {
            throw InputError(
                "--ice-host-override",
                "one advertised address for \(mediaNodes) media nodes (--media-nodes) would send every client to one node; leave it out: each node then learns its own public address by STUN at start.")
        }
        (clusterDatabaseURL, clusterNodes) = try Self.cluster(raw, domain: domain, mediaNodes: &mediaNodes)
        if let host = raw.internalHost?.trimmingCharacters(in: .whitespaces) {
            guard Self.isIPAddress(host) || Self.isHostName(host) else {
                throw InputError("--internal-host", "\"\(host)\" is neither an IP address nor a DNS name; give the media server's private address, e.g. 10.0.0.20.")
            }
            if mediaNodes > 1, Self.isIPAddress(host) {
                throw InputError(
                    "--internal-host",
                    "\(host) is one address, but the Calls plugin spreads calls over the \(mediaNodes) media nodes (--media-nodes) by the addresses a DNS name resolves to; give a private name with one A record per node, e.g. rtcd.internal.example.com.")
            }
            internalHost = host
        } else {
            internalHost = nil
        }
        let version = raw.coturnVersion.trimmingCharacters(in: .whitespaces).split(separator: ".").map { Int($0) }
        guard version.count >= 2, let major = version[0], let minor = version[1], major >= 4 else {
            throw InputError("--coturn-version", "\"\(raw.coturnVersion)\" is not a coturn release like 4.6 (Debian 12) or 4.7; `turnserver --version` prints it.")
        }
        coturnVersion = CoturnVersion(major: major, minor: minor)
        var more: [String] = []
        func key(_ given: String?, flag: String, what: String) throws(InputError) -> String {
            guard let key = given?.trimmingCharacters(in: .whitespacesAndNewlines) else {
                more.append(what)
                return Self.hex(32, &random)
            }
            guard key.count >= 16, !key.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "\\" }) else {
                throw InputError(flag, "the key must be one line of at least 16 characters without spaces or quotes.")
            }
            return key
        }
        rtcdAdminKey = try key(raw.rtcdAdminKey, flag: "--rtcd-admin-key-file", what: "rtcd admin key")
        offloaderAdminKey = try key(raw.offloaderAdminKey, flag: "--offloader-admin-key-file", what: "calls-offloader admin key")
        generatedSecrets += more
        let keys = [adminKey, rtcdAdminKey, offloaderAdminKey]
        if Set(keys).count < keys.count {
            throw InputError(
                "--rtcd-admin-key-file",
                "the admin keys of callsctl, rtcd and calls-offloader must differ (one leaked key should open one service); give each its own file, or leave them out to generate them.")
        }
    }

    /// The cluster form's inputs: the database URL (checked, never echoed) and one node per media node.
    static func cluster(_ raw: Raw, domain: String, mediaNodes: inout Int) throws(InputError) -> (String?, [ClusterNode]) {
        guard let text = raw.clusterDatabaseURL?.trimmingCharacters(in: .whitespacesAndNewlines) else {
            if !raw.clusterNodes.isEmpty {
                throw InputError(
                    "--cluster-node",
                    "is for the cluster form; give the PostgreSQL the nodes share with --cluster-db-url-file FILE (a file holding postgres://USER:PASSWORD@HOST/DB).")
            }
            return (nil, [])
        }
        do {
            _ = try PostgresURL(parsing: text)
        } catch {
            // The message says what is wrong with the URL, never its text: it may hold the password.
            throw InputError("--cluster-db-url-file", "the URL in the file \(error.description).")
        }
        if !raw.clusterNodes.isEmpty {
            if mediaNodes == 1 {
                mediaNodes = raw.clusterNodes.count
            } else if mediaNodes != raw.clusterNodes.count {
                throw InputError(
                    "--cluster-node",
                    "\(raw.clusterNodes.count) node(s) given for \(mediaNodes) media nodes (--media-nodes); give one --cluster-node per node, or leave --media-nodes out.")
            }
        }
        guard mediaNodes >= 2 else {
            throw InputError(
                "--media-nodes",
                "the cluster form (--cluster-db-url-file) is for 2 or more callsctl serve nodes; give --media-nodes N or one --cluster-node per node (leave --cluster-db-url-file out for a single node on SQLite).")
        }
        if raw.iceHostOverride != nil {
            throw InputError(
                "--ice-host-override",
                "one advertised address for \(mediaNodes) cluster nodes would send every client to one node; leave it out: each node advertises its own (--cluster-node NAME=ADDRESS).")
        }
        var nodes: [ClusterNode] = []
        if raw.clusterNodes.isEmpty {
            // calls.example.com → calls-1.example.com, calls-2.example.com, ...
            let labels = domain.split(separator: ".", maxSplits: 1)
            let rest = labels.count > 1 ? "." + labels[1] : ""
            for n in 1...mediaNodes {
                let host = "\(labels[0])-\(n)\(rest)"
                guard isHostName(host), labels[0].count + 1 + String(n).count <= 63 else {
                    throw InputError("--cluster-node", "cannot derive node names from --domain \(domain); name each node with --cluster-node NAME.")
                }
                nodes.append(ClusterNode(id: "\(labels[0])-\(n)", host: host, address: host))
            }
        } else {
            for given in raw.clusterNodes {
                let parts = given.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                let host = parts[0].lowercased()
                guard isHostName(host) else {
                    throw InputError(
                        "--cluster-node",
                        "\"\(parts[0])\" is not a DNS name; give NAME or NAME=ADDRESS, e.g. calls-1.example.com=203.0.113.11 (the node's own public name and the address it advertises).")
                }
                let address = parts.count > 1 ? parts[1] : host
                guard isIPAddress(address) || isHostName(address) else {
                    throw InputError("--cluster-node", "\"\(address)\" (the address of \(host)) is neither an IP address nor a DNS name.")
                }
                let id = String(host.split(separator: ".").first ?? "")
                nodes.append(ClusterNode(id: id, host: host, address: address))
            }
        }
        for (what, values) in [("node id (the first label of the name)", nodes.map(\.id)), ("name", nodes.map(\.host)), ("address", nodes.map(\.address))] {
            var seen = Set<String>()
            for value in values where !seen.insert(value).inserted {
                throw InputError(
                    "--cluster-node",
                    "two nodes have the \(what) \(value); every node needs its own node id, public URL and advertised address.")
            }
        }
        if nodes.contains(where: { $0.host == domain }) {
            throw InputError(
                "--cluster-node",
                "\(domain) is the shared name (--domain) of the load balancer; each node needs a name of its own, reachable directly, e.g. calls-1.\(domain).")
        }
        return (text, nodes)
    }

    // MARK: Derived values shared by the generators

    /// True when coturn runs on the media host (same name), so it shares the public IP.
    public var turnOnMediaHost: Bool { turnDomain == domain }

    /// TURN URLs handed to clients: UDP, TCP and TLS.
    public var turnURLs: [String] {
        ["turn:\(turnDomain):\(turnPort)?transport=udp", "turn:\(turnDomain):\(turnPort)?transport=tcp", "turns:\(turnDomain):\(turnsPort)?transport=tcp"]
    }

    public var stunURL: String { "stun:\(turnDomain):\(turnPort)" }

    /// The host the chat servers reach the API port at (private network).
    public var apiHost: String { internalHost ?? domain }

    /// The API URL the chat servers use (plain HTTP on the private API port).
    public var apiURL: String { "http://\(Render.hostForURL(apiHost)):\(apiPort)" }

    /// The generated secrets (of ``generatedSecrets``) that `files` hold.
    public func generatedSecrets(in files: [GeneratedFile]) -> [String] {
        let values = [
            "turn secret": turnSecret, "admin key": adminKey, "token secret": tokenSecret, "rtcd admin key": rtcdAdminKey,
            "calls-offloader admin key": offloaderAdminKey,
        ]
        return generatedSecrets.filter { name in values[name].map { v in files.contains { $0.contents.contains(v) } } ?? true }
    }

    /// calls-offloader's API, where the chat servers start recording jobs (on the media host's private address).
    public var jobServiceURL: String { "http://\(Render.hostForURL(apiHost)):\(OffloaderGenerator.port)" }

    /// The address every copy of a host-level config advertises; nil when several media nodes share the files
    /// (each learns its own by STUN at start).
    public var sharedOverride: String? { mediaNodes == 1 ? iceHostOverride : nil }

    /// True for the cluster form of callsctl's own serve nodes (--cluster-db-url-file).
    public var isCluster: Bool { clusterDatabaseURL != nil }

    /// `host:port` of the STUN server the media nodes ask for their public address.
    public var discoveryStunServer: String { "\(turnDomain):\(turnPort)" }

    public var mattermostHost: String? { mattermostURL.flatMap { URL(string: $0)?.host } }

    // MARK: Checks

    static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    static func isIPv4(_ text: String) -> Bool {
        var addr = in_addr()
        return inet_pton(AF_INET, text, &addr) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var addr = in6_addr()
        return inet_pton(AF_INET6, text, &addr) == 1
    }

    static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 253, !isIPv4(text) else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        } && !(labels.last?.allSatisfy(\.isNumber) ?? true)
    }

    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return false }
        let ip = String(parts[0])
        let bits = isIPv4(ip) ? 32 : (isIPv6(ip) ? 128 : -1)
        guard bits > 0 else { return false }
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...bits).contains(n) else { return false }
        }
        return true
    }

    static func hex(_ count: Int, _ random: inout some RandomNumberGenerator) -> String {
        (0..<count).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
    }
}
