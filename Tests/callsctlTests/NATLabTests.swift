import Foundation
import Testing

/// The NAT lab of network namespaces + veth + nftables (scripts/natlab.sh), with coturn as an RFC 5780
/// server behind a Linux NAT in each mode. Needs root; namespaces are removed afterwards.
@Suite(.serialized) final class NATLabTests {
    let prefix = "cc\(getpid() % 100_000)"
    let secretFile: String
    let script = repoRoot.appendingPathComponent("scripts/natlab.sh").path
    var up = false

    init() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("natlab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        secretFile = dir.appendingPathComponent("secret").path
        try "lab-secret-\(UInt32.random(in: 0...UInt32.max))".write(toFile: secretFile, atomically: true, encoding: .utf8)
        chmod(secretFile, 0o600)
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8)
        let r = Self.shell([script, "up", prefix, secret])
        up = r.status == 0
        if !up {
            _ = Self.shell([script, "down", prefix])
            Issue.record("cannot build the NAT lab (needs root, iproute2, nftables, coturn): \(r.output)")
        }
    }

    deinit {
        _ = Self.shell([script, "down", prefix])
        try? FileManager.default.removeItem(atPath: (secretFile as NSString).deletingLastPathComponent)
    }

    static func shell(_ args: [String], timeout: TimeInterval = 60) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        p.environment = env
        // A file, not a pipe: daemons the lab script starts inherit the descriptor and would keep a
        // pipe open forever.
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("natlab-out-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: outPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        guard let handle = FileHandle(forWritingAtPath: outPath) else { return (127, "cannot create \(outPath)") }
        defer { try? handle.close() }
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (127, "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            p.terminate()
            usleep(200_000)
        }
        // Not waitUntilExit(): its run loop can wait on descriptors the lab's daemons inherited.
        while p.isRunning { usleep(10_000) }
        let data = FileManager.default.contents(atPath: outPath) ?? Data()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func mode(_ m: String) throws {
        let r = Self.shell([script, "mode", prefix, m])
        try #require(r.status == 0, "mode \(m): \(r.output)")
    }

    /// Runs callsctl inside the client namespace, returning exit status and parsed JSON.
    func callsctl(_ args: [String], timeout: TimeInterval = 30) -> (status: Int32, json: [String: Any]?, output: String) {
        let r = Self.shell(["ip", "netns", "exec", "\(prefix)-cli", CLI.binary.path] + args + ["--json"], timeout: timeout)
        // stdout is one JSON document; stderr lines (progress) come after or before it in `output`.
        let text = r.output
        let json = text.range(of: "{").flatMap { start in
            text.range(of: "\n}", options: .backwards).map { end in String(text[start.lowerBound..<end.upperBound]) }
        }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (r.status, json, text)
    }

    @Test func portRestrictedCone() throws {
        try #require(up)
        try mode("masquerade")
        let r = callsctl(["probe", "nat", "198.51.100.2"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.json?["mapping"] as? String == "endpoint-independent")
        #expect(r.json?["filtering"] as? String == "address-and-port-dependent")
        #expect((r.json?["natType"] as? String)?.hasPrefix("port-restricted cone") == true)
        #expect((r.json?["mapped"] as? [String: String])?["test1"]?.hasPrefix("198.51.100.1:") == true)
    }

    @Test func symmetric() throws {
        try #require(up)
        try mode("symmetric")
        let r = callsctl(["probe", "nat", "198.51.100.2"])
        #expect(r.status == 0, "a symmetric NAT is information for an SFU, not a failure: \(r.output)")
        #expect(r.json?["mapping"] as? String == "address-and-port-dependent")
        #expect((r.json?["natType"] as? String)?.hasPrefix("symmetric") == true)
        #expect((r.json?["impact"] as? String)?.contains("not a failure") == true)
    }

    @Test func fullConeWithAndWithoutHairpinning() throws {
        try #require(up)
        try mode("fullcone")
        let plain = callsctl(["probe", "nat", "198.51.100.2", "--hairpin"])
        #expect(plain.json?["mapping"] as? String == "endpoint-independent")
        #expect(plain.json?["filtering"] as? String == "endpoint-independent")
        #expect((plain.json?["natType"] as? String)?.hasPrefix("full cone") == true)
        #expect(plain.json?["hairpinning"] as? Bool == false)
        try mode("fullcone-hairpin")
        let hairpin = callsctl(["probe", "nat", "198.51.100.2", "--hairpin"])
        #expect(hairpin.json?["hairpinning"] as? Bool == true, "\(hairpin.output)")
    }

    @Test func udpBlockedSTUNFailsFastAndTURNOverTCPStillWorks() throws {
        try #require(up)
        try mode("udp-blocked")
        let start = Date()
        let stun = callsctl(["probe", "stun", "198.51.100.2", "--timeout", "2"])
        #expect(stun.status == 2)
        #expect(stun.json?["verdict"] as? String == "no-answer")
        #expect(Date().timeIntervalSince(start) < 4, "bounded by --timeout")
        #expect(((stun.json?["attempts"] as? [[String: Any]])?.first?["transmissions"] as? Int ?? 0) >= 2)

        let turn = callsctl([
            "probe", "turn", "turn:198.51.100.2:3478?transport=tcp", "--secret-file", secretFile, "--peer", "198.51.100.2:3480",
        ])
        #expect(turn.status == 0, "\(turn.output)")
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8)
        #expect(!turn.output.contains(secret), "the shared secret must never be printed")
        #expect(turn.json?["transport"] as? String == "tcp")
        #expect((turn.json?["relayedAddress"] as? String)?.hasPrefix("198.51.100.2:") == true)
        let roundTrip = turn.json?["roundTrip"] as? [String: Any]
        #expect(roundTrip?["sent"] as? Int == 5)
        #expect(roundTrip?["received"] as? Int == 5)
        #expect(roundTrip?["rttMs"] is Double)

        let udpTurn = callsctl(["probe", "turn", "turn:198.51.100.2:3478", "--secret-file", secretFile, "--timeout", "2"])
        #expect(udpTurn.status == 2, "TURN over UDP cannot work with UDP blocked")
    }

    @Test func portsSeenThroughAFirewall() throws {
        try #require(up)
        try mode("tcp8443-blocked")
        let r = callsctl(["ports", "check", "--host", "198.51.100.2", "--udp", "3478", "--tcp", "3478,8443,8045", "--timeout", "1.5"], timeout: 40)
        #expect(r.status == 2)
        let ports = (r.json?["ports"] as? [[String: Any]]) ?? []
        let states = ports.map { "\($0["port"] as? Int ?? 0)/\($0["protocol"] as? String ?? "")=\($0["state"] as? String ?? "")" }
        #expect(states == ["3478/udp=open|filtered", "3478/tcp=open", "8443/tcp=filtered", "8045/tcp=closed"], "\(r.output)")
    }
}
