import Foundation
import Testing

@testable import CallsConfig

/// `crossCheckBundle`: a generated bundle agrees with itself; each kind of edit that breaks the agreement
/// is reported once, naming both files and lines, with the exact message.
@Suite struct BundleCheckTests {
    final class Bundle {
        let dir: String
        init(_ raw: DeploymentInputs.Raw = GoldenInputs.raw()) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("bundle-\(UUID().uuidString)").path
            try BundleWriter.write(GenerateTarget.bundle.files(try DeploymentInputs(raw)), to: dir, force: false)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func text(_ file: String) throws -> String { try String(contentsOfFile: "\(dir)/\(file)", encoding: .utf8) }

        /// Replaces the first occurrence of `old` (which must be there) and returns its 1-based line.
        @discardableResult
        func edit(_ file: String, _ old: String, _ new: String) throws -> Int {
            let content = try text(file)
            let range = try #require(content.range(of: old), "\(old) not in \(file)")
            try content.replacingCharacters(in: range, with: new).write(toFile: "\(dir)/\(file)", atomically: true, encoding: .utf8)
            return content[..<range.lowerBound].filter { $0 == "\n" }.count + 1
        }

        func line(_ file: String, _ containing: String) throws -> Int {
            let lines = try text(file).split(separator: "\n", omittingEmptySubsequences: false)
            return try #require(lines.firstIndex { $0.contains(containing) }, "\(containing) not in \(file)") + 1
        }

        var messages: [String] { crossCheckBundle(directory: dir).map(\.message) }
    }

    @Test func aFreshBundleAgrees() throws {
        #expect(try Bundle().messages == [])
        var split = GoldenInputs.raw()
        split.turnDomain = "turn.example.com"
        split.nginxStream = true
        split.upstreamHost = "10.0.0.20"
        #expect(try Bundle(split).messages == [])
    }

