import Foundation

/// Checks that the configs in a generated bundle folder agree with each other: the TURN secret (plugin,
/// rtcd, callsctl, coturn, Kubernetes), the media, API and TURN ports (plugin, media servers, firewall,
/// proxy, ICE server URLs), and the advertised address (every ICE host override, and coturn's external IP
/// when coturn runs on the media host). Each mismatch is one error naming both files and lines.
/// Files that are missing are skipped; files that cannot be parsed are reported.
public func crossCheckBundle(directory: String) -> [ConfigDiagnostic] {
    var check = BundleCheck(directory: directory)
    return check.run()
}

/// One place a value was found: file (relative to the bundle), line, and what it is called there.
struct Observation {
    let file: String
    let line: Int
    let key: String
    let value: String
}

/// One cluster node as one file describes it: its id, public URL and ICE host override, each with its line.
struct ClusterNodeObservation {
    let file: String
    let line: Int
    var nodeID: (String, Int)?
    var publicURL: (String, Int)?
    var override: (String, Int)?

    init(file: String, line: Int) {
        self.file = file
        self.line = line
    }
}

struct BundleCheck {
    let directory: String
    var diagnostics: [ConfigDiagnostic] = []

    /// Facts that must be equal everywhere they appear.
    var secret: [Observation] = []
    var mediaUDP: [Observation] = []
    var mediaTCP: [Observation] = []
    var api: [Observation] = []
    var turnPort: [Observation] = []
    var turnsPort: [Observation] = []
    var relay: [Observation] = []
    var override: [Observation] = []
    /// coturn's external IP, compared with the override when coturn is on the media host.
    var externalIP: Observation?
    var coturnRealm: String?
    var mediaDomain: String?
    /// Files that several media nodes run with (why), and the node count of the bundle's README.
    var multiNode: [String: String] = [:]
    var readmeNodes: Int?
    /// The cluster form: what each node's config says about it, and every copy of the database URL (a secret).
    var clusterNodes: [ClusterNodeObservation] = []
    var databaseURL: [Observation] = []

    init(directory: String) { self.directory = directory }

