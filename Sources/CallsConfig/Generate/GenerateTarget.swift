import Foundation

/// The things `callsctl config generate` can write. `bundle` is every other target in one folder.
public enum GenerateTarget: String, Sendable, CaseIterable {
    case callsctl
    case rtcd
    case mattermostPlugin = "mattermost-plugin"
    case coturn
    case nginx
    case kubernetes
    case systemd
    case firewall
    case callsOffloader = "calls-offloader"
    case grafana
    case bundle

    /// The files this target writes for `inputs`, in a stable order.
    public func files(_ inputs: DeploymentInputs) -> [GeneratedFile] {
        switch self {
        case .callsctl: CallsctlGenerator.files(inputs)
        case .rtcd: RTCDGenerator.files(inputs)
        case .mattermostPlugin: PluginGenerator.files(inputs)
        case .coturn: CoturnGenerator.files(inputs)
        case .nginx: NginxGenerator.files(inputs)
        case .kubernetes: KubernetesGenerator.files(inputs)
        case .systemd: SystemdGenerator.files(inputs)
        case .firewall: FirewallGenerator.files(inputs)
        case .callsOffloader: OffloaderGenerator.files(inputs)
        case .grafana: GrafanaGenerator.files(inputs)
        case .bundle: BundleGenerator.files(inputs)
        }
    }

    /// Inputs this target cannot do without, beyond --domain and --public-ip: every missing one, in flag order.
    public func missingInputs(_ inputs: DeploymentInputs) -> [InputError] {
        var missing: [InputError] = []
        if self == .firewall || self == .bundle, inputs.chatServerCIDRs.isEmpty {
            missing.append(
                InputError(
                    "--chat-server-cidr",
                    "missing; the firewall opens the API port \(inputs.apiPort) only to the chat servers, so name them, e.g. --chat-server-cidr 10.0.0.5/32 (repeatable)."))
        }
        if self == .bundle, inputs.mattermostURL == nil {
            missing.append(InputError("--mattermost-url", "missing; the bundle's calls-offloader config and mmctl commands need the chat server's site URL, e.g. --mattermost-url https://chat.example.com."))
        }
        if self == .callsOffloader, inputs.mattermostURL == nil {
            missing.append(InputError("--mattermost-url", "missing; calls-offloader's recording jobs open the chat server's site URL, e.g. --mattermost-url https://chat.example.com."))
        }
        return missing
    }
}

/// Text helpers shared by the generators.
enum Render {
    /// A TOML basic string.
    static func toml(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04X", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }

    static func tomlArray(_ items: [String]) -> String { "[" + items.map(toml).joined(separator: ", ") + "]" }

    /// A JSON string (the same escapes as TOML's basic strings, which JSON shares).
    static func json(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }

    /// A YAML double-quoted scalar.
    static func yaml(_ s: String) -> String { json(s) }

    /// A single-quoted shell word.
    static func shell(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// ICE servers as JSON, the shape of the Calls plugin's `ICEServersConfigs` and rtcd's env var:
    /// one STUN entry and one credential-less TURN entry (credentials are made from the shared secret).
    static func iceServersJSON(_ i: DeploymentInputs) -> String {
        "[{\"urls\":[\(json(i.stunURL))]},{\"urls\":[\(i.turnURLs.map(json).joined(separator: ","))]}]"
    }

    /// A host as it goes into a URL, bracketing IPv6 literals.
    static func hostForURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// ICE servers with the STUN URL only (rtcd's: it learns its public address from it; TURN is for clients).
    static func stunOnlyJSON(_ i: DeploymentInputs) -> String { "[{\"urls\":[\(json(i.stunURL))]}]" }

    /// A YAML scalar that Helm's `value: {{ $val }}` turns into a YAML string: the double-quoted text, itself
    /// single-quoted in the values file (so the quotes are part of the value and survive the template).
    static func helmString(_ s: String) -> String { "'" + yaml(s).replacingOccurrences(of: "'", with: "''") + "'" }

    /// `host:port`, bracketing IPv6 literals.
    static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static let header = "Generated by `callsctl config generate`"
}

/// Where the pieces live on the target machines; one place so every generator agrees.
enum Paths {
    static let etc = "/etc/callsctl"
    static let turnSecret = "/etc/callsctl/turn-secret"
    static let adminKey = "/etc/callsctl/admin-key"
    static let tokenSecret = "/etc/callsctl/token-secret"
    static let config = "/etc/callsctl/callsctl.toml"
    static let dataDir = "/var/lib/callsctl"
}