    @Test func turnSecretMismatch() throws {
        let b = try Bundle()
        let n = try b.edit("coturn/turnserver.conf", "static-auth-secret=0f1e", "static-auth-secret=ffff")
        let ref = try b.line("rtcd/config.toml", "turn.static_auth_secret")
        let diags = crossCheckBundle(directory: b.dir)
        #expect(diags.map(\.message) == [
            "TURN secret differs between coturn/turnserver.conf:\(n) (static-auth-secret) and rtcd/config.toml:\(ref) (rtc.turn.static_auth_secret)."
        ])
        #expect(diags.first?.file == "coturn/turnserver.conf" && diags.first?.line == n && diags.first?.severity == .error)
        #expect(diags.first?.fix == "make coturn/turnserver.conf agree with rtcd/config.toml (secrets/secrets.env holds the generated secrets), or regenerate the bundle with --force")
        // The secret itself is never printed.
        #expect(!diags.first!.description.contains("0f1e2d3c"))
    }

    @Test func turnSecretMismatchInThePluginJSON() throws {
        let b = try Bundle()
        let n = try b.edit("mattermost/plugin-settings.json", "\"turnstaticauthsecret\": \"0f1e", "\"turnstaticauthsecret\": \"abcd")
        let ref = try b.line("coturn/turnserver.conf", "static-auth-secret=")
        #expect(b.messages == [
            "TURN secret differs between mattermost/plugin-settings.json:\(n) (turnstaticauthsecret) and coturn/turnserver.conf:\(ref) (static-auth-secret)."
        ])
    }

    @Test func mediaPortMismatchInThePlugin() throws {
        let b = try Bundle()
        let n = try b.edit("mattermost/plugin-settings.json", "\"udpserverport\": 8443", "\"udpserverport\": 9443")
        let ref = try b.line("rtcd/config.toml", "ice_port_udp")
        #expect(b.messages == ["media UDP port differs: mattermost/plugin-settings.json:\(n) (udpserverport) has 9443, rtcd/config.toml:\(ref) (rtc.ice_port_udp) has 8443."])
    }

    @Test func mediaPortMismatchInTheFirewall() throws {
        let b = try Bundle()
        let n = try b.edit("firewall/callsctl.nft", "tcp dport 8443 accept", "tcp dport 8444 accept")
        let ref = try b.line("rtcd/config.toml", "ice_port_tcp")
        #expect(b.messages == ["media TCP port differs: firewall/callsctl.nft:\(n) (rule \"media-tcp\") has 8444, rtcd/config.toml:\(ref) (rtc.ice_port_tcp) has 8443."])
    }

    @Test func mediaPortMismatchInTheCallsctlConfig() throws {
        let b = try Bundle()
        let n = try b.edit("callsctl/callsctl.toml", "ice_port_udp = 8443", "ice_port_udp = 8453")
        let ref = try b.line("rtcd/config.toml", "ice_port_udp")
        #expect(b.messages == ["media UDP port differs: callsctl/callsctl.toml:\(n) (rtc.ice_port_udp) has 8453, rtcd/config.toml:\(ref) (rtc.ice_port_udp) has 8443."])
    }

    @Test func apiPortMismatchInTheProxy() throws {
        let b = try Bundle()
        let n = try b.edit("nginx/callsctl.conf", "server 127.0.0.1:8045;", "server 127.0.0.1:8046;")
        let ref = try b.line("rtcd/config.toml", "http.listen_address")
        #expect(b.messages == ["API port differs: nginx/callsctl.conf:\(n) (upstream server) has 8046, rtcd/config.toml:\(ref) (api.http.listen_address) has 8045."])
    }

    @Test func mediaPortMismatchInTheNginxStream() throws {
        var raw = GoldenInputs.raw()
        raw.nginxStream = true
        raw.upstreamHost = "10.0.0.20"
        let b = try Bundle(raw)
        let n = try b.edit("nginx/callsctl-stream.conf", "listen 8443 udp", "listen 8000 udp")
        let ref = try b.line("rtcd/config.toml", "ice_port_udp")
        #expect(b.messages == ["media UDP port differs: nginx/callsctl-stream.conf:\(n) (listen (udp)) has 8000, rtcd/config.toml:\(ref) (rtc.ice_port_udp) has 8443."])
    }

    @Test func turnPortMismatchBetweenCoturnAndTheICEServers() throws {
        let b = try Bundle()
        let n = try b.edit("coturn/turnserver.conf", "listening-port=3478", "listening-port=3479")
        let ref = try b.line("rtcd/config.toml", "ice_servers")
        #expect(b.messages == ["TURN port differs: coturn/turnserver.conf:\(n) (listening-port) has 3479, rtcd/config.toml:\(ref) (rtc.ice_servers stun:calls.example.com:3478) has 3478."])
    }

    @Test func turnTLSPortMismatchInTheFirewall() throws {
        let b = try Bundle()
        let n = try b.edit("firewall/callsctl.nft", "tcp dport 5349 accept", "tcp dport 5350 accept")
        let ref = try b.line("coturn/turnserver.conf", "tls-listening-port=")
        #expect(b.messages == ["TURN TLS port differs: firewall/callsctl.nft:\(n) (rule \"turns\") has 5350, coturn/turnserver.conf:\(ref) (tls-listening-port) has 5349."])
    }

    @Test func apiPortMismatchInTheRTCDEnvironment() throws {
        let b = try Bundle()
        let n = try b.edit("rtcd/rtcd.env", "RTCD_API_HTTP_LISTENADDRESS=:8045", "RTCD_API_HTTP_LISTENADDRESS=:9045")
        let ref = try b.line("rtcd/config.toml", "http.listen_address")
        #expect(b.messages == ["API port differs: rtcd/rtcd.env:\(n) (RTCD_API_HTTP_LISTENADDRESS) has 9045, rtcd/config.toml:\(ref) (api.http.listen_address) has 8045."])
    }

    @Test func hostOverrideMismatchInTheKubernetesArguments() throws {
        let b = try Bundle()
        let n = try b.edit("kubernetes/callsctl.yaml", "- \"203.0.113.7\"", "- \"203.0.113.8\"")
        let ref = try b.line("rtcd/config.toml", "ice_host_override")
        #expect(b.messages == ["ICE host override differs: kubernetes/callsctl.yaml:\(n) (--ice-host-override) has 203.0.113.8, rtcd/config.toml:\(ref) (rtc.ice_host_override) has 203.0.113.7."])
    }

    @Test func turnSecretMismatchInTheKubernetesSecret() throws {
        let b = try Bundle()
        let n = try b.edit("kubernetes/callsctl.yaml", "turn-secret: \"0f1e", "turn-secret: \"9f1e")
        let ref = try b.line("coturn/turnserver.conf", "static-auth-secret=")
        #expect(b.messages == ["TURN secret differs between kubernetes/callsctl.yaml:\(n) (turn-secret) and coturn/turnserver.conf:\(ref) (static-auth-secret)."])
    }

    @Test func relayRangeMismatchInTheFirewall() throws {
        let b = try Bundle()
        let n = try b.edit("firewall/callsctl.nft", "udp dport 49152-65535", "udp dport 50000-60000")
        let ref = try b.line("coturn/turnserver.conf", "min-port=")
        #expect(b.messages == ["TURN relay range differs: firewall/callsctl.nft:\(n) (rule \"turn-relay\") has 50000-60000, coturn/turnserver.conf:\(ref) (min-port/max-port) has 49152-65535."])
    }

    @Test func hostOverrideMismatchInThePlugin() throws {
        let b = try Bundle()
        let n = try b.edit("mattermost/plugin-settings.json", "\"icehostoverride\": \"203.0.113.7\"", "\"icehostoverride\": \"10.1.2.3\"")
        let ref = try b.line("rtcd/config.toml", "ice_host_override")
        #expect(b.messages == ["ICE host override differs: mattermost/plugin-settings.json:\(n) (icehostoverride) has 10.1.2.3, rtcd/config.toml:\(ref) (rtc.ice_host_override) has 203.0.113.7."])
    }

    @Test func hostOverrideDiffersFromThePublicIP() throws {
        let b = try Bundle()
        let n = try b.edit("coturn/turnserver.conf", "external-ip=203.0.113.7", "external-ip=198.51.100.9")
        let ref = try b.line("rtcd/config.toml", "ice_host_override")
        let diags = crossCheckBundle(directory: b.dir)
        #expect(diags.map(\.message) == [
            "ICE host override differs from the public IP: rtcd/config.toml:\(ref) (rtc.ice_host_override) has 203.0.113.7, coturn/turnserver.conf:\(n) (external-ip) has 198.51.100.9; coturn runs on the media host (realm calls.example.com), so both are that host's public IP."
        ])
        #expect(diags.first?.fix == "set both to the media host's public IP (or regenerate the bundle with the right --public-ip)")
    }

    @Test func unparsableTOMLIsReportedWithItsLine() throws {
        let b = try Bundle()
        let n = try b.edit("rtcd/config.toml", "ice_port_udp = 8443", "ice_port_udp = = 8443")
        let diags = crossCheckBundle(directory: b.dir)
        #expect(diags.count == 1)
        #expect(diags.first?.file == "rtcd/config.toml" && diags.first?.line == n)
        #expect(diags.first?.message.hasPrefix("cannot parse: ") == true)
    }

    @Test func notAFolder() {
        #expect(crossCheckBundle(directory: "/nonexistent/bundle").map(\.message) == ["/nonexistent/bundle is not a folder."])
    }

    @Test func writerKeepsExistingFilesAndWritesNothingWithoutForce() throws {
        let b = try Bundle()
        try "mine\n".write(toFile: "\(b.dir)/README.md", atomically: true, encoding: .utf8)
        let inputs = try DeploymentInputs(GoldenInputs.raw())
        #expect(throws: WriteError.self) { try BundleWriter.write(GenerateTarget.bundle.files(inputs), to: b.dir, force: false) }
        #expect(try b.text("README.md") == "mine\n")
        try BundleWriter.write(GenerateTarget.bundle.files(inputs), to: b.dir, force: true)
        #expect(try b.text("README.md").hasPrefix("# Calls deployment"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: b.dir).filter { $0.hasPrefix(".callsctl-generate") }
        #expect(leftovers.isEmpty)
    }
}
