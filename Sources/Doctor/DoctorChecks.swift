import CallsConfig
import CallsMedia
import CallsServer
import CallsStore
import CallsWire
import Foundation
import NIOCore
import Probes

/// What the doctor checks: the target deployment as the flags (or a self-test) describe it.
public struct DoctorTarget: Sendable {
    public enum Role: String, Sendable { case client, server }

    /// The media server's API (`callsctl serve` or rtcd), e.g. http://calls.example.com:8045.
    public var apiURL: ProbeURL?
    /// Where clients send media: the ICE host override, else the API's host.
    public var mediaHost: String?
    /// The RTC ports (the same port for both in a deployment; a self-test's ephemeral ports may differ).
    public var rtcUDPPort: UInt16 = 8443
    public var rtcTCPPort: UInt16 = 8443
    public var stunURLs: [ServerURI] = []
    public var turnURLs: [ServerURI] = []
    /// The TURN REST shared secret (`--turn-secret-file`).
    public var turnSecret: String?
    /// A join token (`--token-file`); else one is made with ``tokenSecret``, else minted with ``adminKey``.
    public var token: String?
    /// The media server's admin key (`--admin-key-file`), to mint a join token through its admin API.
    public var adminKey: String?
    public var tokenSecret: [UInt8]?
    /// The channel whose policy the call join checks; nil skips that check.
    public var channel: ChannelID?
    public var role: Role = .client
    /// How many audio packets each media path sends.
    public var mediaPackets = 50
    public var caFile: String?
    /// The Mattermost site (`--site-url`) and an access token for its API (`--site-token-file`).
    public var siteURL: ProbeURL?
    public var siteToken: String?
    /// `--config`: the callsctl.toml read, and what reading and validating it found.
    public var configFile: String?
    public var configDiagnostics: [ConfigDiagnostic] = []

    public init() {}
}

/// The doctor's checks for a target, in the order they are reported.
public enum DoctorChecks {
    /// A channel for echo joins when none is given (echo tests start no call and are not policy-checked).
    static let echoChannel = try! ChannelID(validating: "calls0doctor00echo00000000")

