import Foundation
import Testing

/// `probe nat` against a real classic RFC 3489 server (Debian's stund), which sends CHANGED-ADDRESS instead of
/// OTHER-ADDRESS, in a network namespace of the test's own with two loopback addresses.
@Suite(.serialized) struct ProbeClassicSTUNTests {
    static let stund = "/usr/sbin/stund"

    /// Runs `commands` in a new network namespace with stund on 127.0.0.1:3478 and 127.0.0.2:3479.
    static func inLab(_ commands: String) throws -> (status: Int32, output: String) {
        let dir = TempDir()
        let script = """
            ip link set lo up
            \(stund) -h 127.0.0.1 -a 127.0.0.2 >/dev/null 2>&1 &
            for i in $(seq 50); do [ -n "$(ss -Hlun 'sport = :3478')" ] && break; sleep 0.1; done
            \(commands)
            rc=$?
            kill -9 %1  # stund ignores SIGTERM
            wait
            exit $rc
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["-n", "bash", "-c", script]
        p.environment = ProcessInfo.processInfo.environment.merging(["CALLSCTL": CLI.binary.path, "NO_COLOR": "1"]) { $1 }
        let out = "\(dir.path)/out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardOutput = handle
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    static var ready: Bool {
        guard getuid() == 0 else { return false }
        if !FileManager.default.isExecutableFile(atPath: stund) {
            Issue.record("stund is not installed; scripts/install-deps.sh --test installs stun-server")
            return false
        }
        return true
    }

    @Test(.enabled(if: getuid() == 0, "needs root for a network namespace"))
    func changedAddressStandsInForOtherAddress() throws {
        guard Self.ready else { return }
        let r = try Self.inLab(#""$CALLSCTL" probe nat 127.0.0.1 --json"#)
        #expect(r.status == 0, "\(r.output)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any], "\(r.output)")
        #expect(doc["method"] as? String == "rfc3489-changed-address")
        #expect(doc["otherAddress"] as? String == "127.0.0.2:3479")
        #expect(doc["mapping"] as? String == "no-nat")
        #expect(doc["filtering"] as? String == "no-nat")
        #expect((doc["notes"] as? [String])?.contains { $0.contains("classic RFC 3489 server") } == true)
    }

    /// Answers from the other IP are dropped: the filtering test must see that, which it can only if it really
    /// asked the server to answer from CHANGED-ADDRESS.
    @Test(.enabled(if: getuid() == 0, "needs root for a network namespace"))
    func filteringIsMeasuredThroughChangeRequest() throws {
        guard Self.ready else { return }
        let r = try Self.inLab(
            """
            nft add table inet lab && nft add chain inet lab in '{ type filter hook input priority 0; }' \
              && nft add rule inet lab in ip saddr 127.0.0.2 udp sport 3479 drop
            "$CALLSCTL" probe nat 127.0.0.1 --json
            """)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any], "\(r.output)")
        #expect(doc["filtering"] as? String == "address-dependent", "\(r.output)")
    }

    @Test(.enabled(if: getuid() == 0, "needs root for a network namespace"))
    func softwareHasNoNULPadding() throws {
        guard Self.ready else { return }
        let r = try Self.inLab(#""$CALLSCTL" probe stun 127.0.0.1 --json"#)
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains(#""software": "Vovida.org 0.97""#), "\(r.output)")
        #expect(!r.output.contains(#"\u0000"#))
    }
}
