import Foundation
import Testing

/// A descriptor is closed once. Closing a number twice closes whatever another thread was given that number in
/// between: a probe's refused TCP connect did so (its initializer closed the socket and threw after storing it,
/// so deinit closed it again), which in the test process, or the doctor's concurrent checks, is someone else's
/// socket or pipe. strace shows a second close of a number as EBADF.
@Suite struct DescriptorTests {
    @Test func aRefusedTCPProbeClosesItsSocketOnce() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
            Issue.record("strace is not installed; scripts/install-deps.sh --test installs it")
            return
        }
        let port = try closedTCPPort()
        let dir = TempDir()
        let trace = "\(dir.path)/trace"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        p.arguments = [
            "-f", "-e", "trace=close,socket", "-o", trace, CLI.binary.path, "probe", "stun", "127.0.0.1:\(port)",
            "--transport", "tcp", "--count", "2", "--timeout", "5",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        #expect(p.terminationStatus == 2, "a closed port is a negative answer")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains("SOCK_STREAM") }, "the probe opened no TCP socket")
        let twice = lines.filter { $0.contains("close(") && $0.contains("EBADF") }
        #expect(twice.isEmpty, "closed twice: \(twice)")
    }
}
