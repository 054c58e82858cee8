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
    }

    /// This deployment's value for a key; nil leaves the key at its default (commented when unset).
    static func value(for key: String, _ i: DeploymentInputs) -> ConfigValue? {
        switch key {
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
        var text = """
            # callsctl serve configuration for \(i.domain). \(Render.header).
            # Every key is listed with its default. Install as \(Paths.config), then:
            #   callsctl serve --config \(Paths.config)
            # Check it with: callsctl config validate \(Paths.config)

            """
        var section = ""
        for key in ConfigKey.all {
            if key.section != section {
                section = key.section
                text += "\n[\(section)]\n"
            }
            text += "# \(key.help) Default: \(key.defaultValue?.tomlText ?? "unset").\n"
            if let value = value(for: key.name, i) ?? key.defaultValue {
                text += "\(key.keyInSection) = \(value.tomlText)\n"
            } else {
                text += "# \(key.keyInSection) =\n"
            }
        }
        return [GeneratedFile(path: "callsctl/callsctl.toml", contents: text, description: "callsctl serve settings; \(Paths.config)")]
    }
}
