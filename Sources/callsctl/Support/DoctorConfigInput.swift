import CallsConfig
import CallsServer
import Doctor
import Foundation
import Probes

/// `doctor --config`: a callsctl.toml, or a bundle folder from `callsctl config generate bundle` (its
/// `callsctl/callsctl.toml` plus the secrets it holds before they are installed), turned into what the doctor checks.
/// Flags given on the command line win over the file.
struct DoctorConfigInput {
    let file: String
    let bundle: String?
    let resolution: ConfigResolution

    /// - Throws: `CLIError` (exit 64) for a path that is neither a file nor a bundle folder.
    init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("--config \(path): no such file or folder", exitCode: .usage)
        }
        if isDirectory.boolValue {
            let toml = (path as NSString).appendingPathComponent("callsctl/callsctl.toml")
            guard FileManager.default.fileExists(atPath: toml) else {
                // A cluster bundle has one callsctl.toml per node: the doctor checks one node at a time.
                let folder = (path as NSString).appendingPathComponent("callsctl")
                let nodes = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().filter {
                    FileManager.default.fileExists(atPath: "\(folder)/\($0)/callsctl.toml")
                }
                if !nodes.isEmpty {
                    throw CLIError(
                        "--config \(path): a cluster bundle, with one callsctl.toml per node (\(nodes.joined(separator: ", "))); the doctor checks one node: give that node's file, e.g. --config \(folder)/\(nodes[0])/callsctl.toml --role server",
                        exitCode: .usage)
                }
                throw CLIError(
                    "--config \(path): a folder, but not a bundle from `callsctl config generate bundle` (it has no callsctl/callsctl.toml). Give the bundle folder or a callsctl.toml.",
                    exitCode: .usage)
            }
            file = toml
            bundle = path
        } else {
            file = path
            bundle = nil
        }
        resolution = CallsConfig.resolve(filePath: file)
    }

    var config: CallsConfig { resolution.config }

    /// The secret files a bundle holds before they are installed where its callsctl.toml says.
    static let bundleSecrets = [
        "api.security.admin_key_file": "admin-key", "api.security.token_secret_file": "token-secret",
        "rtc.turn.static_auth_secret_file": "turn-secret",
    ]

    /// Findings of reading and of the value rules (for a bundle, also the cross-checks of `config validate --bundle`),
    /// errors first. A bundle's secret files are not installed yet: a secret path the bundle holds in secrets/ is
    /// not reported as unreadable.
    var diagnostics: [ConfigDiagnostic] {
        var all = resolution.diagnostics + (resolution.hasErrors ? [] : config.validate())
        if let bundle {
            all = all.filter { d in
                guard let key = d.key, let name = Self.bundleSecrets[key] else { return true }
                return !FileManager.default.fileExists(atPath: (bundle as NSString).appendingPathComponent("secrets/\(name)"))
            }
            all += crossCheckBundle(directory: bundle)
        }
        return all.filter { $0.severity == .error } + all.filter { $0.severity == .warning }
    }

    /// A secret: the bundle's copy (secrets/NAME) when checking a bundle, else the file the config names, when this
    /// machine can read it.
    func secret(bundleName: String, configured: String?) -> String? {
        let candidates = [bundle.map { ($0 as NSString).appendingPathComponent("secrets/\(bundleName)") }, configured]
        for case let path? in candidates {
            if let data = FileManager.default.contents(atPath: path) {
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { return text }
            }
        }
        return nil
    }

    func tokenSecretPath() -> String? {
        let candidates = [bundle.map { ($0 as NSString).appendingPathComponent("secrets/token-secret") }, config.tokenSecretFile]
        return candidates.compactMap { $0 }.first { FileManager.default.isReadableFile(atPath: $0) }
    }

    static func port(_ hostPort: String) -> UInt16? {
        hostPort.split(separator: ":").last.flatMap { UInt16($0) }
    }

    /// Fills what the flags left open.
    func apply(to target: inout DoctorTarget, urlGiven: Bool, rtcPortGiven: Bool) {
        target.configFile = file
        target.configDiagnostics = diagnostics
        let c = config
        if target.mediaHost == nil { target.mediaHost = c.iceHostOverride }
        if !urlGiven {
            let listen = c.apiListenAddress
            let port = Self.port(listen) ?? 8045
            var host = String(listen.dropLast(String(port).count + 1))
            if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
            if host.isEmpty || host == "0.0.0.0" || host == "::" {
                host = target.role == .server ? "127.0.0.1" : (c.iceHostOverride ?? "127.0.0.1")
            }
            let shown = host.contains(":") ? "[\(host)]" : host
            target.apiURL = try? ProbeURL(parsing: "http://\(shown):\(port)")
        }
        if !rtcPortGiven {
            target.rtcUDPPort = Self.port(c.rtcUDPListenAddress) ?? 8443
            target.rtcTCPPort = Self.port(c.rtcTCPListenAddress) ?? 8443
        }
        if target.stunURLs.isEmpty {
            target.stunURLs = (c.stunURLs + c.stunServers).compactMap { try? ServerURI(parsing: $0, defaultScheme: .stun) }
        }
        if target.turnURLs.isEmpty {
            target.turnURLs = c.turnURLs.compactMap { try? ServerURI(parsing: $0, defaultScheme: .turn) }
        }
        if target.turnSecret == nil {
            target.turnSecret = secret(bundleName: "turn-secret", configured: c.turnSecretFile)
        }
        if target.token == nil && target.tokenSecret == nil, let path = tokenSecretPath() {
            target.tokenSecret = try? TokenSecret.load(path: path, create: false).bytes
        }
        if target.adminKey == nil { target.adminKey = secret(bundleName: "admin-key", configured: c.adminKeyFile) }
    }
}
