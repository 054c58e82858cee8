import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// callsctl's exit codes (DESIGN.md §2).
enum CallsExitCode: Int32 {
    case success = 0
    case internalError = 1
    /// A negative answer or a failed check.
    case negative = 2
    /// Could not decide, or not available.
    case undecided = 3
    case usage = 64
}

/// An error that ends the command with a message and a chosen exit code.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    let exitCode: CallsExitCode
    /// Extra lines, typically how to fix it.
    var hint: String?

    init(_ message: String, exitCode: CallsExitCode, hint: String? = nil) {
        self.message = message
        self.exitCode = exitCode
        self.hint = hint
    }

    var description: String { message }

    func rendered(color: Bool) -> String {
        let prefix = color ? "\u{1B}[1;31merror:\u{1B}[0m" : "error:"
        var text = "\(prefix) \(message)"
        if let hint { text += "\n" + hint }
        return text
    }
}

/// A file descriptor we print to, and whether it is a colour terminal.
struct Terminal: Sendable {
    let fd: Int32

    static let standardOutput = Terminal(fd: 1)
    static let standardError = Terminal(fd: 2)

    var isTTY: Bool { isatty(fd) == 1 }

    var useColor: Bool {
        let env = ProcessInfo.processInfo.environment
        if env["NO_COLOR"].map({ !$0.isEmpty }) ?? false { return false }
        if env["TERM"] == "dumb" { return false }
        return isTTY
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { raw in
                Glibc.write(fd, raw.baseAddress!.advanced(by: offset), raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Where a command's report goes: human text on stdout (or nothing with --quiet), JSON on stdout
/// with --json, progress and notes on stderr.
struct Output: Sendable {
    let json: Bool
    let quiet: Bool
    let verbose: Bool
    let noColor: Bool
    /// `serve --log-format json`: notes and warnings on stderr are JSON log lines too, so that stderr parses line
    /// by line.
    var logsJSON = false

    var color: Bool { !noColor && Terminal.standardOutput.useColor }
    var errorColor: Bool { !noColor && Terminal.standardError.useColor }

    /// The main human-readable result (suppressed with --json).
    func line(_ text: String = "") {
        guard !json else { return }
        Terminal.standardOutput.write(text + "\n")
    }

    /// Detail shown unless --quiet (and never in --json mode, where stdout is one document).
    func info(_ text: String) {
        guard !quiet, !json else { return }
        Terminal.standardOutput.write(text + "\n")
    }

    /// Shown only with --verbose, on stderr.
    func debug(_ text: String) {
        guard verbose else { return }
        Terminal.standardError.write(text + "\n")
    }

    /// Progress or warnings, on stderr, unless --quiet.
    func note(_ text: String) {
        guard !quiet else { return }
        if logsJSON {
            JSONLogHandler.write(JSONLogHandler.line(time: Date(), level: .notice, message: text, label: "callsctl", metadata: [:]))
            return
        }
        Terminal.standardError.write(text + "\n")
    }

    func warning(_ text: String) {
        if logsJSON {
            JSONLogHandler.write(JSONLogHandler.line(time: Date(), level: .warning, message: text, label: "callsctl", metadata: [:]))
            return
        }
        let prefix = errorColor ? "\u{1B}[1;33mwarning:\u{1B}[0m" : "warning:"
        Terminal.standardError.write("\(prefix) \(text)\n")
    }

    /// The JSON document for --json.
    func emit(_ value: JSONValue) {
        Terminal.standardOutput.write(value.rendered(pretty: true) + "\n")
    }

    func styled(_ text: String, _ style: Style) -> String {
        guard color else { return text }
        return "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m"
    }

    enum Style: String {
        case bold = "1"
        case green = "32"
        case red = "31"
        case yellow = "33"
        case dim = "2"
    }
}

/// A JSON value with ordered object keys, so reports read in a stable, meaningful order.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.rendered(pretty: false) == rhs.rendered(pretty: false)
    }

    func rendered(pretty: Bool) -> String {
        var out = ""
        render(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func render(into out: inout String, pretty: Bool, indent: Int) {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let closePad = pretty ? String(repeating: "  ", count: indent) : ""
        let newline = pretty ? "\n" : ""
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite {
                out += d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : String(format: "%.6g", d)
            } else {
                out += "null"
            }
        case .string(let s): out += JSONValue.quote(s)
        case .array(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "[" + newline
            for (i, item) in items.enumerated() {
                out += pad
                item.render(into: &out, pretty: pretty, indent: indent + 1)
                if i < items.count - 1 { out += "," }
                out += newline
            }
            out += closePad + "]"
        case .object(let fields):
            if fields.isEmpty {
                out += "{}"
                return
            }
            out += "{" + newline
            for (i, (key, value)) in fields.enumerated() {
                out += pad + JSONValue.quote(key) + (pretty ? ": " : ":")
                value.render(into: &out, pretty: pretty, indent: indent + 1)
                if i < fields.count - 1 { out += "," }
                out += newline
            }
            out += closePad + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension JSONValue {
    static func string(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    static func date(_ d: Date?) -> JSONValue { d.map { .string(RFC3339.format($0)) } ?? .null }
}

enum RFC3339 {
    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }
}
