import Foundation
import Testing

@testable import CallsConfig

private func resolve(_ text: String) -> ConfigResolution {
    CallsConfig.resolve(fileText: text, filePath: "c.toml")
}

/// Item 2: config files over the size limit are refused before they are read; long unknown keys stay cheap.
@Suite struct ConfigFileSizeTests {
    @Test func overSizeFileIsRefusedBeforeReading() throws {
        let folder = TempFolder()
        let path = folder.file("big.toml", "a = \"" + String(repeating: "x", count: TOMLDocument.maxBytes) + "\"\n")
        let r = CallsConfig.resolve(filePath: path)
        #expect(r.hasErrors)
        #expect(
            r.diagnostics.first?.description
                == "\(path): error: the config file is 1048583 bytes, over the limit of 1048576 bytes (1 MiB)\n"
                + "  fix: A callsctl config is a few kilobytes: check that --config or CALLSCTL_CONFIG names the right file, "
                + "and remove what does not belong in it.")
        let ok = folder.file("ok.toml", "[rtc]\nice_port_udp = 9443\n")
        #expect(CallsConfig.resolve(filePath: ok).diagnostics.isEmpty)
    }

    @Test func aLongUnknownKeyIsReportedWithoutASuggestion() {
        let long = String(repeating: "x", count: 1_000_000)
        #expect(resolve(long + " = 1").diagnostics.map(\.message) == ["unknown key"])
        #expect(resolve("rtc.ice_port_upd = 1").diagnostics.map(\.message) == ["unknown key; did you mean rtc.ice_port_udp?"])
    }
}

/// Item 3: inline tables and dotted keys set the same config keys as sections do.
@Suite struct ConfigInlineTableTests {
    @Test func inlineTableSetsTheSameKeyAsASection() {
        let inline = resolve("rtc = { ice_port_tcp = 2080 }\n")
        #expect(inline.diagnostics.isEmpty)
        #expect(inline.config["rtc.ice_port_tcp"] == .integer(2080))
        #expect(inline.config.source(of: "rtc.ice_port_tcp") == .file(path: "c.toml", line: 1))
        let section = resolve("[rtc]\nice_port_tcp = 2080\n")
        let dotted = resolve("rtc.ice_port_tcp = 2080\n")
        #expect(inline.config.values == section.config.values)
        #expect(dotted.config.values == section.config.values)
    }

    @Test func nestedAndDottedInlineTables() {
        let r = resolve(
            """
            rtc = { turn = { credentials_expiration_minutes = 5 }, ice_port_udp = 9443 }
            api = { http.listen_address = "127.0.0.1:9045" }
            limits = {}
            """)
        #expect(r.diagnostics.isEmpty)
        #expect(r.config["rtc.turn.credentials_expiration_minutes"] == .integer(5))
        #expect(r.config["rtc.ice_port_udp"] == .integer(9443))
        #expect(r.config["api.http.listen_address"] == .string("127.0.0.1:9045"))
    }

    @Test func badValuesInInlineTablesCarryFileAndLine() {
        let r = resolve("# c\n\nrtc = { ice_port_tcp = \"x\", ice_port_upd = 1 }\n")
        #expect(r.diagnostics.map(\.description) == [
            "c.toml:3: error: rtc.ice_port_tcp: \"x\" is a string; allowed: a whole number from 1 to 65535",
            "c.toml:3: error: rtc.ice_port_upd: unknown key; did you mean rtc.ice_port_udp?",
        ])
        let v = resolve("\nrtc = { ice_port_tcp = 70000 }\n").config.validate()
        #expect(v.map(\.description) == ["c.toml:2: error: rtc.ice_port_tcp: 70000 is not a port number; allowed: a whole number from 1 to 65535"])
    }

    @Test func iceServerTablesStayValues() {
        let r = resolve("rtc = { ice_servers = [{ urls = [\"stun:a.example:3478\"] }] }\n")
        #expect(r.diagnostics.isEmpty)
        #expect(r.config["rtc.ice_servers"] == .list(["stun:a.example:3478"]))
    }
}

/// Item 5: values at the edges of 64-bit integers are findings, never traps.
@Suite struct ConfigNumberEdgeTests {
    @Test func extremeConfigValuesAreFindingsNotTraps() {
        let r = resolve(
            """
            [rtc]
            ice_port_udp = 9223372036854775807
            ice_port_tcp = -9223372036854775808
            turn.credentials_expiration_minutes = 9223372036854775807
            fanout_threads = 1e300
            [service]
            drain_timeout = 9223372036854775807
            """)
        #expect(r.diagnostics.map(\.description) == [
            "c.toml:5: error: rtc.fanout_threads: 1e+300 is a float; allowed: \(ConfigKey.named("rtc.fanout_threads")!.kind.allowed)"
        ])
        #expect(r.config.turnTTLSeconds == Int.max)
        #expect(r.config.rtcUDPListenAddress == "0.0.0.0:9223372036854775807")
        let findings = r.config.validate().map(\.description)
        #expect(findings.contains { $0.hasPrefix("c.toml:2: error: rtc.ice_port_udp: 9223372036854775807 is not a port number") })
        #expect(findings.contains { $0.hasPrefix("c.toml:3: error: rtc.ice_port_tcp: -9223372036854775808 is not a port number") })
        #expect(findings.contains { $0.hasPrefix("c.toml:4: error: rtc.turn.credentials_expiration_minutes: 9223372036854775807 is out of range") })
        var minutes = CallsConfig()
        minutes.set("rtc.turn.credentials_expiration_minutes", .integer(.min), source: .default)
        #expect(minutes.turnTTLSeconds == Int.min)
    }
}
