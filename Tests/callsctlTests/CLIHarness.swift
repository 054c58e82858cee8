import CallsTestSupport
import Foundation
import Testing

/// Runs the built `callsctl` binary as a user would.
enum CLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed]) }
    }

    /// The binary next to the test bundle (same build folder), or $CALLSCTL_BIN.
    static var binary: URL {
        if let env = ProcessInfo.processInfo.environment["CALLSCTL_BIN"] { return URL(fileURLWithPath: env) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // On Linux the test runner is <bin>/<package>PackageTests.xctest; on macOS it sits inside a bundle.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("callsctl")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/callsctl")
    }

    static func process(_ args: [String], dataDir: String?, extraEnv: [String: String] = [:]) -> Process {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "CALLSCTL_DATA_DIR")
        if let dataDir { env["CALLSCTL_DATA_DIR"] = dataDir }
        for (k, v) in extraEnv { env[k] = v }
        p.environment = env
        return p
    }

    @discardableResult
    static func run(_ args: [String], dataDir: String?, env: [String: String] = [:], timeout: TimeInterval = 60)
        throws -> Result
    {
        let p = process(args, dataDir: dataDir, extraEnv: env)
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let started = LoadSnapshot.now()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2000) }
        if p.isRunning {
            p.terminate()
            Issue.record("\(WaitTimeout(waitingFor: "callsctl \(args.joined(separator: " ")) to exit", since: started))")
        }
        p.waitUntilExit()
        group.wait()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("callsctl-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var path: String { url.path }
    var dbPath: String { url.appendingPathComponent("calls.db").path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The repository root, for comparing generated files.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func channelID(_ n: Int) -> String { String(format: "ch%024d", n) }

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
func closedTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw ServeCLITests.CLIProblem(description: "cannot bind a port") }
    return Int(UInt16(bigEndian: sa.sin_port))
}
