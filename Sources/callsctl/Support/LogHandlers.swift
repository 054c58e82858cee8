import CallsMedia
import CallsServer
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The log level every handler of `serve` reads, so that a reload (SIGHUP) changes it for all loggers at once.
typealias LiveLogLevel = Locked<Logger.Level>

/// swift-log's text handler on standard error, with the level of a ``LiveLogLevel``.
struct TextLogHandler: LogHandler {
    private var inner: StreamLogHandler
    let level: LiveLogLevel
    var override: Logger.Level?

    init(label: String, level: LiveLogLevel) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = .trace
        self.level = level
    }

    var logLevel: Logger.Level {
        get { override ?? level.current }
        set { override = newValue }
    }
    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String,
        line: UInt
    ) {
        inner.log(level: level, message: message, metadata: metadata, source: source, file: file, function: function, line: line)
    }
}

/// `--log-format json`: one JSON object per line on standard error, for Loki, Elasticsearch or `jq`.
///
/// Field names are stable: `time` (RFC 3339, UTC, milliseconds), `level` (trace, debug, info, notice, warning,
/// error, critical), `msg`, `logger` (the component), then the metadata under its own keys (`session.id`,
/// `call.channel`, `peer.address`, `reason`, ...), nested metadata as JSON objects and arrays. JSON escaping turns
/// every control character into `\uXXXX`, so a line is always one line.
struct JSONLogHandler: LogHandler {
    let label: String
    let level: LiveLogLevel
    /// A level set on one logger (`logger.logLevel = ...`) wins over the shared one.
    var override: Logger.Level?
    var logLevel: Logger.Level {
        get { override ?? level.current }
        set { override = newValue }
    }
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: LiveLogLevel) {
        self.label = label
        self.level = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        Self.write(Self.line(time: Date(), level: level, message: message.description, label: label, metadata: all))
    }

    /// The JSON text of one record, without the newline.
    static func line(time: Date, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":\(quote(timestamp(time))),\"level\":\(quote(level.rawValue)),\"msg\":\(quote(message)),\"logger\":\(quote(label))"
        for key in metadata.keys.sorted() where !["time", "level", "msg", "logger"].contains(key) {
            out += ",\(quote(key)):\(json(metadata[key]!))"
        }
        return out + "}"
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): quote(s)
        case .stringConvertible(let c): quote(c.description)
        case .array(let items): "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\(quote($0)):\(json(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String { jsonQuote(s) }

    static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var t = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let millis = Int((seconds - seconds.rounded(.down)) * 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    private static let lock = NSLock()

    /// One write per line (whole lines even when several threads log at once).
    static func write(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
