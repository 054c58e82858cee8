import Foundation

/// `bundle`: every target in one folder, the secrets (mode 0600) and a README saying what goes where
/// and in which order.
enum BundleGenerator {
    static let targets: [GenerateTarget] = [
        .callsctl, .rtcd, .mattermostPlugin, .coturn, .nginx, .kubernetes, .systemd, .firewall, .callsOffloader, .grafana,
    ]

    static func secretFiles(_ i: DeploymentInputs) -> [GeneratedFile] {
        let env = """
            # Secrets of the calls deployment for \(i.domain). \(Render.header).
            # Mode 0600; keep out of version control. The same values are inside the files that need them.
            TURN_STATIC_AUTH_SECRET=\(i.turnSecret)
            ADMIN_KEY=\(i.adminKey)
            TOKEN_SECRET=\(i.tokenSecret)
            # One admin key per service: rtcd's and calls-offloader's (also in their config files).
            RTCD_ADMIN_KEY=\(i.rtcdAdminKey)
            OFFLOADER_ADMIN_KEY=\(i.offloaderAdminKey)

            """
        var cluster: [GeneratedFile] = []
        if let url = i.clusterDatabaseURL {
            // systemd's EnvironmentFile: a double-quoted value keeps '&', '$' and spaces of a URL as they are.
            let text = """
                # The PostgreSQL URL the callsctl serve nodes of \(i.domain) share. \(Render.header).
                # Mode 0600, on every node as \(CallsctlGenerator.clusterEnvironmentFile) (EnvironmentFile of callsctl.service).
                \(CallsctlGenerator.clusterEnvironmentVariable)=\(Render.json(url))

                """
            cluster.append(
                GeneratedFile(
                    path: "secrets/cluster-db.env", contents: text, mode: 0o600,
                    description: "the cluster's database URL as \(CallsctlGenerator.clusterEnvironmentVariable), for every node; \(CallsctlGenerator.clusterEnvironmentFile)"))
        }
        return [
            GeneratedFile(path: "secrets/secrets.env", contents: env, mode: 0o600, description: "all secrets of the deployment"),
            GeneratedFile(path: "secrets/turn-secret", contents: i.turnSecret + "\n", mode: 0o600,
                          description: "TURN shared secret for callsctl serve; \(Paths.turnSecret)"),
            GeneratedFile(path: "secrets/admin-key", contents: i.adminKey + "\n", mode: 0o600,
                          description: "admin API bearer key for callsctl serve; \(Paths.adminKey)"),
            GeneratedFile(path: "secrets/token-secret", contents: i.tokenSecret + "\n", mode: 0o600,
                          description: "join-token signing secret for callsctl serve; \(Paths.tokenSecret)"),
        ] + cluster
    }

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        // The bundle has calls-offloader, so the plugin gets its Job Service URL and recordings on.
        let parts = targets.flatMap { $0 == .mattermostPlugin ? PluginGenerator.files(i, recordings: true) : $0.files(i) } + secretFiles(i)
        var readme = """
            # Calls deployment for \(i.domain)

            \(Render.header). Every file below was made from the same inputs, so ports, the TURN
            secret and the advertised address agree; check that they still do after editing with
            `callsctl config validate --bundle THIS-FOLDER`.

            | input | value |
            |---|---|
            | media server | \(i.domain) (public IP \(i.publicIP)) |
            | media nodes | \(i.mediaNodes) |
            | ICE host override | \(i.isCluster ? "one per callsctl node (see Cluster below); rtcd: each node learns its address by STUN from \(i.discoveryStunServer)" : i.sharedOverride ?? "none: each node learns its address by STUN from \(i.discoveryStunServer)") |
            | API, for the chat servers | \(i.apiURL)\(i.internalHost == nil ? " (\(i.domain) must resolve to the media server's private address for them)" : "") |
            | TURN server | \(i.turnDomain) |
            | chat server | \(i.mattermostURL ?? "-") |
            | media port | \(i.rtcPort) UDP and TCP, open to everyone |
            | API port | \(i.apiPort) TCP, open to \(i.chatServerCIDRs.isEmpty ? "-" : i.chatServerCIDRs.joined(separator: ", ")) |
            | TURN ports | \(i.turnPort) UDP/TCP, \(i.turnsPort) TLS, relay \(i.relayPorts.lowerBound)-\(i.relayPorts.upperBound) UDP |

            ## Files

            | file | mode | what and where |
            |---|---|---|

            """
        for f in parts { readme += "| `\(f.path)` | \(String(f.mode, radix: 8)) | \(f.description) |\n" }
        readme += """

            Files with mode 600 or 700 hold secrets (`secrets/secrets.env` has all of them): copy them with care and
            keep them out of version control.

            ## Public and internal

            | reached by | what | where |
            |---|---|---|
            | everyone | media \(i.rtcPort) UDP and TCP | the media node(s) |
            | everyone | TURN \(i.turnPort) UDP/TCP, \(i.turnsPort) TLS, relay \(i.relayPorts.lowerBound)-\(i.relayPorts.upperBound) UDP | \(i.turnDomain) |
            | everyone | HTTPS 443: the signaling WebSocket `/ws` and the test page `/` only | nginx on \(i.domain) |
            | chat servers only | API \(i.apiPort): `/api/v1/` (admin), `/metrics`, `/readyz`, `/version`, rtcd's `/register` and admin paths | \(i.apiURL) |
            | chat servers only | calls-offloader \(OffloaderGenerator.port) | \(i.jobServiceURL) |

            The firewall opens \(i.apiPort) to the chat servers' networks only, and nginx answers 404 for every path
            but `/ws` and `/`: keep it that way. rtcd registers the chat servers that ask
            (`allow_self_registration`), which is safe only while nothing else reaches \(i.apiPort).
            \(i.internalHost == nil ? "The chat servers use \(i.apiURL): give \(i.domain) the media server's private address in their DNS (split horizon) or /etc/hosts, or regenerate with --internal-host PRIVATE-ADDRESS." : "The chat servers use \(i.apiURL), the media server's private address.")
            \(i.mediaNodes > 1 ? "\n\(i.mediaNodes) media nodes: \(i.isCluster ? "rtcd's files set no" : "no file sets a") fixed ICE host override (one shared address would send every client to one node); each node asks \(i.discoveryStunServer) for its public address at start, so every node needs a public address of its own, and the Calls plugin finds the rtcd nodes through DNS (one A record per node under the RTCD service URL's name).\n" : "")
            \(clusterSection(i))Secrets: callsctl, rtcd and calls-offloader each have their own admin key (`secrets/secrets.env`).

            ## Order of steps

            1. Firewall: load `firewall/` on each host (`nft -c -f FILE`, then `nft -f FILE`).
            2. TURN host: install coturn, copy `coturn/turnserver.conf` to `/etc/turnserver.conf`, put the
               TLS certificate for \(i.turnDomain) in place, start coturn. Check:
               `callsctl probe turn turn:\(i.turnDomain):\(i.turnPort) --secret-file secrets/turn-secret`.
            3. Media server, one of:
               - callsctl with systemd: create the user `callsctl`; \(i.isCluster ? "on each cluster node its own `callsctl/NODE/callsctl.toml`" : "`callsctl/callsctl.toml`") to
                 `\(Paths.config)`; the \(i.isCluster ? "four" : "three") files of `secrets/` (not `secrets.env`) to `\(Paths.etc)/`
                 (owner callsctl, mode 600); `systemd/90-callsctl.conf` to `/etc/sysctl.d/`
                 (`sysctl --system`); `systemd/callsctl.service` to `/etc/systemd/system/`; then
                 `callsctl config validate \(Paths.config)` and `systemctl enable --now callsctl`.
               - callsctl on Kubernetes: `kubectl apply -f kubernetes/callsctl.yaml`.
               - rtcd: `rtcd/config.toml` (or `rtcd/rtcd.env`), or on Kubernetes
                 `helm install rtcd mattermost/mattermost-rtcd -f kubernetes/rtcd-values.yaml`.
            4. Reverse proxy: `nginx/callsctl.conf` to `/etc/nginx/conf.d/`, with a certificate for
               \(i.domain); `nginx -t && systemctl reload nginx`.
            5. Recording (optional): calls-offloader with `calls-offloader/config.toml`.
            6. Chat server: apply `mattermost/plugin-settings.json` (`mmctl config patch`) or run
               `mattermost/mmctl-commands.sh`.
            7. Check the whole path: `callsctl doctor`.
            8. Monitoring (optional, callsctl serve): let Prometheus scrape \(i.apiURL)/metrics (the firewall
               opens \(i.apiPort) to the chat servers' networks only: put Prometheus in one or give it a rule of its
               own), then import `grafana/callsctl-dashboard.json` in Grafana (Dashboards > New > Import) and
               choose that Prometheus as its data source.

            """
        return parts + [GeneratedFile(path: "README.md", contents: readme, description: "this overview")]
    }

    /// The README's cluster part: the nodes, and how a load balancer and redirects work together. Empty (no text at
    /// all) without a cluster, so that a single node's README stays as it was.
    static func clusterSection(_ i: DeploymentInputs) -> String {
        guard i.isCluster else { return "" }
        var text = """

            ## Cluster: \(i.clusterNodes.count) callsctl serve nodes sharing one PostgreSQL

            | node id | public URL (`cluster.public_url`) | advertised address (`rtc.ice_host_override`) | config |
            |---|---|---|---|

            """
        for node in i.clusterNodes {
            text += "| \(node.id) | \(node.publicURL) | \(node.address) | `callsctl/\(node.id)/callsctl.toml` |\n"
        }
        text += """

            Every node reads the database URL from \(CallsctlGenerator.clusterEnvironmentVariable): `secrets/cluster-db.env` (mode 600) as
            `\(CallsctlGenerator.clusterEnvironmentFile)`, loaded by the systemd unit, or on Kubernetes the Secret `callsctl-secrets`
            (key `\(KubernetesGenerator.databaseURLKey)`). It may hold the database password, so it is in no callsctl.toml.

            A load balancer in front of the nodes' API port (\(i.apiPort), or nginx's 443 on each node) may hand the first
            WebSocket to any node: sticky sessions are not needed. A join for a call that runs on another node is answered
            with `{"type":"redirect","url":...}` naming that node's public URL, and the client reconnects there. So each
            node's public URL must be reachable directly, not only through the load balancer: give every node a DNS name
            of its own and a certificate for it (nginx/callsctl.conf answers under \(i.domain) and every node's name).
            Publish only `/ws` and `/`; `/api/v1/` stays private (the chat servers' network), as on a single node.
            Check the cluster's files with `callsctl config validate --bundle THIS-FOLDER` (unique node ids, distinct
            public URLs and addresses, one database URL everywhere, no password in a config file).

            """
        // A blank line before the paragraph that follows.
        return text + "\n"
    }
}
