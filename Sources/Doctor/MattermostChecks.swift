import Foundation
import Probes

/// The Mattermost side of a deployment (`--site-url`): the site itself (browsers capture a microphone only on HTTPS
/// with a trusted certificate), the Calls plugin, and the ICE servers the plugin hands to clients.
extension DoctorChecks {
    static let pluginPath = "/plugins/com.mattermost.calls"

    static func mattermost(_ target: DoctorTarget) -> [DoctorCheck] {
        guard target.siteURL != nil else { return [] }
        return [site(target), plugin(target), pluginICEServers(target)]
    }

    static func get(_ url: ProbeURL, _ target: DoctorTarget, deadline: ContinuousClock.Instant, token: String? = nil) async
        -> Result<HTTPProbeResponse, ProbeNetworkError>
    {
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        return await blocking {
            Result { () throws(ProbeNetworkError) in
                try HTTPProbe.request(url, headers: headers, caFile: target.caFile, timeout: min(deadline - .now, .seconds(10)))
            }
        }
    }

    static func site(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("MM001", "Mattermost site answers over trusted HTTPS", severity: .critical) { deadline in
            guard let site = target.siteURL else { return CheckOutcome(.skip, "no --site-url given") }
            let url = site.with(path: "/api/v4/system/ping")
            switch await get(url, target, deadline: deadline) {
            case .failure(let e):
                return .fail(
                    "\(url): \(e.message)", evidence: [("error", .string(kindName(e.kind)))],
                    fix: ["Check the site URL (Mattermost's Site URL setting) and that \(site.host):\(site.port) is reachable from here"])
            case .success(let r):
                var evidence: [(String, EvidenceValue)] = [("status", .int(r.status)), ("ms", .int(milliseconds(r.elapsed)))]
                if let tls = r.tls {
                    evidence += [("tlsVersion", .string(tls.protocolVersion)), ("certificateTrusted", .bool(tls.verified))]
                    if let subject = tls.subject { evidence.append(("certificateSubject", .string(subject))) }
                }
                guard r.status == 200, jsonField("status", in: r.bodyText) == "OK" else {
                    return .fail(
                        "\(url) answered HTTP \(r.status), not Mattermost's ping", evidence: evidence,
                        fix: ["Point --site-url at the Mattermost site (its Site URL), not at the media server or a proxy's error page"])
                }
                guard site.secure else {
                    return .warn(
                        "the site answers, but over plain HTTP: browsers only let a page capture the microphone over HTTPS (or on localhost)",
                        evidence: evidence, fix: ["Serve Mattermost over HTTPS (a TLS certificate on the proxy in front of it)"])
                }
                if let tls = r.tls, !tls.verified {
                    evidence.append(("certificateProblem", .string(tls.verifyError ?? "untrusted")))
                    return .fail(
                        "browsers will refuse the site's certificate: \(tls.verifyError ?? "not trusted")", evidence: evidence,
                        fix: ["Give \(site.host) a certificate for that name from a public CA, and renew it before it expires (or pass --ca-file for a private CA)"])
                }
                return .pass("Mattermost answers on \(site) (\(r.tls?.protocolVersion ?? "TLS"), trusted certificate)", evidence: evidence)
            }
        }
    }

    static func plugin(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("MM002", "The Calls plugin is installed and enabled", severity: .critical, dependsOn: ["MM001"]) {
            deadline in
            guard let site = target.siteURL else { return CheckOutcome(.skip, "no --site-url given") }
            let url = site.with(path: pluginPath + "/version")
            switch await get(url, target, deadline: deadline) {
            case .failure(let e): return .fail("\(url): \(e.message)", fix: ["Check that \(site) is reachable"])
            case .success(let r) where r.status == 200:
                let version = jsonField("version", in: r.bodyText) ?? "?"
                return .pass("com.mattermost.calls \(version)", evidence: [("version", .string(version))])
            case .success(let r):
                return .fail(
                    "\(url) answered HTTP \(r.status): the Calls plugin is not installed or not enabled",
                    evidence: [("status", .int(r.status))],
                    fix: ["mmctl plugin enable com.mattermost.calls   (System Console > Plugins > Calls > Enable)"])
            }
        }
    }