    mutating func run() -> [ConfigDiagnostic] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            return [.error("\(directory) is not a folder.", fix: "give the folder written by `callsctl config generate bundle --out DIR`")]
        }
        readCoturn()
        readRTCDToml()
        readEnv("rtcd/rtcd.env")
        readEnv("kubernetes/rtcd-values.yaml", yaml: true)
        readPluginJSON()
        readMmctl()
        readCallsctlToml()
        readSecretFiles()
        readSystemd()
        readKubernetes()
        readFirewall()
        readNginx()
        readReadme()
        readClusterTomls()
        checkNoInlineDatabasePassword()

        compare(secret, what: "TURN secret", showValues: false)
        compare(mediaUDP, what: "media UDP port")
        compare(mediaTCP, what: "media TCP port")
        compare(api, what: "API port")
        compare(turnPort, what: "TURN port")
        compare(turnsPort, what: "TURN TLS port")
        compare(relay, what: "TURN relay range")
        compare(override, what: "ICE host override")
        compare(databaseURL, what: "cluster database URL", showValues: false)
        checkClusterNodes()
        checkSharedOverride()
        checkPorts()
        if let ip = externalIP, let realm = coturnRealm, realm == mediaDomain, let reference = majority(override),
            DeploymentInputs.isIPAddress(reference.value), reference.value != ip.value
        {
            diagnostics.append(
                .error(
                    "ICE host override differs from the public IP: \(reference.file):\(reference.line) (\(reference.key)) has \(reference.value), \(ip.file):\(ip.line) (\(ip.key)) has \(ip.value); coturn runs on the media host (realm \(realm)), so both are that host's public IP.",
                    file: ip.file, line: ip.line, key: ip.key,
                    fix: "set both to the media host's public IP (or regenerate the bundle with the right --public-ip)"))
        }
        return diagnostics
    }

    // MARK: Comparing

    /// The value most observations agree on (ties: the first seen), as its first observation.
    func majority(_ list: [Observation]) -> Observation? {
        var counts: [String: Int] = [:]
        for o in list { counts[o.value, default: 0] += 1 }
        guard let best = counts.values.max() else { return nil }
        return list.first { counts[$0.value] == best }
    }

    mutating func compare(_ list: [Observation], what: String, showValues: Bool = true) {
        guard let reference = majority(list) else { return }
        for o in list where o.value != reference.value {
            let values = showValues ? " has \(o.value), \(reference.file):\(reference.line) (\(reference.key)) has \(reference.value)" : ""
            let message =
                showValues
                ? "\(what) differs: \(o.file):\(o.line) (\(o.key))\(values)."
                : "\(what) differs between \(o.file):\(o.line) (\(o.key)) and \(reference.file):\(reference.line) (\(reference.key))."
            diagnostics.append(
                .error(
                    message, file: o.file, line: o.line, key: o.key,
                    fix: "make \(o.file) agree with \(reference.file) (secrets/secrets.env holds the generated secrets), or regenerate the bundle with --force"))
        }
    }

    // MARK: Reading

    func text(_ file: String) -> String? {
        try? String(contentsOfFile: (directory as NSString).appendingPathComponent(file), encoding: .utf8)
    }

    /// Lines with their 1-based numbers.
    func lines(_ text: String) -> [(Int, String)] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { ($0.offset + 1, String($0.element)) }
    }

    mutating func readCoturn() {
        let file = "coturn/turnserver.conf"
        guard let text = text(file) else { return }
        var minPort: (Int, String)?
        var maxPort: (Int, String)?
        for (n, raw) in lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let (key, value) = (parts[0], parts[1])
            switch key {
            case "static-auth-secret": secret.append(Observation(file: file, line: n, key: key, value: value))
            case "listening-port": turnPort.append(Observation(file: file, line: n, key: key, value: value))
            case "tls-listening-port": turnsPort.append(Observation(file: file, line: n, key: key, value: value))
            case "min-port": minPort = (n, value)
            case "max-port": maxPort = (n, value)
            case "external-ip":
                externalIP = Observation(file: file, line: n, key: key, value: String(value.split(separator: "/").first ?? ""))
            case "realm": coturnRealm = value
            default: break
            }
        }
        if let minPort, let maxPort {
            relay.append(Observation(file: file, line: minPort.0, key: "min-port/max-port", value: "\(minPort.1)-\(maxPort.1)"))
        }
    }

    mutating func parseTOML(_ file: String) -> TOMLDocument? {
        guard let text = text(file) else { return nil }
        do {
            return try TOMLDocument(parsing: text, file: file)
        } catch {
            diagnostics.append(.error("cannot parse: \(error.message)", file: file, line: error.line, fix: "fix the TOML syntax"))
            return nil
        }
    }

    static func scalar(_ value: TOMLValue) -> String? {
        switch value {
        case .string(let s): s
        case .integer(let i): String(i)
        case .bool(let b): b ? "true" : "false"
        default: nil
        }
    }

    /// Every string in a TOML value (ICE server URLs in arrays and inline tables).
    static func strings(_ value: TOMLValue) -> [String] {
        switch value {
        case .string(let s): [s]
        case .array(let items): items.flatMap(strings)
        case .inlineTable(let table): table.keys.sorted().flatMap { strings(table[$0]!) }
        default: []
        }
    }

    /// The port after the last ':' of `host:port` or `:port`.
    static func port(ofListen text: String) -> String {
        String(text.split(separator: ":").last ?? "")
    }

    /// TURN and TURN-TLS ports named in ICE server URLs.
    mutating func readICEURLs(_ urls: [String], file: String, line: Int, key: String) {
        for url in urls {
            guard let (scheme, port) = Self.urlPort(url) else { continue }
            if scheme == "turn" || scheme == "stun" { turnPort.append(Observation(file: file, line: line, key: "\(key) \(url)", value: port)) }
            if scheme == "turns" { turnsPort.append(Observation(file: file, line: line, key: "\(key) \(url)", value: port)) }
        }
    }

    /// `turn:host:3478?transport=udp` → ("turn", "3478").
    static func urlPort(_ url: String) -> (String, String)? {
        let noQuery = url.split(separator: "?").first.map(String.init) ?? url
        let parts = noQuery.split(separator: ":").map(String.init)
        guard parts.count >= 3, let scheme = parts.first else { return nil }
        return (scheme, parts.last!)
    }

    mutating func readRTCDToml() {
        let file = "rtcd/config.toml"
        guard let doc = parseTOML(file) else { return }
        for e in doc.entries {
            let value = Self.scalar(e.value)
            switch e.key {
            case "rtc.turn.static_auth_secret": if let value { secret.append(Observation(file: file, line: e.line, key: e.key, value: value)) }
            case "rtc.ice_port_udp": if let value { mediaUDP.append(Observation(file: file, line: e.line, key: e.key, value: value)) }
            case "rtc.ice_port_tcp": if let value { mediaTCP.append(Observation(file: file, line: e.line, key: e.key, value: value)) }
            // Empty: not set (the node learns its address by STUN).
            case "rtc.ice_host_override": if let value, !value.isEmpty { override.append(Observation(file: file, line: e.line, key: e.key, value: value)) }
            case "api.http.listen_address":
                if let value { api.append(Observation(file: file, line: e.line, key: e.key, value: Self.port(ofListen: value))) }
            case "rtc.ice_servers": readICEURLs(Self.strings(e.value), file: file, line: e.line, key: e.key)
            default: break
            }
        }
    }

    mutating func readCallsctlToml() {
        let file = "callsctl/callsctl.toml"
        guard let doc = parseTOML(file) else { return }
        for e in doc.entries {
            guard let value = Self.scalar(e.value) ?? (Self.strings(e.value).isEmpty ? nil : "") else { continue }
            switch e.key {
            case CallsctlGenerator.Keys.mediaUDPPort: mediaUDP.append(Observation(file: file, line: e.line, key: e.key, value: value))
            case CallsctlGenerator.Keys.mediaTCPPort: mediaTCP.append(Observation(file: file, line: e.line, key: e.key, value: value))
            case CallsctlGenerator.Keys.iceHostOverride where !value.isEmpty: override.append(Observation(file: file, line: e.line, key: e.key, value: value))
            case CallsctlGenerator.Keys.apiListen: api.append(Observation(file: file, line: e.line, key: e.key, value: Self.port(ofListen: value)))
            case CallsctlGenerator.Keys.iceServers: readICEURLs(Self.strings(e.value), file: file, line: e.line, key: e.key)
            default: break
            }
        }
    }

    /// `NAME=value` (env files) or `  NAME: "value"` (the Helm values' environmentVariables).
    mutating func readEnv(_ file: String, yaml: Bool = false) {
        guard let text = text(file) else { return }
        for (n, raw) in lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("RTCD_") else { continue }
            let parts = line.split(separator: yaml ? ":" : "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let name = parts[0]
            var value = parts[1]
            if yaml {
                guard let rendered = Self.helmRendered(parts[1]) else {
                    diagnostics.append(
                        .error(
                            "the chart writes `value: {{ $val }}` unquoted, so \(parts[1]) renders as \(Self.yamlKind(parts[1])), and Kubernetes takes only strings as env values.",
                            file: file, line: n, key: name,
                            fix: "quote the value inside its quotes, e.g. \(name): \(Render.helmString(Self.unquoteJSON(Self.unquoteSingle(parts[1]) ?? parts[1])))"))
                    continue
                }
                value = rendered
            }
            switch name {
            case "RTCD_RTC_TURNCONFIG_STATICAUTHSECRET": secret.append(Observation(file: file, line: n, key: name, value: value))
            case "RTCD_RTC_ICEPORTUDP": mediaUDP.append(Observation(file: file, line: n, key: name, value: value))
            case "RTCD_RTC_ICEPORTTCP": mediaTCP.append(Observation(file: file, line: n, key: name, value: value))
            case "RTCD_RTC_ICEHOSTOVERRIDE": override.append(Observation(file: file, line: n, key: name, value: value))
            case "RTCD_API_HTTP_LISTENADDRESS": api.append(Observation(file: file, line: n, key: name, value: Self.port(ofListen: value)))
            case "RTCD_RTC_ICESERVERS": readICEURLs(Self.iceURLs(json: value), file: file, line: n, key: name)
            default: break
            }
        }
    }

    /// The string an env value of the Helm values becomes once the chart's `value: {{ $val }}` rendered it: the
    /// values file must hold a string whose text is itself a double-quoted YAML string. nil when it renders as
    /// anything else (a number, a boolean, a list, or a plain scalar that YAML might read as one).
    static func helmRendered(_ text: String) -> String? {
        let inner: String
        if let single = unquoteSingle(text) {
            inner = single
        } else if text.hasPrefix("\""), let double = decodeJSONString(text) {
            inner = double
        } else {
            return nil
        }
        guard inner.hasPrefix("\""), let value = decodeJSONString(inner) else { return nil }
        return value
    }

    /// A YAML single-quoted scalar's text ('' is one quote), or nil when `text` is not one.
    static func unquoteSingle(_ text: String) -> String? {
        guard text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") else { return nil }
        return String(text.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
    }

    static func decodeJSONString(_ text: String) -> String? {
        guard let data = "[\(text)]".data(using: .utf8), let array = try? JSONSerialization.jsonObject(with: data) as? [String] else { return nil }
        return array.first
    }

    /// What a value of the values file turns into after the template (for the error message).
    static func yamlKind(_ text: String) -> String {
        let rendered = unquoteSingle(text) ?? decodeJSONString(text) ?? text
        if Int(rendered) != nil { return "a number" }
        if ["true", "false", "yes", "no", "on", "off"].contains(rendered.lowercased()) { return "a boolean" }
        if rendered.hasPrefix("[") { return "a list" }
        if rendered.hasPrefix("{") { return "a mapping" }
        return "a plain scalar (YAML may read it as another type; a colon or '#' breaks it)"
    }

    /// A YAML/JSON double-quoted scalar's value (or the text itself when not quoted).
    static func unquoteJSON(_ text: String) -> String {
        guard text.hasPrefix("\""), let data = "[\(text)]".data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [String], let first = array.first
        else { return text }
        return first
    }

    /// URLs in an ICE servers JSON list (`[{"urls": [...]}]` or `["stun:..."]`).
    static func iceURLs(json: String) -> [String] {
        guard let data = json.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else { return [] }
        return list.flatMap { item -> [String] in
            if let s = item as? String { return [s] }
            if let d = item as? [String: Any] {
                if let urls = d["urls"] as? [String] { return urls }
                if let url = d["urls"] as? String { return [url] }
            }
            return []
        }
    }

    /// The line of the first `"key"` in a JSON text.
    func jsonLine(_ text: String, key: String) -> Int {
        lines(text).first { $0.1.contains("\"\(key)\"") }?.0 ?? 1
    }

    /// Whether a Kubernetes workload runs on several nodes: a DaemonSet, or more than one replica.
    mutating func readWorkloadShape(_ file: String) {
        guard let text = text(file) else { return }
        for (_, raw) in lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line == "kind: DaemonSet" || line == "deploymentType: daemonset" {
                multiNode[file] = "a DaemonSet runs on every node"
            } else if line.hasPrefix("replicas:"), let n = Int(line.dropFirst(9).trimmingCharacters(in: .whitespaces)), n > 1 {
                multiNode[file] = "\(n) replicas run on \(n) nodes"
            }
        }
    }

    /// The media node count in the bundle README's input table.
    mutating func readReadme() {
        guard let text = text("README.md") else { return }
        for (_, line) in lines(text) where line.hasPrefix("| media nodes |") {
            readmeNodes = Int(line.dropFirst("| media nodes |".count).prefix { $0 != "|" }.trimmingCharacters(in: .whitespaces))
        }
    }

    /// One fixed ICE host override in a file several nodes run with sends every client to one node.
    mutating func checkSharedOverride() {
        readWorkloadShape("kubernetes/callsctl.yaml")
        readWorkloadShape("kubernetes/rtcd-values.yaml")
        let hostFiles = ["rtcd/config.toml", "rtcd/rtcd.env", "callsctl/callsctl.toml", "systemd/callsctl.service"]
        for o in override where !o.value.isEmpty {
            let why: String?
            if let reason = multiNode[o.file] {
                why = reason
            } else if hostFiles.contains(o.file), let n = readmeNodes, n > 1 {
                why = "the bundle is for \(n) media nodes (README.md), which all run this file"
            } else {
                why = nil
            }
            guard let why else { continue }
            diagnostics.append(
                .error(
                    "ICE host override \(o.value) is shared by several media nodes: \(why), and each would advertise \(o.value), so every client would be sent to one node.",
                    file: o.file, line: o.line, key: o.key,
                    fix: "remove it so that each node learns its own public address by STUN at start (callsctl: --stun-server; rtcd: a stun: URL in ice_servers), or regenerate with --media-nodes N"))
        }
    }

    /// Ports rtcd and the plugin accept, and ports that collide on one host.
    mutating func checkPorts() {
        let range = DeploymentInputs.mediaServerPorts
        var seen = Set<String>()
        for (o, what) in mediaUDP.map({ ($0, "media") }) + mediaTCP.map({ ($0, "media") }) + api.map({ ($0, "API") }) {
            guard let port = Int(o.value), !range.contains(port), seen.insert("\(o.file):\(o.line):\(o.key)").inserted else { continue }
            diagnostics.append(
                .error(
                    "\(what) port \(port) is outside \(range.lowerBound)-\(range.upperBound), the ports rtcd and the Calls plugin accept.",
                    file: o.file, line: o.line, key: o.key,
                    fix: "choose a port in \(range.lowerBound)-\(range.upperBound) (e.g. 8443 for media, 8045 for the API) and regenerate the bundle"))
        }
        // coturn on the media host (its realm is the media server's name): its relay range and listeners share
        // the host with the media and API ports.
        guard let realm = coturnRealm, realm == mediaDomain else { return }
        let hostPorts = [(majority(mediaUDP), "media UDP port"), (majority(mediaTCP), "media TCP port"), (majority(api), "API port")]
        if let r = relay.first(where: { $0.file.hasPrefix("coturn/") }) {
            let bounds = r.value.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2, bounds[0] <= bounds[1] {
                for case let (o?, what) in hostPorts {
                    guard let port = Int(o.value), (bounds[0]...bounds[1]).contains(port) else { continue }
                    diagnostics.append(
                        .error(
                            "coturn's relay range \(r.value) contains the \(what) \(port) (\(o.file):\(o.line)); coturn runs on the media host (realm \(realm)) and would hand that port out as a relay port.",
                            file: r.file, line: r.line, key: r.key,
                            fix: "move the relay range (e.g. 49152-65535) or the port, then regenerate the bundle"))
                }
            }
        }
        for t in (turnPort + turnsPort).filter({ $0.file.hasPrefix("coturn/") }) {
            for case let (o?, what) in hostPorts where o.value == t.value {
                diagnostics.append(
                    .error(
                        "coturn's \(t.key) \(t.value) is also the \(what) (\(o.file):\(o.line)); both run on the media host (realm \(realm)).",
                        file: t.file, line: t.line, key: t.key, fix: "give coturn and the media server different ports, then regenerate the bundle"))
            }
        }
    }

    mutating func readPluginJSON() {
        let file = "mattermost/plugin-settings.json"
        guard let text = text(file) else { return }
        guard let data = text.data(using: .utf8), let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            diagnostics.append(.error("cannot parse: not a JSON object.", file: file, fix: "fix the JSON syntax (python3 -m json.tool shows where)"))
            return
        }
        guard let settings = ((root["PluginSettings"] as? [String: Any])?["Plugins"] as? [String: Any])?[PluginGenerator.pluginID] as? [String: Any]
        else {
            diagnostics.append(.error("has no PluginSettings.Plugins[\"\(PluginGenerator.pluginID)\"] object.", file: file))
            return
        }
        func value(_ key: String) -> String? {
            switch settings[key] {
            case let s as String: s
            case let n as NSNumber: n.stringValue
            default: nil
            }
        }
        func observe(_ key: String, transform: (String) -> String = { $0 }) -> [Observation] {
            guard let v = value(key) else { return [] }
            return [Observation(file: file, line: jsonLine(text, key: key), key: key, value: transform(v))]
        }
        secret += observe("turnstaticauthsecret")
        mediaUDP += observe("udpserverport")
        mediaTCP += observe("tcpserverport")
        override += observe("icehostoverride")
        api += observe("rtcdserviceurl") { url in URL(string: url)?.port.map(String.init) ?? "" }
        if let urls = value("iceserversconfigs") {
            readICEURLs(Self.iceURLs(json: urls), file: file, line: jsonLine(text, key: "iceserversconfigs"), key: "iceserversconfigs")
        }
        if let url = value("rtcdserviceurl") { mediaDomain = URL(string: url)?.host }
    }

    /// `mmctl config set` changes only keys the server's config already has: on a server that never ran the
    /// Calls plugin the settings would not be set. The script must patch plugin-settings.json instead.
    mutating func readMmctl() {
        let file = "mattermost/mmctl-commands.sh"
        guard let text = text(file) else { return }
        let prefix = "mmctl config set PluginSettings.Plugins.\(PluginGenerator.pluginID)."
        for (n, line) in lines(text) where line.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) {
            diagnostics.append(
                .error(
                    "`mmctl config set` only overwrites keys the server's config already has; on a server that never ran the Calls plugin this setting is not made.",
                    file: file, line: n, key: String(line.trimmingCharacters(in: .whitespaces).dropFirst(prefix.count).prefix { $0 != " " }),
                    fix: "apply the settings with `mmctl config patch plugin-settings.json` (regenerate the bundle for a script that does)"))
        }
    }

    mutating func readSecretFiles() {
        if let text = text("secrets/turn-secret") {
            secret.append(Observation(file: "secrets/turn-secret", line: 1, key: "turn-secret", value: text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        if let text = text("secrets/secrets.env") {
            for (n, line) in lines(text) where line.hasPrefix("TURN_STATIC_AUTH_SECRET=") {
                secret.append(Observation(file: "secrets/secrets.env", line: n, key: "TURN_STATIC_AUTH_SECRET", value: String(line.dropFirst(24))))
            }
        }
    }

    /// `callsctl serve` flags as (flag, value, line) from a list of words with their lines.
    mutating func readServeFlags(_ words: [(String, Int)], file: String) {
        var index = 0
        while index + 1 < words.count {
            let flag = words[index].0
            // The value's line: in YAML lists the value is on the line after its flag.
            let (value, line) = words[index + 1]
            switch flag {
            case "--rtc-listen":
                let port = Self.port(ofListen: value)
                mediaUDP.append(Observation(file: file, line: line, key: flag, value: port))
                mediaTCP.append(Observation(file: file, line: line, key: flag, value: port))
            case "--api-listen": api.append(Observation(file: file, line: line, key: flag, value: Self.port(ofListen: value)))
            case "--ice-host-override": override.append(Observation(file: file, line: line, key: flag, value: value))
            case "--turn-url": readICEURLs([value], file: file, line: line, key: flag)
            default: index += 1; continue
            }
            index += 2
        }
    }

    mutating func readSystemd() {
        let file = "systemd/callsctl.service"
        guard let text = text(file) else { return }
        var words: [(String, Int)] = []
        var inExec = false
        for (n, raw) in lines(text) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("ExecStart=") {
                inExec = true
                line = String(line.dropFirst("ExecStart=".count))
            } else if !inExec {
                continue
            }
            let continues = line.hasSuffix("\\")
            if continues { line = String(line.dropLast()) }
            for word in line.split(separator: " ") { words.append((String(word).trimmingCharacters(in: CharacterSet(charactersIn: "\"")), n)) }
            if !continues { inExec = false }
        }
        readServeFlags(words, file: file)
    }

    mutating func readKubernetes() {
        let file = "kubernetes/callsctl.yaml"
        guard let text = text(file) else { return }
        var words: [(String, Int)] = []
        // The cluster form has one Deployment per node, each with its own node id, public URL and ICE host override:
        // those are read per document, not compared across the file.
        func endDocument() {
            if words.contains(where: { $0.0 == "--cluster-node-id" || $0.0 == "--cluster-public-url" }) {
                var node = ClusterNodeObservation(file: file, line: words.first?.1 ?? 1)
                var rest: [(String, Int)] = []
                var index = 0
                while index < words.count {
                    let (word, line) = words[index]
                    let value = index + 1 < words.count ? words[index + 1] : nil
                    switch word {
                    case "--cluster-node-id": node.nodeID = value.map { ($0.0, $0.1) }
                    case "--cluster-public-url": node.publicURL = value.map { ($0.0, $0.1) }
                    case "--ice-host-override": node.override = value.map { ($0.0, $0.1) }
                    default:
                        rest.append((word, line))
                        index += 1
                        continue
                    }
                    index += 2
                }
                clusterNodes.append(node)
                readServeFlags(rest, file: file)
            } else {
                readServeFlags(words, file: file)
            }
            words = []
        }
        for (n, raw) in lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line == "---" {
                endDocument()
            } else if line.hasPrefix("turn-secret:") {
                secret.append(Observation(file: file, line: n, key: "turn-secret", value: Self.unquoteJSON(String(line.dropFirst(12)).trimmingCharacters(in: .whitespaces))))
            } else if line.hasPrefix("\(KubernetesGenerator.databaseURLKey):") {
                let value = String(line.dropFirst(KubernetesGenerator.databaseURLKey.count + 1)).trimmingCharacters(in: .whitespaces)
                databaseURL.append(Observation(file: file, line: n, key: KubernetesGenerator.databaseURLKey, value: Self.unquoteJSON(value)))
            } else if line.hasPrefix("- \"") {
                words.append((Self.unquoteJSON(String(line.dropFirst(2))), n))
            }
        }
        endDocument()
    }

    // MARK: Cluster form

    /// `callsctl/NODE/callsctl.toml`: one file per cluster node.
    mutating func readClusterTomls() {
        let folder = (directory as NSString).appendingPathComponent("callsctl")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        for name in names {
            let file = "callsctl/\(name)/callsctl.toml"
            guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(file)), let doc = parseTOML(file) else { continue }
            var node = ClusterNodeObservation(file: file, line: 1)
            for e in doc.entries {
                guard let value = Self.scalar(e.value) ?? (Self.strings(e.value).isEmpty ? nil : "") else { continue }
                switch e.key {
                case CallsctlGenerator.Keys.mediaUDPPort: mediaUDP.append(Observation(file: file, line: e.line, key: e.key, value: value))
                case CallsctlGenerator.Keys.mediaTCPPort: mediaTCP.append(Observation(file: file, line: e.line, key: e.key, value: value))
                case CallsctlGenerator.Keys.iceHostOverride where !value.isEmpty: node.override = (value, e.line)
                case CallsctlGenerator.Keys.apiListen: api.append(Observation(file: file, line: e.line, key: e.key, value: Self.port(ofListen: value)))
                case CallsctlGenerator.Keys.iceServers: readICEURLs(Self.strings(e.value), file: file, line: e.line, key: e.key)
                case CallsctlGenerator.Keys.nodeID: node.nodeID = (value, e.line)
                case CallsctlGenerator.Keys.publicURL: node.publicURL = (value, e.line)
                default: break
                }
            }
            clusterNodes.append(node)
        }
        if let text = text("secrets/cluster-db.env") {
            let prefix = CallsctlGenerator.clusterEnvironmentVariable + "="
            for (n, line) in lines(text) where line.hasPrefix(prefix) {
                let value = String(line.dropFirst(prefix.count))
                let url = value.hasPrefix("\"") ? (Self.decodeJSONString(value) ?? value) : value
                databaseURL.append(Observation(file: "secrets/cluster-db.env", line: n, key: CallsctlGenerator.clusterEnvironmentVariable, value: url))
            }
        }
    }

    /// Every node has its own id, public URL and advertised address; a node in several files is the same node in each.
    mutating func checkClusterNodes() {
        let byFile = Dictionary(grouping: clusterNodes) { $0.file.hasPrefix("kubernetes/") ? $0.file : "callsctl/" }
        for group in byFile.keys.sorted() {
            let nodes = byFile[group]!
            for node in nodes {
                if node.nodeID == nil {
                    diagnostics.append(
                        .error(
                            "a cluster node without cluster.node_id: it would take the host name, which the bundle cannot check for uniqueness.",
                            file: node.file, line: node.line, key: CallsctlGenerator.Keys.nodeID,
                            fix: "set cluster.node_id (--cluster-node-id) to a name of its own, or regenerate the bundle"))
                }
                if let (url, line) = node.publicURL {
                    if let problem = HTTPURLCheck.problem(url) {
                        diagnostics.append(
                            .error(
                                "cluster.public_url \(url) \(problem).", file: node.file, line: line, key: CallsctlGenerator.Keys.publicURL,
                                fix: "give the node's own https URL, e.g. https://calls-1.example.com"))
                    }
                } else {
                    diagnostics.append(
                        .error(
                            "cluster node \(node.nodeID?.0 ?? "?") has no cluster.public_url: joins for its calls are redirected there.",
                            file: node.file, line: node.nodeID?.1 ?? node.line, key: CallsctlGenerator.Keys.publicURL,
                            fix: "set cluster.public_url (--cluster-public-url) to the node's own URL, reachable directly, or regenerate the bundle"))
                }
            }
            let checks: [(String, String, KeyPath<ClusterNodeObservation, (String, Int)?>, String)] = [
                ("node id", CallsctlGenerator.Keys.nodeID, \.nodeID, "give every node its own cluster.node_id"),
                ("public URL", CallsctlGenerator.Keys.publicURL, \.publicURL,
                 "give every node its own cluster.public_url: a redirect to a shared URL may land on another node again"),
                ("ICE host override", CallsctlGenerator.Keys.iceHostOverride, \.override,
                 "give every node its own rtc.ice_host_override: one shared address sends every client to one node"),
            ]
            for (what, key, path, fix) in checks {
                var first: [String: (ClusterNodeObservation, Int)] = [:]
                for node in nodes {
                    guard let (value, line) = node[keyPath: path] else { continue }
                    if let (other, otherLine) = first[value] {
                        diagnostics.append(
                            .error(
                                "two cluster nodes have the \(what) \(value): \(node.file):\(line) and \(other.file):\(otherLine).",
                                file: node.file, line: line, key: key, fix: fix))
                    } else {
                        first[value] = (node, line)
                    }
                }
            }
        }
        // The same node (by id) in the per-node files and on Kubernetes: the same URL and address.
        let tomlNodes = clusterNodes.filter { $0.file.hasPrefix("callsctl/") }
        for k8s in clusterNodes where k8s.file.hasPrefix("kubernetes/") {
            guard let id = k8s.nodeID?.0, let node = tomlNodes.first(where: { $0.nodeID?.0 == id }) else { continue }
            for (what, key, path) in [("public URL", CallsctlGenerator.Keys.publicURL, \ClusterNodeObservation.publicURL), ("ICE host override", CallsctlGenerator.Keys.iceHostOverride, \.override)] {
                guard let (a, aLine) = k8s[keyPath: path], let (b, bLine) = node[keyPath: path], a != b else { continue }
                diagnostics.append(
                    .error(
                        "\(what) of cluster node \(id) differs: \(k8s.file):\(aLine) has \(a), \(node.file):\(bLine) has \(b).",
                        file: k8s.file, line: aLine, key: key, fix: "make them agree, or regenerate the bundle with --force"))
            }
        }
    }

    /// The database URL may hold the password: only the secret files may hold one (secrets/, the Kubernetes Secret).
    mutating func checkNoInlineDatabasePassword() {
        var files = ["kubernetes/rtcd-values.yaml", "kubernetes/callsctl.yaml", "systemd/callsctl.service", "callsctl/callsctl.toml"]
        files += clusterNodes.map(\.file).filter { $0.hasPrefix("callsctl/") }
        for file in files {
            guard let text = text(file) else { continue }
            var inSecret = false
            for (n, raw) in lines(text) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line == "---" { inSecret = false }
                if line == "kind: Secret" { inSecret = true }
                guard !inSecret, Self.holdsDatabasePassword(line) else { continue }
                diagnostics.append(
                    .error(
                        "holds a PostgreSQL URL with its password; this file is not a secret.",
                        file: file, line: n, key: CallsctlGenerator.Keys.databaseURL,
                        fix: file.hasPrefix("kubernetes/")
                            ? "keep the URL in the Secret callsctl-secrets (key \(KubernetesGenerator.databaseURLKey)) and read it with valueFrom.secretKeyRef"
                            : "remove it: serve reads \(CallsctlGenerator.clusterEnvironmentVariable) from \(CallsctlGenerator.clusterEnvironmentFile) (mode 0600), or keep the password in cluster.database_password_file"))
            }
        }
    }

    /// Whether a line holds a postgres:// URL with a password (never says which).
    static func holdsDatabasePassword(_ line: String) -> Bool {
        var rest = Substring(line)
        while let start = rest.range(of: "postgres", options: .caseInsensitive) {
            let url = rest[start.lowerBound...].prefix { !$0.isWhitespace && $0 != "\"" && $0 != "'" }
            if let parsed = try? PostgresURL(parsing: String(url)), parsed.password?.isEmpty == false { return true }
            rest = rest[start.upperBound...]
        }
        return false
    }

    mutating func readFirewall() {
        for file in ["firewall/callsctl.nft", "firewall/media-host.nft", "firewall/turn-host.nft"] {
            guard let text = text(file) else { continue }
            for (n, raw) in lines(text) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                guard let range = line.range(of: "comment \""), let dport = line.range(of: "dport ") else { continue }
                let name = line[range.upperBound...].prefix { $0 != "\"" }
                let port = String(line[dport.upperBound...].prefix { $0 != " " })
                let o = Observation(file: file, line: n, key: "rule \"\(name)\"", value: port)
                switch name {
                case "media-udp": mediaUDP.append(o)
                case "media-tcp": mediaTCP.append(o)
                case "api": api.append(o)
                case "turn-udp", "turn-tcp": turnPort.append(o)
                case "turns": turnsPort.append(o)
                case "turn-relay": relay.append(o)
                default: break
                }
            }
        }
    }

    mutating func readNginx() {
        if let text = text("nginx/callsctl.conf") {
            var inUpstream = false
            for (n, raw) in lines(text) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("upstream callsctl_api") || line.hasPrefix("upstream callsctl_ws") { inUpstream = true }
                if inUpstream, line.hasPrefix("server ") {
                    let target = line.dropFirst(7).prefix { $0 != ";" && $0 != " " }
                    api.append(Observation(file: "nginx/callsctl.conf", line: n, key: "upstream server", value: Self.port(ofListen: String(target))))
                    inUpstream = false
                }
            }
        }
        if let text = text("nginx/callsctl-stream.conf") {
            let file = "nginx/callsctl-stream.conf"
            var udp = false
            for (n, raw) in lines(text) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("listen ") {
                    let words = line.dropLast(line.hasSuffix(";") ? 1 : 0).split(separator: " ")
                    udp = words.contains("udp")
                    let port = Self.port(ofListen: String(words[1]))
                    let o = Observation(file: file, line: n, key: udp ? "listen (udp)" : "listen (tcp)", value: port)
                    if udp { mediaUDP.append(o) } else { mediaTCP.append(o) }
                } else if line.hasPrefix("proxy_pass ") {
                    let target = String(line.dropFirst(11).prefix { $0 != ";" })
                    let o = Observation(file: file, line: n, key: "proxy_pass", value: Self.port(ofListen: target))
                    if udp { mediaUDP.append(o) } else { mediaTCP.append(o) }
                }
            }
        }
    }
}
