import Foundation

/// `callsctl/callsctl.toml`: every key of ``ConfigKey/all`` (the model `serve --config` reads), each with
/// its help and default in a comment, set for this deployment. Secrets stay in their own files (mode
/// 0600) and are referenced by path; keys this deployment leaves unset are written commented out.
enum CallsctlGenerator {
    /// The flattened keys the bundle check reads back.
    enum Keys {
        static let apiListen = "api.http.listen_address"
        static let mediaUDPPort = "rtc.ice_port_udp"
        static let mediaTCPPort = "rtc.ice_port_tcp"
        static let iceHostOverride = "rtc.ice_host_override"
        static let iceServers = "rtc.ice_servers"
        static let stunServers = "rtc.stun_servers"
        static let databaseURL = "cluster.database_url"
        static let nodeID = "cluster.node_id"
        static let publicURL = "cluster.public_url"
    }

    /// Where a cluster node finds the database URL: an environment file (mode 0600) that systemd loads.
    static let clusterEnvironmentFile = "\(Paths.etc)/cluster-db.env"
    /// The variable serve reads the database URL from (an alias of cluster.database_url).
    static let clusterEnvironmentVariable = "CALLSCTL_CLUSTER_DB"

    /// This deployment's value for a key; nil leaves the key at its default (commented when unset).
    /// `node`: the cluster node the file is for (its own advertised address, node id and public URL).
    static func value(for key: String, _ i: DeploymentInputs, node: DeploymentInputs.ClusterNode? = nil) -> ConfigValue? {
        if let node {
            switch key {
            case Keys.iceHostOverride: return .string(node.address)
            case Keys.stunServers: return nil
            case Keys.nodeID: return .string(node.id)
            case Keys.publicURL: return .string(node.publicURL)
            // Never here: the URL may hold the password, and this file is not secret.
            case Keys.databaseURL: return nil
            default: break
            }
        }
        return switch key {
        case Keys.apiListen: .string("0.0.0.0:\(i.apiPort)")
        case "api.security.admin_key_file": .string(Paths.adminKey)
        case "api.security.token_secret_file": .string(Paths.tokenSecret)
        case "rtc.ice_address_udp", "rtc.ice_address_tcp": .string("")
        case Keys.mediaUDPPort, Keys.mediaTCPPort: .integer(i.rtcPort)
        // Several media nodes share this file: none advertises a fixed address; each asks STUN at start.
        case Keys.iceHostOverride: i.sharedOverride.map { .string($0) }
        case "rtc.stun_servers": i.sharedOverride == nil ? .list([i.discoveryStunServer]) : nil
        case Keys.iceServers: .list([i.stunURL] + i.turnURLs)
        case "rtc.turn.static_auth_secret_file": .string(Paths.turnSecret)
        case "rtc.turn.credentials_expiration_minutes": .integer(i.turnCredentialMinutes)
        case "limits.max_participants": i.maxParticipants.map { .integer($0) }
        default: nil
        }
    }

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        guard i.isCluster else { return [file(i, node: nil)] }
        return i.clusterNodes.map { file(i, node: $0) }
    }

    /// One callsctl.toml: the single node's (without a [cluster] section), or one cluster node's.
    static func file(_ i: DeploymentInputs, node: DeploymentInputs.ClusterNode?) -> GeneratedFile {
        var text = """
            # callsctl serve configuration for \(i.domain). \(Render.header).
            # Every key is listed with its default. Install as \(Paths.config), then:
            #   callsctl serve --config \(Paths.config)
            # Check it with: callsctl config validate \(Paths.config)

            """
        if let node {
            text += """
                # Cluster node \(node.id) of \(i.clusterNodes.count): install this file on \(node.host) only; every node has its own.
                # The database URL is not in this file: \(clusterEnvironmentVariable) in \(clusterEnvironmentFile) (mode 0600) sets it.

                """
        }
        var section = ""
        // The [cluster] keys only in the cluster form: a single node's file stays as it was.
        for key in ConfigKey.all where node != nil || key.section != "cluster" {
            if key.section != section {
                section = key.section
                text += "\n[\(section)]\n"
            }
            text += "# \(key.help) Default: \(key.defaultValue?.tomlText ?? "unset").\n"
            if node != nil, key.name == Keys.databaseURL {
                text += "# Set by \(clusterEnvironmentVariable) (\(clusterEnvironmentFile); on Kubernetes the Secret callsctl-secrets): it may hold the password.\n"
            }
            if let value = value(for: key.name, i, node: node) ?? key.defaultValue {
                text += "\(key.keyInSection) = \(value.tomlText)\n"
            } else {
                text += "# \(key.keyInSection) =\n"
            }
        }
        guard let node else {
            return GeneratedFile(path: "callsctl/callsctl.toml", contents: text, description: "callsctl serve settings; \(Paths.config)")
        }
        return GeneratedFile(
            path: "callsctl/\(node.id)/callsctl.toml", contents: text,
            description: "callsctl serve settings of cluster node \(node.id) (\(node.host)); \(Paths.config) there")
    }
}
