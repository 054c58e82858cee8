import CallsMedia
import Foundation
import Testing

/// A third-party WebRTC stack (aiortc) against the in-process server: it sends a sine tone and must hear it back.
///
/// Needs Python with `aiortc` and `numpy` (`pip install aiortc numpy`). The interpreter is `$AIORTC_PYTHON` if set,
/// else `python3`; without aiortc the test is skipped (set `CALLSCTL_REQUIRE_AIORTC=1` to fail instead).
@Suite("MediaServer with aiortc")
struct MediaServerAiortcTests {
    static let python = ProcessInfo.processInfo.environment["AIORTC_PYTHON"] ?? "python3"
    static let script = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/peers/aiortc_echo_client.py")

    static let available: Bool = {
        if ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_AIORTC"] == "1" { return true }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-c", "import aiortc, numpy"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test("aiortc hears its own 440 Hz tone echoed", .enabled(if: available), .timeLimit(.minutes(2)))
    func aiortcEcho() async throws {
        let server = try await MediaTest.server(udpCandidates: true, tcpCandidates: true)
        defer { Task { await server.shutdown() } }
        let frequency = 440.0
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.python, Self.script.path, "--frequency", "\(frequency)", "--seconds", "4", "--timeout", "50"]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let lines = LineReader(stdout.fileHandleForReading)
        // Generous limits: the full suite runs many tests at once on two cores, and aiortc's start is slow there.
        let offerLine = try #require(await lines.next(timeout: .seconds(40)), "aiortc printed no offer")
        let offer = try JSONDecoder().decode([String: String].self, from: Data(offerLine.utf8))
        let (id, answer) = try await server.createSession(offer: try #require(offer["sdp"]), label: "aiortc")
        let answerJSON = try JSONEncoder().encode(["sdp": answer])
        stdin.fileHandleForWriting.write(answerJSON + Data("\n".utf8))

        let resultLine = await lines.next(timeout: .seconds(60))
        let errors = String(decoding: stderr.fileHandleForReading.availableDataIfExited(process), as: UTF8.self)
        let line = try #require(resultLine, "aiortc printed no result; stderr: \(errors.suffix(2000))")
        struct Result: Decodable {
            var packets: Int?
            var frames: Int?
            var dominant_hz: Double?
            var ice: String?
            var error: String?
        }
        print("aiortc result: \(line)")
        let result = try JSONDecoder().decode(Result.self, from: Data(line.utf8))
        #expect(result.error == nil, "\(result.error ?? "")")
        #expect((result.packets ?? 0) >= 100, "aiortc received \(result.packets ?? 0) packets")
        let hz = result.dominant_hz ?? 0
        #expect(abs(hz - frequency) <= frequency * 0.05, "dominant frequency \(hz) Hz, expected \(frequency) Hz")
        let forwarded = server.metrics.mediaPacketsForwarded
        #expect(forwarded >= 100)
        await server.closeSession(id)
        await server.shutdown()
    }
}

/// Reads lines from a pipe on a dispatch thread (never blocking the cooperative pool).
final class LineReader: Sendable {
    private let stream: AsyncStream<String>

    init(_ handle: FileHandle) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        self.stream = stream
        DispatchQueue.global().async {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending = Data(pending[pending.index(after: newline)...])
                }
            }
            if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
            continuation.finish()
        }
    }

    /// The next line, or nil at end of stream or after `timeout`.
    func next(timeout: Duration) async -> String? {
        let stream = self.stream
        return await MediaTest.withDeadline(timeout) {
            for await line in stream { return line }
            return nil
        } ?? nil
    }
}

extension FileHandle {
    /// Whatever is buffered once the process has exited (empty while it still runs, so this never blocks).
    func availableDataIfExited(_ process: Process) -> Data {
        process.isRunning ? Data() : readDataToEndOfFile()
    }
}
