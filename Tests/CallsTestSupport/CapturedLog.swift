import Foundation
import Logging

/// A log handler that keeps every line at `level` and above, rendered as `message key=value ...` (sorted keys, the
/// shape StreamLogHandler prints), for tests that check what reaches the log.
public final class CapturedLog: @unchecked Sendable {
    // @unchecked: `entries` is read and written only while `lock` is held.
    private let lock = NSLock()
    private var entries: [String] = []
    private let level: Logger.Level

    public init(level: Logger.Level = .debug) {
        self.level = level
    }

    public var lines: [String] { lock.withLock { entries } }
    func append(_ line: String) { lock.withLock { entries.append(line) } }

    public var logger: Logger {
        var logger = Logger(label: "test", factory: { _ in Handler(log: self) })
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        var metadataProvider: Logger.MetadataProvider?

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            log.append(([event.message.description] + fields).joined(separator: " "))
        }
    }
}