    /// The ICE servers the plugin gives clients, against the TURN and STUN servers this run checked.
    static func pluginICEServers(_ target: DoctorTarget) -> DoctorCheck {
        DoctorCheck("MM003", "The Calls plugin hands clients the TURN servers that were checked", severity: .major, dependsOn: ["MM002"]) {
            deadline in
            guard let site = target.siteURL else { return CheckOutcome(.skip, "no --site-url given") }
            guard let token = target.siteToken else {
                return CheckOutcome(.skip, "no --site-token-file: the plugin's client config needs a Mattermost session or access token")
            }
            let url = site.with(path: pluginPath + "/config")
            let result = await get(url, target, deadline: deadline, token: token)
            guard case .success(let r) = result else {
                if case .failure(let e) = result { return .fail("\(url): \(e.message)", fix: ["Check that \(site) is reachable"]) }
                return CheckOutcome(.error, "no result")
            }
            guard r.status == 200 else {
                return .fail(
                    "\(url) answered HTTP \(r.status)", evidence: [("status", .int(r.status))],
                    fix: [r.status == 401 ? "The access token was refused: make a new one (Profile > Security > Personal Access Tokens)" : "Check the Calls plugin's log"])
            }
            let offered = pluginURLs(r.body)
            let evidence: [(String, EvidenceValue)] = [("iceServers", .string(offered.joined(separator: ",")))]
            let offeredTURN = offered.filter { $0.hasPrefix("turn:") || $0.hasPrefix("turns:") }
            let checked = Set(target.turnURLs.map { normalized($0.description) })
            let unchecked = offeredTURN.filter { !checked.contains(normalized($0)) }
            let untold = target.turnURLs.map(\.description).filter { c in !offeredTURN.contains { normalized($0) == normalized(c) } }
            if offeredTURN.isEmpty && !target.turnURLs.isEmpty {
                return .fail(
                    "the plugin hands clients no TURN server, so \(target.turnURLs.map(\.description).joined(separator: ", ")) is never used: clients behind strict firewalls cannot join",
                    evidence: evidence,
                    fix: ["Add the TURN URLs to the plugin's ICE Servers Configurations (ICEServersConfigs), e.g. [{\"urls\":[\"\(target.turnURLs[0])\"]}], and set TURNStaticAuthSecret"])
            }
            if !unchecked.isEmpty {
                return .warn(
                    "the plugin hands clients \(unchecked.joined(separator: ", ")), which this run did not check", evidence: evidence,
                    fix: ["Run the doctor with --turn-url \(unchecked[0]) (and --turn-secret-file) to prove it relays"])
            }
            if !untold.isEmpty {
                return .warn(
                    "\(untold.joined(separator: ", ")) works but the plugin does not hand it to clients", evidence: evidence,
                    fix: ["Add \(untold[0]) to the plugin's ICEServersConfigs, or drop it"])
            }
            return .pass("clients get \(offered.isEmpty ? "no ICE servers" : offered.joined(separator: ", "))", evidence: evidence)
        }
    }

    /// Every URL in the plugin's client config: `ICEServersConfigs` (a list of `{urls: [...]}`, or a JSON string of
    /// one, as older plugins send) and `ICEServers` (a list of strings).
    static func pluginURLs(_ body: [UInt8]) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return [] }
        var urls: [String] = []
        var configs = object["ICEServersConfigs"]
        if let text = configs as? String, let data = text.data(using: .utf8) { configs = try? JSONSerialization.jsonObject(with: data) }
        for entry in configs as? [[String: Any]] ?? [] {
            if let list = entry["urls"] as? [String] { urls += list } else if let one = entry["urls"] as? String { urls.append(one) }
        }
        urls += object["ICEServers"] as? [String] ?? []
        var seen = Set<String>()
        return urls.filter { seen.insert($0).inserted }
    }

    /// A TURN/STUN URL for comparison: lower case, default ports made explicit.
    static func normalized(_ text: String) -> String {
        guard let uri = try? ServerURI(parsing: text, defaultScheme: .turn) else { return text.lowercased() }
        return uri.description.lowercased()
    }
}
