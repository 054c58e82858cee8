import CallsTestSupport
import Foundation
import Testing

/// The settings store on a full or read-only file system, made for real in a mount namespace of the test's own
/// (`unshare -m`: a 256 KiB tmpfs, or a read-only bind mount of a temporary folder).
@Suite(.serialized) struct StoreFileSystemTests {
    static let channel = "4xp9fdt3pbdp7nrw7xjmrd8kkc"

    /// Runs `script` in a new mount namespace with $B set to the callsctl binary and $D to `dir`; returns the output.
    static func inMountNamespace(_ dir: String, _ script: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["-m", "/bin/sh", "-c", script]
        var env = ProcessInfo.processInfo.environment
        env["B"] = CLI.binary.path
        env["D"] = dir
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "CALLSCTL_DATA_DIR")
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    /// A full disk is named as such (SQLite only says "disk I/O error"), the change is not half-made, and reading
    /// still works.
    @Test func aFullDiskSaysNoSpaceLeftAndLosesNothing() throws {
        let dir = TempDir()
        let (status, out) = try Self.inMountNamespace(dir.path, """
            mount -t tmpfs -o size=256k tmpfs "$D" || exit 90
            "$B" channel enable \(Self.channel) --data-dir "$D" >/dev/null || exit 91
            dd if=/dev/zero of="$D/fill" bs=1k count=2000 2>/dev/null
            echo "== disable"; "$B" channel disable \(Self.channel) --data-dir "$D"; echo "rc=$?"
            echo "== list"; "$B" channel list --data-dir "$D"; echo "rc=$?"
            """)
        #expect(status == 0, "\(out)")
        let disable = out.components(separatedBy: "== list").first ?? ""
        #expect(disable.contains("no space left on device: the settings database \(dir.path)/calls.db cannot be written"), "\(out)")
        #expect(disable.contains("df -h '\(dir.path)'"), "\(out)")
        #expect(disable.contains("rc=3"), "\(out)")
        let list = out.components(separatedBy: "== list").last ?? ""
        #expect(list.contains("\(Self.channel)  enabled"), "\(out)")
        #expect(list.contains("rc=0"), "\(out)")
    }

    /// A read-only data directory (here a read-only file system) still serves read commands; writes say why not.
    @Test func aReadOnlyDataDirectoryStillReads() throws {
        let dir = TempDir()
        let setup = try CLI.run(["channel", "disable", Self.channel], dataDir: dir.path)
        #expect(setup.status == 0, "\(setup.stderr)")
        let (status, out) = try Self.inMountNamespace(dir.path, """
            mount --bind "$D" "$D" && mount -o remount,bind,ro "$D" || exit 90
            echo "== list"; "$B" channel list --data-dir "$D"; echo "rc=$?"
            echo "== status"; "$B" channel status \(Self.channel) --json --data-dir "$D"; echo "rc=$?"
            echo "== enable"; "$B" channel enable \(Self.channel) --data-dir "$D"; echo "rc=$?"
            """)
        #expect(status == 0, "\(out)")
        let sections = out.components(separatedBy: "== ")
        let list = sections.first { $0.hasPrefix("list") } ?? ""
        #expect(list.contains("\(Self.channel)  disabled") && list.contains("rc=0"), "\(out)")
        #expect(list.contains("read \(dir.path)/calls.db read-only"), "\(out)")
        let statusOut = sections.first { $0.hasPrefix("status") } ?? ""
        // Exit 2: calls are not allowed in a disabled channel (the command's usual answer).
        #expect(statusOut.contains("\"disabled\"") && statusOut.contains("rc=2"), "\(out)")
        let enable = sections.first { $0.hasPrefix("enable") } ?? ""
        #expect(enable.contains("Read-only file system") && enable.contains("rc=3"), "\(out)")
    }
}
