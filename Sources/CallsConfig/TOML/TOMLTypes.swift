/// A value read from a TOML document. Dates and times are kept as their text (configs never compute with them).
public indirect enum TOMLValue: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    /// An offset date-time, local date-time, local date or local time, exactly as written.
    case datetime(String)
    case array([TOMLValue])
    case inlineTable([String: TOMLValue])

    /// The TOML type name, for messages ("a string", "an integer", ...).
    public var typeDescription: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .bool: "a boolean"
        case .datetime: "a date/time"
        case .array: "an array"
        case .inlineTable: "an inline table"
        }
    }

    /// The value written back as TOML (strings quoted and escaped, inline tables with sorted keys).
    public var tomlText: String {
        switch self {
        case .string(let s): return TOMLValue.quoted(s)
        case .integer(let i): return String(i)
        case .float(let d):
            if d.isNaN { return "nan" }
            if d.isInfinite { return d < 0 ? "-inf" : "inf" }
            let text = String(d)
            return text.contains(".") || text.contains("e") ? text : text + ".0"
        case .bool(let b): return b ? "true" : "false"
        case .datetime(let text): return text
        case .array(let items): return "[" + items.map(\.tomlText).joined(separator: ", ") + "]"
        case .inlineTable(let table):
            if table.isEmpty { return "{}" }
            let fields = table.keys.sorted().map { "\(TOMLValue.key($0)) = \(table[$0]!.tomlText)" }
            return "{ " + fields.joined(separator: ", ") + " }"
        }
    }

    /// A basic TOML string literal with the escapes TOML 1.0 knows.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u" + String(format4: scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A key part as written in TOML: bare when it can be, else quoted.
    public static func key(_ part: String) -> String {
        if !part.isEmpty, part.unicodeScalars.allSatisfy(TOMLScanner.isBareKeyScalar) { return part }
        return quoted(part)
    }
}

extension String {
    fileprivate init(format4 value: UInt32) {
        let hex = String(value, radix: 16, uppercase: true)
        self = String(repeating: "0", count: Swift.max(0, 4 - hex.count)) + hex
    }
}

/// One key/value pair of a document: the key flattened with dots (`rtc.ice_port_udp`; array-of-tables
/// elements as `name[0].key`), its value, and the 1-based line it is on.
public struct TOMLEntry: Sendable, Hashable {
    public let key: String
    public let value: TOMLValue
    public let line: Int

    public init(key: String, value: TOMLValue, line: Int) {
        self.key = key
        self.value = value
        self.line = line
    }
}

/// A `[table]` or `[[array.of.tables]]` header: its flattened name (`turn`, `servers[1]`) and line.
public struct TOMLTableHeader: Sendable, Hashable {
    public let name: String
    public let line: Int
    public let isArrayElement: Bool
}

/// A syntax error, with where it is. `description` is `file:line:column: message`.
public struct TOMLError: Error, Sendable, Hashable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A parsed TOML 1.0 document, flattened into its key/value entries in file order.
public struct TOMLDocument: Sendable {
    /// The file name given at parse time, used in messages.
    public let file: String
    /// Every key/value in file order. Inline tables are one entry whose value is `.inlineTable`.
    public var entries: [TOMLEntry]
    /// Every table header in file order (tables with no keys appear only here).
    public var tables: [TOMLTableHeader]

    /// The most levels a document may nest: table header parts, dotted key parts, arrays and inline tables
    /// counted together. Deeper input is refused, so nothing that walks a parsed document recurses without bound.
    public static let maxNestingDepth = 64
    /// The largest document accepted, in bytes of UTF-8 (1 MiB; a callsctl config is a few kilobytes).
    public static let maxBytes = 1 << 20

    /// Parses `text`; `file` names it in errors. Throws the first syntax error, with line and column.
    /// Text longer than `maxBytes` bytes of UTF-8 is refused before it is parsed.
    public init(parsing text: String, file: String, maxBytes: Int = TOMLDocument.maxBytes) throws(TOMLError) {
        self.file = file
        let size = text.utf8.count
        if size > maxBytes {
            throw TOMLError(
                file: file, line: 1, column: 1,
                message: "the document is \(size) bytes, over the limit of \(maxBytes) bytes; "
                    + "a config file is a few kilobytes: check that this is the right file, and remove what does not belong in it")
        }
        var parser = TOMLParser(text: text, file: file)
        try parser.parseDocument()
        entries = parser.entries
        tables = parser.headers
    }

    /// The entry with this flattened key, if any.
    public subscript(key: String) -> TOMLEntry? {
        return entries.last { $0.key == key }
    }
}
