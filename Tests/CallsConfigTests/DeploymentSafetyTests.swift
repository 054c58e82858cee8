import Foundation
import Testing

@testable import CallsConfig

/// What a real deployment of the generated files needs beyond agreeing with itself (issue: configs that work on
/// the upstream programs, on more than one node, without exposing the API).
@Suite struct DeploymentSafetyTests {
    func inputs(_ edit: (inout DeploymentInputs.Raw) -> Void = { _ in }) throws -> DeploymentInputs {
        var raw = GoldenInputs.raw()
        edit(&raw)
        return try DeploymentInputs(raw)
    }

    func file(_ target: GenerateTarget, _ path: String, _ i: DeploymentInputs) throws -> String {
        try #require(target.files(i).first { $0.path == path }, "\(path) not generated").contents
    }

    /// The text without its comment lines (the comments name the settings they leave out).
    func settings(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .joined(separator: "\n")
    }

    func inputError(_ edit: (inout DeploymentInputs.Raw) -> Void) -> InputError? {
        var raw = GoldenInputs.raw()
        edit(&raw)
        do {
            _ = try DeploymentInputs(raw)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Ports

    @Test func mediaAndAPIPortsOutsideWhatRTCDAcceptsAreRefused() {
        for (flag, port) in [("--rtc-port", 50), ("--rtc-port", 50000), ("--api-port", 79), ("--api-port", 49152)] {
            let e = inputError { flag == "--rtc-port" ? ($0.rtcPort = port) : ($0.apiPort = port) }
            #expect(e?.flag == flag, "\(flag) \(port): \(String(describing: e))")
            #expect(e?.message.hasPrefix("\(port) is outside 80-49151, the ports rtcd and the Calls plugin accept") == true, "\(String(describing: e))")
        }
        #expect(inputError { $0.rtcPort = 80 } == nil)
        #expect(inputError { $0.apiPort = 49151 } == nil)
    }

    @Test func portsThatCollideOnTheMediaHostAreRefused() {
        // coturn on the media host (the default): its relay range and listeners share the host.
        let relay = inputError { $0.relayPorts = "8000-9000" }
        #expect(relay?.flag == "--relay-ports")
        #expect(relay?.message.hasPrefix("8000-9000 contains 8443 (--rtc-port); coturn runs on the media host") == true, "\(String(describing: relay))")
        let turn = inputError { $0.turnPort = 8045 }
        #expect(turn?.flag == "--turn-port")
        #expect(turn?.message == "8045 is also the API port (--api-port); coturn runs on the media host, so it needs its own port.")
        // On a TURN host of its own nothing collides.
        #expect(inputError { $0.turnDomain = "turn.example.com"; $0.relayPorts = "8000-9000" } == nil)
    }

    @Test func bundleCheckReportsOutOfRangeAndOverlappingPorts() throws {
        let b = try BundleCheckTests.Bundle()
        let n = try b.edit("rtcd/config.toml", "ice_port_udp = 8443", "ice_port_udp = 50000")
        let messages = b.messages
        #expect(messages.contains("media port 50000 is outside 80-49151, the ports rtcd and the Calls plugin accept."), "\(messages)")
        #expect(crossCheckBundle(directory: b.dir).contains { $0.file == "rtcd/config.toml" && $0.line == n && $0.message.contains("outside 80-49151") })

        let overlap = try BundleCheckTests.Bundle()
        let m = try overlap.edit("coturn/turnserver.conf", "min-port=49152", "min-port=8000")
        let diags = crossCheckBundle(directory: overlap.dir).filter { $0.message.hasPrefix("coturn's relay range") }
        #expect(diags.map(\.line) == [m, m, m], "\(diags.map(\.message))")
        #expect(diags.contains { $0.message.contains("contains the API port 8045") })
        #expect(diags.contains { $0.message.contains("contains the media UDP port 8443") })
    }

    // MARK: Several media nodes

    @Test func severalNodesShareNoOverride() throws {
        #expect(inputError { $0.mediaNodes = 3; $0.iceHostOverride = "203.0.113.7" }?.flag == "--ice-host-override")
        #expect(inputError { $0.mediaNodes = 0 }?.flag == "--media-nodes")
        #expect(inputError { $0.mediaNodes = 3; $0.internalHost = "10.0.0.20" }?.flag == "--internal-host")
        let i = try inputs { $0.mediaNodes = 3 }
        let values = try file(.kubernetes, "kubernetes/rtcd-values.yaml", i)
        #expect(!settings(values).contains("RTCD_RTC_ICEHOSTOVERRIDE"))
        #expect(values.contains("\n  replicas: 3\n"))
        let manifest = try file(.kubernetes, "kubernetes/callsctl.yaml", i)
        #expect(!settings(manifest).contains("--ice-host-override"))
        #expect(manifest.contains("- \"--stun-server\"\n            - \"calls.example.com:3478\""))
        #expect(manifest.contains("  replicas: 3\n"))
        #expect(manifest.contains("topologyKey: kubernetes.io/hostname"))
        let toml = try file(.callsctl, "callsctl/callsctl.toml", i)
        #expect(toml.contains("# ice_host_override =\n"))
        #expect(toml.contains("stun_servers = [\"calls.example.com:3478\"]"))
        let rtcd = try file(.rtcd, "rtcd/config.toml", i)
        #expect(rtcd.contains("ice_host_override = \"\"\n"))
        #expect(!settings(try file(.rtcd, "rtcd/rtcd.env", i)).contains("RTCD_RTC_ICEHOSTOVERRIDE"))
        #expect(!(try file(.mattermostPlugin, "mattermost/plugin-settings.json", i)).contains("icehostoverride"))
        // A DaemonSet runs on every node: no shared override there even for one --media-nodes.
        let daemonset = try inputs { $0.kubernetesKind = "daemonset" }
        #expect(!settings(try file(.kubernetes, "kubernetes/callsctl.yaml", daemonset)).contains("--ice-host-override"))
        #expect(!settings(try file(.kubernetes, "kubernetes/rtcd-values.yaml", daemonset)).contains("RTCD_RTC_ICEHOSTOVERRIDE"))
        // One node keeps its override everywhere.
        let one = try inputs()
        #expect(try file(.kubernetes, "kubernetes/callsctl.yaml", one).contains("- \"--ice-host-override\"\n            - \"203.0.113.7\""))
        #expect(try file(.kubernetes, "kubernetes/rtcd-values.yaml", one).contains("RTCD_RTC_ICEHOSTOVERRIDE: '\"203.0.113.7\"'"))
        #expect(try file(.kubernetes, "kubernetes/rtcd-values.yaml", one).contains("\n  replicas: 1\n"))
    }

    @Test func bundleCheckCatchesAnOverrideSharedByNodes() throws {
        var raw = GoldenInputs.raw()
        raw.mediaNodes = 3
        raw.internalHost = "rtcd.internal.example.com"
        let b = try BundleCheckTests.Bundle(raw)
        #expect(b.messages == [])
        let n = try b.edit(
            "kubernetes/rtcd-values.yaml", "    RTCD_RTC_ICESERVERS:", "    RTCD_RTC_ICEHOSTOVERRIDE: '\"203.0.113.7\"'\n    RTCD_RTC_ICESERVERS:")
        let m = try b.edit("callsctl/callsctl.toml", "# ice_host_override =", "ice_host_override = \"203.0.113.7\"")
        let shared = crossCheckBundle(directory: b.dir).filter { $0.message.contains("is shared by several media nodes") }
        #expect(shared.compactMap(\.file).sorted() == ["callsctl/callsctl.toml", "kubernetes/rtcd-values.yaml"], "\(shared.map(\.description))")
        #expect(shared.first { $0.file == "kubernetes/rtcd-values.yaml" }?.line == n)
        #expect(shared.first { $0.file == "kubernetes/rtcd-values.yaml" }?.message.contains("3 replicas run on 3 nodes") == true)
        #expect(shared.first { $0.file == "callsctl/callsctl.toml" }?.line == m)
        // A DaemonSet with a fixed override: the same fault in a one-node bundle.
        let d = try BundleCheckTests.Bundle()
        try d.edit("kubernetes/callsctl.yaml", "kind: Deployment", "kind: DaemonSet")
        #expect(d.messages.contains { $0.contains("is shared by several media nodes: a DaemonSet runs on every node") }, "\(d.messages)")
    }

    // MARK: rtcd, Helm, plugin, mmctl

    @Test func rtcdGetsSTUNOnlyAndNoLogFile() throws {
        let i = try inputs()
        let toml = try file(.rtcd, "rtcd/config.toml", i)
        #expect(toml.contains("ice_servers = [\"stun:calls.example.com:3478\"]\n"))
        #expect(!toml.contains("turn:"))
        let env = try file(.rtcd, "rtcd/rtcd.env", i)
        #expect(env.contains("RTCD_RTC_ICESERVERS=[{\"urls\":[\"stun:calls.example.com:3478\"]}]\n"))
        #expect(env.contains("RTCD_LOGGER_ENABLEFILE=false\n"))
        let values = try file(.kubernetes, "kubernetes/rtcd-values.yaml", i)
        #expect(values.contains("RTCD_LOGGER_ENABLEFILE: '\"false\"'"))
        #expect(values.contains("mountPath: /var/lib/rtcd"))
        // Clients still get TURN, from the plugin.
        #expect(try file(.mattermostPlugin, "mattermost/plugin-settings.json", i).contains("turn:calls.example.com:3478?transport=udp"))
    }

    @Test func bundleCheckRefusesHelmValuesThatRenderAsNonStrings() throws {
        let b = try BundleCheckTests.Bundle()
        let n = try b.edit("kubernetes/rtcd-values.yaml", "RTCD_RTC_ICEPORTUDP: '\"8443\"'", "RTCD_RTC_ICEPORTUDP: \"8443\"")
        let diags = crossCheckBundle(directory: b.dir)
        #expect(diags.count == 1, "\(diags.map(\.description))")
        #expect(diags.first?.line == n)
        #expect(diags.first?.message == "the chart writes `value: {{ $val }}` unquoted, so \"8443\" renders as a number, and Kubernetes takes only strings as env values.")
        #expect(diags.first?.fix == "quote the value inside its quotes, e.g. RTCD_RTC_ICEPORTUDP: '\"8443\"'")
    }

    @Test func eachServiceHasItsOwnAdminKey() throws {
        var raw = GoldenInputs.raw()
        raw.rtcdAdminKey = nil
        raw.offloaderAdminKey = nil
        let i = try DeploymentInputs(raw)
        #expect(Set([i.adminKey, i.rtcdAdminKey, i.offloaderAdminKey]).count == 3)
        #expect(i.generatedSecrets == ["rtcd admin key", "calls-offloader admin key"])
        let files = GenerateTarget.bundle.files(i)
        func text(_ path: String) -> String { files.first { $0.path == path }?.contents ?? "" }
        #expect(text("rtcd/config.toml").contains("security.admin_secret_key = \"\(i.rtcdAdminKey)\""))
        #expect(!text("rtcd/config.toml").contains(i.adminKey))
        #expect(text("calls-offloader/config.toml").contains("security.admin_secret_key = \"\(i.offloaderAdminKey)\""))
        #expect(!text("calls-offloader/config.toml").contains(i.adminKey))
        #expect(text("secrets/admin-key") == i.adminKey + "\n")
        #expect(text("secrets/secrets.env").contains("RTCD_ADMIN_KEY=\(i.rtcdAdminKey)\n"))
        var same = GoldenInputs.raw()
        same.rtcdAdminKey = same.adminKey
        #expect(throws: InputError.self) { try DeploymentInputs(same) }
    }

    @Test func theBundlesPluginSettingsTurnOnRecordingsWithTheOffloader() throws {
        let i = try inputs { $0.internalHost = "10.0.0.20" }
        let bundle = try #require(GenerateTarget.bundle.files(i).first { $0.path == "mattermost/plugin-settings.json" }).contents
        #expect(bundle.contains("\"jobserviceurl\": \"http://10.0.0.20:4545\""))
        #expect(bundle.contains("\"enablerecordings\": true"))
        #expect(bundle.contains("\"rtcdserviceurl\": \"http://10.0.0.20:8045\""))
        // Without calls-offloader (the plugin target alone) neither is set.
        let alone = try file(.mattermostPlugin, "mattermost/plugin-settings.json", i)
        #expect(!alone.contains("jobserviceurl") && !alone.contains("enablerecordings"))
        // The API URL is the internal one; without --internal-host the README says what makes the name work.
        let plain = try inputs()
        #expect(plain.apiURL == "http://calls.example.com:8045")
        let readme = try #require(GenerateTarget.bundle.files(plain).first { $0.path == "README.md" }).contents
        #expect(readme.contains("give calls.example.com the media server's private address in their DNS"))
        #expect(try inputs { $0.internalHost = "fd00::20" }.apiURL == "http://[fd00::20]:8045")
    }

    @Test func bundleCheckRefusesMmctlConfigSet() throws {
        let b = try BundleCheckTests.Bundle()
        #expect(!(try b.text("mattermost/mmctl-commands.sh")).contains("config set"))
        let script = try b.text("mattermost/mmctl-commands.sh") + "mmctl config set PluginSettings.Plugins.com.mattermost.calls.udpserverport 8443\n"
        try script.write(toFile: "\(b.dir)/mattermost/mmctl-commands.sh", atomically: true, encoding: .utf8)
        let diags = crossCheckBundle(directory: b.dir)
        #expect(diags.map(\.key) == ["udpserverport"], "\(diags.map(\.description))")
        #expect(diags.first?.fix == "apply the settings with `mmctl config patch plugin-settings.json` (regenerate the bundle for a script that does)")
    }

    // MARK: coturn and nginx

    @Test func coturnRelaysUDPOnlyAndDeniesTheCommonRanges() throws {
        let text = try file(.coturn, "coturn/turnserver.conf", try inputs())
        #expect(text.contains("\nno-tcp-relay\n"))
        for range in ["192.88.99.0-192.88.99.255", "100::-100::ffff:ffff:ffff:ffff", "2001::-2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"] {
            #expect(text.contains("\ndenied-peer-ip=\(range)\n"), "\(range)")
        }
        #expect(text.contains("\nno-tlsv1\nno-tlsv1_1\n"))
        let newer = try file(.coturn, "coturn/turnserver.conf", try inputs { $0.coturnVersion = "4.7" })
        #expect(!newer.contains("\nno-tlsv1"))
        #expect(newer.contains("\nno-tcp-relay\n"))
        #expect(inputError { $0.coturnVersion = "latest" }?.flag == "--coturn-version")
        // A TURN host of its own is told to deny its own address.
        #expect(try file(.coturn, "coturn/turnserver.conf", try inputs { $0.turnDomain = "turn.example.com" }).contains("# denied-peer-ip=THIS-HOST'S-PUBLIC-IP"))
    }

    @Test func nginxPublishesOnlyTheWebSocketAndThePage() throws {
        let text = try file(.nginx, "nginx/callsctl.conf", try inputs())
        let locations = text.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("location ") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(locations == ["location = /ws {", "location = / {", "location = /index.html {", "location / {"])
        #expect(text.contains("    location / {\n        return 404;\n    }"))
        // No map that turns a plain request's empty Upgrade into "Connection: close" (which defeats keepalive).
        #expect(!text.contains("close;"))
        #expect(text.contains("proxy_set_header Connection \"\";"))
    }
}