    public static func all(for target: DoctorTarget) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        if target.configFile != nil { checks.append(configValid(target)) }
        if target.role == .server {
            checks += [localPorts(target), udpBuffers(), publicAddress(target), apiExposure(target)]
        }
        checks += mattermost(target)
        checks += [apiVersion(target), apiReady(target), clock(target)]
        checks += [rtcPort(target, .udp), rtcPort(target, .tcp)]
        for (i, uri) in target.stunURLs.enumerated() { checks.append(stun(uri, index: i + 1)) }
        for (i, uri) in target.turnURLs.enumerated() { checks.append(turn(uri, target: target, index: i + 1)) }
        checks += [callJoin(target), media(target, over: .udp), media(target, over: .tcp)]
        checks += relayPaths(target).enumerated().map { i, path in
            relayedMedia(target, uri: path.uri, transport: path.transport, turnCheck: path.turnCheck, index: i + 1)
        }
        return checks
    }

    /// The relayed join paths: each `turns:` URL over TLS, each `turn:` URL over its `?transport=`, or over both
    /// UDP and TCP when it has none (browsers try both).
    static func relayPaths(_ target: DoctorTarget) -> [(uri: ServerURI, transport: TURNRelayConfiguration.Transport, turnCheck: String)] {
        var paths: [(ServerURI, TURNRelayConfiguration.Transport, String)] = []
        for (i, uri) in target.turnURLs.enumerated() {
            let check = String(format: "TU%03d", i + 1)
            if uri.scheme.isSecure {
                paths.append((uri, .tls, check))
            } else if let t = uri.transport {
                paths.append((uri, t == .tcp ? .tcp : .udp, check))
            } else {
                paths += [(uri, .udp, check), (uri, .tcp, check)]
            }
        }
        return paths
    }

    /// Conclusions that need more than one check: media that fails over UDP while ICE-TCP works is a warning
    /// (calls work, over TCP, with more delay under loss), not a failure.
    public static func review(_ results: [CheckResult]) -> [CheckResult] {
        let results = reviewRelayed(results)
        guard let udp = results.first(where: { $0.id == "J002" }), udp.status == .fail,
            let tcp = results.first(where: { $0.id == "J003" }), tcp.status == .pass
        else { return results }
        var outcome = udp.outcome
        outcome.status = .warn
        outcome.message = "UDP failed but ICE-TCP works, so calls fall back to TCP (more delay under loss): " + outcome.message
        return results.map { $0.id == udp.id ? $0.with(outcome) : $0 }
    }

    /// Direct media fails both ways but a relay carries it: calls work only through TURN. Both direct checks become
    /// warnings that say so (the relay adds a hop and depends on the TURN server).
    static func reviewRelayed(_ results: [CheckResult]) -> [CheckResult] {
        guard let udp = results.first(where: { $0.id == "J002" }), udp.status == .fail,
            let tcp = results.first(where: { $0.id == "J003" }), tcp.status == .fail,
            let relayed = results.first(where: { $0.id.hasPrefix("JT") && $0.status == .pass })
        else { return results }
        // The RTC port checks that failed said the same thing from the outside.
        let softened: Set<String> = ["J002", "J003", "PT001", "PT002"]
        return results.map { result in
            guard softened.contains(result.id), result.status == .fail else { return result }
            var outcome = result.outcome
            outcome.status = .warn
            outcome.message = "TURN required: direct media fails, calls work only through the relay (\(relayed.id)): " + outcome.message
            return result.with(outcome)
        }
    }

    static func configValid(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("CFG001", "The configuration is valid", severity: .critical) { _ in
            let file = target.configFile ?? "callsctl.toml"
            let errors = target.configDiagnostics.filter { $0.severity == .error }
            let warnings = target.configDiagnostics.filter { $0.severity == .warning }
            let evidence: [(String, EvidenceValue)] = [
                ("file", .string(file)), ("errors", .int(errors.count)), ("warnings", .int(warnings.count)),
            ]
            let fixes = target.configDiagnostics.compactMap { d in d.fix.map { "\(d.file.map { "\($0)\(d.line.map { ":\($0)" } ?? "")" } ?? file): \($0)" } }
            if !errors.isEmpty {
                return .fail(
                    "\(errors.count) error\(errors.count == 1 ? "" : "s"), the first: \(errors[0].description)", evidence: evidence,
                    fix: fixes + ["Check it with: callsctl config validate \(file)"])
            }
            if !warnings.isEmpty {
                return .warn("\(file): \(warnings[0].description)", evidence: evidence, fix: fixes)
            }
            return .pass("\(file) is valid", evidence: evidence)
        }
    }

    // MARK: The server itself (--role server)

    static func localPorts(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("SRV001", "RTC and API ports can be bound, or are held by the media server", severity: .critical) {
            _ in
            let ports = [
                PortsCheck.Port(.udp, target.rtcUDPPort), PortsCheck.Port(.tcp, target.rtcTCPPort),
                PortsCheck.Port(.tcp, target.apiURL?.port ?? 8045),
            ]
            let results = await blocking { PortsCheck.local(ports) }
            var evidence: [(String, EvidenceValue)] = []
            var problems: [String] = []
            for r in results {
                evidence.append((r.port.label, .string(r.state.rawValue + (r.holder.map { " (\($0))" } ?? ""))))
                switch r.state {
                case .free: break
                case .inUse:
                    let holder = r.holder ?? "another process"
                    if !holder.contains("callsctl") && !holder.contains("rtcd") && !holder.contains("mattermost") {
                        problems.append("\(r.port.label) is held by \(holder)")
                    }
                default: problems.append("\(r.port.label): \(r.state.rawValue) \(r.detail)")
                }
            }
            if problems.isEmpty { return .pass("every port is free or held by the media server", evidence: evidence) }
            return .fail(
                problems.joined(separator: "; "), evidence: evidence,
                fix: ["Stop what holds the port (see `callsctl ports check --local`) or move the media server: [rtc] ice_port_udp / ice_port_tcp and [api.http] listen_address in callsctl.toml"])
        }
    }

    static func udpBuffers() -> DoctorCheck {
        DoctorCheck("SRV002", "UDP socket buffers are large enough for media", severity: .minor) { _ in
            let wanted = 16 << 20
            var evidence: [(String, EvidenceValue)] = []
            var small: [String] = []
            for name in ["rmem_max", "wmem_max"] {
                let text = (try? String(contentsOfFile: "/proc/sys/net/core/\(name)", encoding: .utf8)) ?? ""
                let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                evidence.append(("net.core.\(name)", .int(value)))
                if value < wanted { small.append("net.core.\(name)") }
            }
            if small.isEmpty { return .pass("net.core.rmem_max and wmem_max are at least 16 MiB", evidence: evidence) }
            return .warn(
                "\(small.joined(separator: " and ")) below 16 MiB: bursts of media may be dropped under load",
                evidence: evidence,
                fix: [
                    "sysctl -w net.core.rmem_max=16777216 net.core.wmem_max=16777216, and keep it in /etc/sysctl.d/ (`callsctl config generate systemd` writes that drop-in)"
                ])
        }
    }

    /// The address clients must send media to, as a STUN server outside sees this host, against the ICE host
    /// override: behind NAT without an override, clients are handed a private address and media never arrives.
    static func publicAddress(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("SRV003", "The ICE host override matches this host's public address", severity: .critical) {
            deadline in
            guard let uri = target.stunURLs.first else {
                return CheckOutcome(
                    .skip, "no --stun-url: a STUN server outside this network is needed to learn the public address")
            }
            var options = STUNProbe.Options()
            options.count = 2
            options.timeout = min(deadline - .now, .seconds(5))
            let probe = STUNProbe(uri: uri, options: options)
            let report = await blocking { probe.run() }
            guard let mapped = report.mappedAddressForReport?.ipString else {
                return .fail(
                    "\(uri) did not tell this host its public address: \(report.message)",
                    fix: ["Check that \(uri) is reachable from the media host (UDP \(uri.port))"])
            }
            let local = LocalAddresses.ipv4()
            var evidence: [(String, EvidenceValue)] = [
                ("publicAddress", .string(mapped)), ("localAddresses", .string(local.joined(separator: ","))),
            ]
            let line = "[rtc] ice_host_override = \"\(mapped)\" in callsctl.toml (rtcd: RTCD_RTC_ICEHOSTOVERRIDE=\(mapped); Mattermost plugin: ICE Host Override)"
            guard let override = target.mediaHost else {
                if local.contains(mapped) {
                    return .pass("this host has its public address \(mapped) on an interface: no override needed", evidence: evidence)
                }
                return .fail(
                    "behind NAT: \(uri) sees this host as \(mapped), but no interface has that address (\(local.joined(separator: ", "))) and no ICE host override is set, so clients would be sent a private address",
                    evidence: evidence, fix: ["Set the ICE host override to the public address: \(line)"])
            }
            evidence.append(("iceHostOverride", .string(override)))
            let resolved = await blocking { (try? Resolver.resolve(host: override, port: 0))?.map(\.ipString) ?? [] }
            if resolved.contains(mapped) {
                return .pass("the ICE host override \(override) is the public address \(mapped)", evidence: evidence)
            }
            return .fail(
                "the ICE host override \(override)\(resolved.isEmpty || resolved == [override] ? "" : " (\(resolved.joined(separator: ", ")))") is not this host's public address \(mapped) as \(uri) sees it",
                evidence: evidence, fix: ["Make the override the public address: \(line)"])
        }
    }

    /// `/metrics` and the admin API belong on loopback or a private network: the API answering on an address of
    /// this host other than loopback means anyone who reaches that address reads the metrics (and can try the
    /// admin key), unless a firewall in front drops the port.
    static func apiExposure(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("SRV004", "The API port does not expose /metrics and the admin API beyond loopback", severity: .major) {
            deadline in
            let port = target.apiURL?.port ?? 8045
            let addresses = LocalAddresses.ipv4().filter { !$0.hasPrefix("127.") }
            var exposed: [String] = []
            for address in addresses {
                guard let url = try? ProbeURL(parsing: "http://\(address):\(port)/metrics") else { continue }
                let r = await blocking {
                    try? HTTPProbe.request(url, caFile: target.caFile, timeout: min(deadline - .now, .seconds(2)))
                }
                if let r, r.status == 200, r.bodyText.contains("callsctl_") || r.bodyText.contains("rtcd_") {
                    exposed.append("\(address):\(port)")
                }
            }
            let evidence: [(String, EvidenceValue)] = [
                ("checkedAddresses", .string(addresses.joined(separator: ","))), ("exposed", .string(exposed.joined(separator: ","))),
            ]
            if exposed.isEmpty {
                return .pass(
                    addresses.isEmpty
                        ? "this host has no address but loopback" : "/metrics does not answer on \(addresses.joined(separator: ", ")) port \(port)",
                    evidence: evidence)
            }
            return .warn(
                "/metrics and the admin API answer on \(exposed.joined(separator: ", ")): anyone who reaches that address reads the metrics and can try admin keys, unless a firewall drops TCP \(port) from outside",
                evidence: evidence,
                fix: [
                    "Bind the API to loopback behind the proxy: [api.http] listen_address = \"127.0.0.1:\(port)\" (rtcd: RTCD_API_HTTP_LISTENADDRESS), or allow TCP \(port) only from the Mattermost server (`callsctl config generate firewall`)"
                ])
        }
    }

    // MARK: The API

    static func apiVersion(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("API001", "Media server API answers /version", severity: .critical) { deadline in
            guard let api = target.apiURL else {
                return CheckOutcome(.skip, "no --url given: the API checks and the join test need the media server's API URL")
            }
            let url = api.with(path: "/version")
            let result = await blocking { Result { () throws(ProbeNetworkError) in
                try HTTPProbe.request(url, caFile: target.caFile, timeout: min(deadline - .now, .seconds(10))) } }
            switch result {
            case .success(let r) where r.status == 200:
                let version = jsonField("version", in: r.bodyText) ?? jsonField("buildVersion", in: r.bodyText) ?? "?"
                return .pass(
                    "\(url) answered in \(milliseconds(r.elapsed)) ms: version \(version)",
                    evidence: [("url", .string("\(url)")), ("version", .string(version)), ("ms", .int(milliseconds(r.elapsed)))])
            case .success(let r):
                return .fail(
                    "\(url) answered HTTP \(r.status), not the media server's /version",
                    evidence: [("status", .int(r.status))],
                    fix: ["Point --url at the media server's API (callsctl serve or rtcd, TCP 8045), not at a proxy or another service"])
            case .failure(let e):
                return .fail(
                    "\(url): \(e.message)", evidence: [("error", .string(kindName(e.kind)))],
                    fix: apiFix(e, api))
            }
        }
    }

    static func apiFix(_ e: ProbeNetworkError, _ api: ProbeURL) -> [String] {
        switch e.kind {
        case .refused:
            return [
                "Nothing listens on \(api.host):\(api.port): start the media server (`callsctl serve` or rtcd), or fix the port ([api.http] listen_address)"
            ]
        case .timeout:
            return ["Open TCP \(api.port) from here to \(api.host) in the firewall (the media server's API port)"]
        case .resolve: return ["\(api.host) does not resolve: fix DNS or use the address"]
        case .tls: return ["Fix the TLS certificate of \(api.host), or pass --ca-file with the CA that signed it"]
        default: return ["Check that \(api) is the media server's API"]
        }
    }

    static func apiReady(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("API002", "Media server is ready for calls (/readyz)", severity: .critical, dependsOn: ["API001"]) {
            deadline in
            guard let api = target.apiURL else { return CheckOutcome(.skip, "no --url given") }
            let url = api.with(path: "/readyz")
            let result = await blocking { Result { () throws(ProbeNetworkError) in
                try HTTPProbe.request(url, caFile: target.caFile, timeout: min(deadline - .now, .seconds(10))) } }
            switch result {
            case .success(let r) where r.status == 200: return .pass("ready", evidence: [("status", .int(200))])
            case .success(let r) where r.status == 404:
                return .warn(
                    "no /readyz (rtcd has none); readiness not known", evidence: [("status", .int(404))],
                    fix: ["Nothing to fix for rtcd; for callsctl serve, upgrade"])
            case .success(let r):
                return .fail(
                    "/readyz answered \(r.status): \(r.bodyText.prefix(120))", evidence: [("status", .int(r.status))],
                    fix: ["The media server is draining or its media transport is not bound; see its log, or restart it"])
            case .failure(let e): return .fail("\(url): \(e.message)", fix: apiFix(e, api))
            }
        }
    }

    static func clock(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("CLK001", "This clock agrees with the media server's", severity: .major, dependsOn: ["API001"]) {
            deadline in
            guard let api = target.apiURL else { return CheckOutcome(.skip, "no --url given") }
            let result = await blocking { Result { () throws(ProbeNetworkError) in
                try HTTPProbe.request(api.with(path: "/version"), caFile: target.caFile, timeout: min(deadline - .now, .seconds(10)))
            } }
            guard case .success(let r) = result, let server = r.serverDate else {
                return CheckOutcome(.skip, "the server sent no Date header to compare with")
            }
            // The Date header has a resolution of one second, and the request took some time.
            let skew = Date().timeIntervalSince(server) - r.elapsed.seconds / 2
            let evidence: [(String, EvidenceValue)] = [("skewSeconds", .double(skew))]
            if abs(skew) <= 30 { return .pass(String(format: "within %.0f s", abs(skew)), evidence: evidence) }
            return .fail(
                String(format: "this clock is %.0f s %@ the media server's", abs(skew), skew > 0 ? "ahead of" : "behind"),
                evidence: evidence,
                fix: ["Synchronise both clocks with NTP (timedatectl set-ntp true): TURN credentials and join tokens carry expiry times"])
        }
    }

    // MARK: Ports

    static func rtcPort(_ target: DoctorTarget, _ proto: PortsCheck.Proto) -> DoctorCheck {
        let id = proto == .udp ? "PT001" : "PT002"
        let number = proto == .udp ? target.rtcUDPPort : target.rtcTCPPort
        return DoctorCheck(id, "RTC port \(number)/\(proto) reachable", severity: proto == .udp ? .major : .minor)
        { deadline in
            guard let host = target.mediaHost ?? target.apiURL?.host else {
                return CheckOutcome(.skip, "no media host: give --url or --ice-host-override")
            }
            let port = PortsCheck.Port(proto, number)
            let result = await blocking { Result { () throws(ProbeNetworkError) in
                try PortsCheck.remote(host: host, ports: [port], timeout: min(deadline - .now, .seconds(3)))
            } }
            let evidence: [(String, EvidenceValue)] = [("host", .string(host)), ("port", .string(port.label))]
            switch result {
            case .failure(let e): return .fail("\(host): \(e.message)", evidence: evidence, fix: ["Fix the name or address of the media host"])
            case .success(let results):
                guard let r = results.first else { return CheckOutcome(.error, "no result") }
                let ev = evidence + [("state", .string(r.state.rawValue)), ("method", .string(r.method))]
                switch r.state {
                case .open: return .pass("\(host) \(port.label) is open (\(r.method))", evidence: ev)
                case .openOrFiltered:
                    return .pass("\(host) \(port.label) did not refuse (UDP cannot tell open from filtered; the join test decides)", evidence: ev)
                case .closed:
                    return .fail(
                        "\(host) \(port.label) is closed (\(r.method)): nothing listens there", evidence: ev,
                        fix: ["Start the media server, or publish \(port.label) (Docker: -p \(number):\(number)/\(proto))"])
                default:
                    return .fail(
                        "\(host) \(port.label) is \(r.state.rawValue) (\(r.method))", evidence: ev,
                        fix: ["Open \(port.label) from the clients to \(host) in every firewall and security group on the way"])
                }
            }
        }
    }

    // MARK: STUN and TURN

    static func stun(_ uri: ServerURI, index: Int) -> DoctorCheck {
        DoctorCheck(String(format: "ST%03d", index), "STUN server \(uri) answers", severity: .major) { deadline in
            var options = STUNProbe.Options()
            options.count = 2
            options.timeout = min(deadline - .now, .seconds(5))
            let probe = STUNProbe(uri: uri, options: options)
            let report = await blocking { probe.run() }
            var evidence: [(String, EvidenceValue)] = []
            if let mapped = report.mappedAddressForReport { evidence.append(("mappedAddress", .string("\(mapped)"))) }
            if let rtt = report.rtts.min() { evidence.append(("rttMs", .int(milliseconds(rtt)))) }
            if report.verdict == .ok { return .pass("answered: \(report.message)", evidence: evidence) }
            return .fail(
                "\(uri): \(report.message)", evidence: evidence,
                fix: ["Check that \(uri) runs and that UDP \(uri.port) is open to it, or remove it from the ICE servers (ice_servers / --stun-url)"])
        }
    }

    static func turn(_ uri: ServerURI, target: DoctorTarget, index: Int) -> DoctorCheck {
        DoctorCheck(String(format: "TU%03d", index), "TURN server \(uri) allocates and relays", severity: .major) {
            deadline in
            guard let secret = target.turnSecret else {
                return CheckOutcome(.skip, "no --turn-secret-file: TURN needs the shared secret to make credentials")
            }
            var options = TURNProbe.Options(credentials: .rest(secret: secret, user: "callsctl-doctor", ttl: 600))
            options.count = 5
            options.timeout = min(deadline - .now, .seconds(10))
            options.caFile = target.caFile
            let probe = TURNProbe(uri: uri, options: options)
            let report = await blocking { probe.run() }
            var evidence: [(String, EvidenceValue)] = [("transport", .string(report.transport.rawValue))]
            if let relayed = report.relayedAddress { evidence.append(("relayedAddress", .string("\(relayed)"))) }
            if report.roundTrip.sent > 0 {
                evidence.append(("lossPercent", .double(report.roundTrip.lossPercent)))
                if let rtt = report.roundTrip.averageRTT { evidence.append(("rttMs", .int(milliseconds(rtt)))) }
            }
            if let problem = report.credentialProblem { evidence.append(("credentialProblem", .string(problem.rawValue))) }
            if report.ok {
                if !report.warnings.isEmpty {
                    return .warn(report.warnings.joined(separator: "; "), evidence: evidence, fix: report.warnings)
                }
                return .pass(report.message, evidence: evidence)
            }
            var fix: [String]
            switch report.credentialProblem {
            case .wrongSecret?, .wrongPassword?:
                fix = ["Make the TURN secret agree: static-auth-secret in turnserver.conf and --turn-secret-file / turn_secret on the media server"]
            case .expired?: fix = ["The credentials expired: raise turn credentials_expiration_minutes or check the clock"]
            case .clockSkew?: fix = ["The TURN server's clock is far off: synchronise it with NTP"]
            case nil:
                fix =
                    report.relayedAddress != nil
                    ? ["The allocation works but nothing came back through the relay: open the TURN relay port range (min-port..max-port in turnserver.conf) in the TURN host's firewall"]
                    : ["Check that \(uri) runs and its port is open from here"]
            }
            return .fail(report.message, evidence: evidence, fix: fix)
        }
    }

    // MARK: The join test

    /// A join token: `--token-file`, else one signed with the token secret, else one minted by the media server's
    /// admin API with `--admin-key-file` (`POST /api/v1/tokens`).
    static func token(_ target: DoctorTarget, channel: ChannelID, deadline: ContinuousClock.Instant) async -> String? {
        if let token = target.token { return token }
        if let secret = target.tokenSecret {
            return JoinTokenSigner(secret: secret).sign(
                JoinTokenClaims(channel: channel, user: "callsctl-doctor", role: .user, ttl: 600))
        }
        guard let key = target.adminKey, let api = target.apiURL else { return nil }
        let url = api.with(path: "/api/v1/tokens?channel=\(channel.rawValue)&user=callsctl-doctor&ttl=600")
        let response = await blocking {
            try? HTTPProbe.request(
                url, method: "POST", headers: [("Authorization", "Bearer \(key)"), ("Content-Length", "0")],
                caFile: target.caFile, timeout: min(deadline - .now, .seconds(10)))
        }
        guard let response, response.status == 201 else { return nil }
        return jsonField("token", in: response.bodyText)
    }

    static func callJoin(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("J001", "A call may start in the channel", severity: .critical, dependsOn: ["API002"]) { deadline in
            guard let channel = target.channel, let api = target.apiURL else {
                return CheckOutcome(.skip, "no --channel given: the channel policy was not checked")
            }
            guard let token = await token(target, channel: channel, deadline: deadline) else {
                return CheckOutcome(.skip, "no --token-file, --token-secret-file or --admin-key-file (or the admin API refused to mint a token): cannot join")
            }
            return await blocking {
                let signaling = SignalingProbe(url: api.webSocket(path: "/ws"), caFile: target.caFile, deadline: deadline)
                defer { signaling.leave() }
                do {
                    let joined = try signaling.join(token: token, channel: channel.rawValue, echo: false)
                    return .pass(
                        "joined the call in \(channel) as \(joined.user ?? "callsctl-doctor")",
                        evidence: [("channel", .string(channel.rawValue))])
                } catch let refused as SignalingProbe.Refused where refused.code == "call_not_allowed" {
                    return .fail(
                        "the media server refused to start a call in \(channel): \(refused.message)",
                        evidence: [("error", .string(refused.code))],
                        fix: ["callsctl channel enable \(channel)   (or, with test mode off, callsctl channel reset \(channel))"])
                } catch let refused as SignalingProbe.Refused {
                    return .fail(
                        "join refused (\(refused.code)): \(refused.message)", evidence: [("error", .string(refused.code))],
                        fix: [refused.code == "bad_token" ? "Make a new token: callsctl token create --channel \(channel) --user NAME" : refused.message])
                } catch {
                    return .fail("\(error)", fix: ["Check that \(api.webSocket(path: "/ws")) reaches the media server's signaling"])
                }
            }
        }
    }

    static func media(_ target: DoctorTarget, over transport: JoinTest.Path) -> DoctorCheck {
        let isUDP: Bool
        if case .udp = transport { isUDP = true } else { isUDP = false }
        let id = isUDP ? "J002" : "J003"
        let port = isUDP ? target.rtcUDPPort : target.rtcTCPPort
        let title = isUDP ? "Media flows both ways over UDP \(port)" : "Media flows both ways over ICE-TCP \(port)"
        return DoctorCheck(id, title, severity: isUDP ? .major : .minor, dependsOn: ["API002"]) { deadline in
            guard let api = target.apiURL else { return CheckOutcome(.skip, "no --url given") }
            let channel = target.channel ?? echoChannel
            guard let token = await token(target, channel: channel, deadline: deadline) else {
                return CheckOutcome(
                    .skip, "no --token-file, --token-secret-file or --admin-key-file (or the admin API refused to mint a token): the join test needs a token (callsctl token create)")
            }
            let test = JoinTest(
                url: api.webSocket(path: "/ws"), token: token, channel: channel.rawValue, path: transport,
                packets: target.mediaPackets, caFile: target.caFile)
            let proto = transport.label.lowercased()
            let result = await test.run(deadline: deadline)
            switch result {
            case .success(let m):
                return judge(
                    m,
                    silentFix: "Media leaves the server but does not return: check the firewall's outbound rules on \(port)/\(proto)")
            case .failure(let failure):
                return .fail(
                    failure.message, evidence: [("stage", .string(failure.stage))],
                    fix: failure.stage == "ice"
                        ? [
                            isUDP
                                ? "Open UDP \(port) from the clients to the media server, and check that the ICE host override is the address clients reach"
                                : "Open TCP \(port) from the clients to the media server (ICE-TCP fallback)"
                        ]
                        : ["See the message: the join test stopped at \(failure.stage)"])
            }
        }
    }

    /// Pass, warn (loss above 10 %) or fail (nothing came back) for a measured media path.
    static func judge(_ m: JoinTest.Measurement, silentFix: String) -> CheckOutcome {
        var evidence: [(String, EvidenceValue)] = [
            ("transport", .string(m.transport)), ("remote", .string(m.remote)), ("handshakeMs", .int(m.handshakeMs)),
            ("sent", .int(m.sent)), ("received", .int(m.received)), ("lossPercent", .double(m.lossPercent)),
            ("rttMs", .double(m.rttMs)),
        ]
        if let server = m.relayServer { evidence.append(("relayServer", .string(server))) }
        if let relayed = m.relayedAddress { evidence.append(("relayedAddress", .string(relayed))) }
        if let problem = m.relayCertificateProblem { evidence.append(("certificateProblem", .string(problem))) }
        let via = m.relayServer.map { "relayed through \($0) (\(m.relayedAddress ?? "?"))" } ?? "\(m.transport) via \(m.remote)"
        let summary = String(
            format: "%@: handshake %d ms, %d of %d echoed, loss %.1f %%, RTT %.1f ms", via, m.handshakeMs, m.received,
            m.sent, m.lossPercent, m.rttMs)
        if m.received == 0 {
            return .fail("connected but nothing came back: \(summary)", evidence: evidence, fix: [silentFix])
        }
        if m.lossPercent > 10 {
            return .warn(summary, evidence: evidence, fix: ["Heavy loss on the path to the media server: check the network"])
        }
        if let problem = m.relayCertificateProblem {
            return .warn(
                "\(summary); but browsers will refuse the TURN server's certificate: \(problem)", evidence: evidence,
                fix: ["Give the TURN server a certificate for its name from a public CA (coturn cert= / pkey=)"])
        }
        return .pass(summary, evidence: evidence)
    }

    static func relayedMedia(
        _ target: DoctorTarget, uri: ServerURI, transport: TURNRelayConfiguration.Transport, turnCheck: String, index: Int
    ) -> DoctorCheck {
        let label = transport.rawValue.uppercased()
        return DoctorCheck(
            String(format: "JT%03d", index), "Media flows both ways relayed through \(uri.scheme.rawValue):\(uri.host):\(uri.port) over \(label)",
            severity: .major, dependsOn: ["API002", turnCheck]
        ) { deadline in
            guard let api = target.apiURL else { return CheckOutcome(.skip, "no --url given") }
            guard let secret = target.turnSecret else {
                return CheckOutcome(.skip, "no --turn-secret-file: a relayed join needs TURN credentials")
            }
            let channel = target.channel ?? echoChannel
            guard let token = await token(target, channel: channel, deadline: deadline) else {
                return CheckOutcome(.skip, "no --token-file, --token-secret-file or --admin-key-file: the join test needs a token")
            }
            let resolved = await blocking { Result { () throws(ProbeNetworkError) in try Resolver.resolve(host: uri.host, port: uri.port) } }
            guard case .success(let addresses) = resolved, let address = addresses.first,
                let server = try? SocketAddress(ipAddress: address.ipString, port: Int(uri.port))
            else {
                return .fail("cannot resolve \(uri.host)", fix: ["Fix the TURN server's name in the ICE servers (--turn-url)"])
            }
            let credentials = TURNCredentials.restCredentials(
                secret: secret, user: "callsctl-doctor", expiry: Date().addingTimeInterval(600))
            var relay = TURNRelayConfiguration(
                server: server, transport: transport, username: credentials.username, password: credentials.password)
            relay.serverName = uri.host
            relay.caFile = target.caFile
            let test = JoinTest(
                url: api.webSocket(path: "/ws"), token: token, channel: channel.rawValue, path: .relayed(relay),
                packets: target.mediaPackets, caFile: target.caFile)
            switch await test.run(deadline: deadline) {
            case .success(let m):
                return judge(
                    m,
                    silentFix: "The relay answers but media does not come back: open the TURN relay port range (coturn min-port..max-port, UDP) between the TURN server and the media server")
            case .failure(let failure):
                let fix: String
                switch failure.stage {
                case "relay":
                    fix = "The TURN server refused the relay (see the message): check its credentials (static-auth-secret), quotas and denied-peer-ip rules"
                case "ice":
                    fix = "The relay works but the media server did not answer through it: let the TURN host reach the media server's UDP \(target.rtcUDPPort) (and coturn's denied-peer-ip must not cover it)"
                default: fix = "See the message: the relayed join stopped at \(failure.stage)"
                }
                return .fail(failure.message, evidence: [("stage", .string(failure.stage))], fix: [fix])
            }
        }
    }
}

/// Whole milliseconds of a duration (reports and evidence).
public func milliseconds(_ d: Duration) -> Int {
    let c = d.components
    return Int(c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

func kindName(_ kind: ProbeNetworkError.Kind) -> String {
    switch kind {
    case .resolve: "resolve"
    case .refused: "refused"
    case .unreachable: "unreachable"
    case .timeout: "timeout"
    case .tls: "tls"
    case .closed: "closed"
    case .other: "other"
    }
}

/// A top-level string field of a small JSON object.
func jsonField(_ name: String, in text: String) -> String? {
    guard let data = text.data(using: .utf8),
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    return object[name] as? String
}
