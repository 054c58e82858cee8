/// Character classes and positions over the document's Unicode scalars.
struct TOMLScanner {
    let scalars: [Unicode.Scalar]
    /// Index of the first scalar of each line, for line/column of an index.
    let lineStarts: [Int]

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
        var starts = [0]
        for (i, s) in scalars.enumerated() where s == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }

    /// 1-based line and column of a scalar index.
    func position(_ index: Int) -> (line: Int, column: Int) {
        var lo = 0
        var hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return (lo + 1, index - lineStarts[lo] + 1)
    }

    static func isBareKeyScalar(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-": true
        default: false
        }
    }
}

/// How a table node came to exist; decides what may be added to it later (TOML 1.0 §Table).
private enum TableOrigin {
    /// Created as a parent by a header like `[a.b]` (for `a`); may still be defined by `[a]` later.
    case implicit
    /// Defined by its own `[header]`.
    case header
    /// Created by a dotted key `a.b = 1`; open to more dotted keys, closed to a `[header]`.
    case dotted
}

private final class TableNode {
    var origin: TableOrigin
    var line: Int
    var children: [String: Node] = [:]
    init(origin: TableOrigin, line: Int) {
        self.origin = origin
        self.line = line
    }
}

private enum Node {
    case table(TableNode)
    case tableArray([TableNode], line: Int)
    /// A plain value (inline tables and arrays are sealed values too).
    case value(line: Int, isInlineTable: Bool)

    var line: Int {
        switch self {
        case .table(let t): t.line
        case .tableArray(_, let line): line
        case .value(let line, _): line
        }
    }
}

/// A recursive-descent TOML 1.0 parser. Internal; use `TOMLDocument(parsing:file:)`.
struct TOMLParser {
    private let scanner: TOMLScanner
    private let file: String
    private var i = 0
    private let root = TableNode(origin: .header, line: 0)
    private var current: TableNode
    /// The flattened name of the current table ("" at the root).
    private var currentPrefix = ""
    private(set) var entries: [TOMLEntry] = []
    private(set) var headers: [TOMLTableHeader] = []
    private static let maxDepth = 100

    init(text: String, file: String) {
        scanner = TOMLScanner(text)
        self.file = file
        current = root
    }

    private var s: [Unicode.Scalar] { scanner.scalars }
    private var atEnd: Bool { i >= s.count }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        let j = i + offset
        return j < s.count ? s[j] : nil
    }

    private func error(_ message: String, at index: Int? = nil) -> TOMLError {
        let (line, column) = scanner.position(min(index ?? i, max(s.count, 0)))
        return TOMLError(file: file, line: line, column: column, message: message)
    }

    private func line(_ index: Int) -> Int { scanner.position(index).line }

    private static func describe(_ s: Unicode.Scalar) -> String {
        if s == "\n" { return "end of line" }
        if s.value < 0x20 || s.value == 0x7F { return "control character U+\(String(s.value, radix: 16, uppercase: true))" }
        return "'\(s)'"
    }

    // MARK: Document

    mutating func parseDocument() throws(TOMLError) {
        if peek() == "\u{FEFF}" { i += 1 }  // a byte-order mark some editors write
        while true {
            skipWhitespace()
            guard let c = peek() else { return }
            switch c {
            case "#": try skipComment()
            case "\n": i += 1
            case "\r":
                guard peek(1) == "\n" else { throw error("a carriage return must be followed by a newline") }
                i += 2
            case "[": try parseHeader()
            default: try parseKeyValueLine()
            }
        }
    }

    private mutating func skipWhitespace() {
        while let c = peek(), c == " " || c == "\t" { i += 1 }
    }

    private mutating func skipComment() throws(TOMLError) {
        // Caller is at '#'.
        i += 1
        while let c = peek(), c != "\n" {
            if c == "\r" && peek(1) == "\n" { return }
            if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
                throw error("\(Self.describe(c)) is not allowed in a comment")
            }
            i += 1
        }
    }

    /// After a value or header: optional whitespace and comment, then a newline or the end.
    private mutating func expectLineEnd(after what: String) throws(TOMLError) {
        skipWhitespace()
        if peek() == "#" { try skipComment() }
        guard let c = peek() else { return }
        if c == "\n" {
            i += 1
            return
        }
        if c == "\r" && peek(1) == "\n" {
            i += 2
            return
        }
        throw error("expected a new line after \(what), found \(Self.describe(c))")
    }

    // MARK: Keys

    /// A dotted key: its parts, and the index each part starts at.
    private mutating func parseKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            guard let c = peek() else { throw error("expected a key, found the end of the file") }
            if c == "\"" {
                if peek(1) == "\"" && peek(2) == "\"" { throw error("a key cannot be a multi-line string") }
                parts.append(try parseBasicString())
            } else if c == "'" {
                if peek(1) == "'" && peek(2) == "'" { throw error("a key cannot be a multi-line string") }
                parts.append(try parseLiteralString())
            } else if TOMLScanner.isBareKeyScalar(c) {
                var text = String.UnicodeScalarView()
                while let c = peek(), TOMLScanner.isBareKeyScalar(c) {
                    text.append(c)
                    i += 1
                }
                parts.append(String(text))
            } else {
                throw error("expected a key, found \(Self.describe(c)) (bare keys use A-Z a-z 0-9 _ -; quote others)")
            }
            skipWhitespace()
            if peek() == "." {
                i += 1
                continue
            }
            return parts
        }
    }

    private static func flat(_ parts: [String]) -> String {
        parts.map(TOMLValue.key).joined(separator: ".")
    }

    private func join(_ prefix: String, _ key: String) -> String {
        prefix.isEmpty ? key : prefix + "." + key
    }

    // MARK: Headers

    private mutating func parseHeader() throws(TOMLError) {
        let start = i
        let isArray = peek(1) == "["
        i += isArray ? 2 : 1
        let parts = try parseKey()
        guard peek() == "]" else {
            throw error("expected ']' to close the table header, found \(peek().map(Self.describe) ?? "the end of the file")")
        }
        i += 1
        if isArray {
            guard peek() == "]" else { throw error("expected ']]' to close the array-of-tables header") }
            i += 1
        }
        let headerLine = line(start)
        let display = (isArray ? "[[" : "[") + Self.flat(parts) + (isArray ? "]]" : "]")

        var table = root
        var prefix = ""
        for (n, part) in parts.enumerated() {
            let isLast = n == parts.count - 1
            let name = join(prefix, TOMLValue.key(part))
            let existing = table.children[part]
            if !isLast {
                switch existing {
                case nil:
                    let child = TableNode(origin: .implicit, line: headerLine)
                    table.children[part] = .table(child)
                    table = child
                    prefix = name
                case .table(let child)?:
                    table = child
                    prefix = name
                case .tableArray(let elements, _)?:
                    table = elements[elements.count - 1]
                    prefix = name + "[\(elements.count - 1)]"
                case .value(let valueLine, _)?:
                    throw error("\(display): key \(name) is already a value (line \(valueLine)), not a table", at: start)
                }
                continue
            }
            if isArray {
                switch existing {
                case nil:
                    let element = TableNode(origin: .header, line: headerLine)
                    table.children[part] = .tableArray([element], line: headerLine)
                    table = element
                    prefix = name + "[0]"
                case .tableArray(var elements, let firstLine)?:
                    let element = TableNode(origin: .header, line: headerLine)
                    elements.append(element)
                    table.children[part] = .tableArray(elements, line: firstLine)
                    table = element
                    prefix = name + "[\(elements.count - 1)]"
                case .table(let t)?:
                    throw error("\(display): \(name) is already a table (line \(t.line)), not an array of tables", at: start)
                case .value(let valueLine, _)?:
                    throw error("\(display): key \(name) is already a value (line \(valueLine))", at: start)
                }
            } else {
                switch existing {
                case nil:
                    let child = TableNode(origin: .header, line: headerLine)
                    table.children[part] = .table(child)
                    table = child
                case .table(let child)? where child.origin == .implicit:
                    child.origin = .header
                    child.line = headerLine
                    table = child
                case .table(let child)?:
                    throw error("table \(display) is defined twice (first at line \(child.line))", at: start)
                case .tableArray(_, let firstLine)?:
                    throw error("\(display): \(name) is already an array of tables (line \(firstLine))", at: start)
                case .value(let valueLine, _)?:
                    throw error("\(display): key \(name) is already a value (line \(valueLine))", at: start)
                }
                prefix = name
            }
        }
        current = table
        currentPrefix = prefix
        headers.append(TOMLTableHeader(name: prefix, line: headerLine, isArrayElement: isArray))
        try expectLineEnd(after: "the table header")
    }

    // MARK: Key/value

    private mutating func parseKeyValueLine() throws(TOMLError) {
        let start = i
        let parts = try parseKey()
        guard peek() == "=" else {
            throw error("expected '=' after the key \(Self.flat(parts)), found \(peek().map(Self.describe) ?? "the end of the file")")
        }
        i += 1
        skipWhitespace()
        let valueStart = i
        let value = try parseValue(depth: 0)
        let keyLine = line(start)

        var table = current
        var prefix = currentPrefix
        for (n, part) in parts.enumerated() {
            let name = join(prefix, TOMLValue.key(part))
            if n == parts.count - 1 {
                if let existing = table.children[part] {
                    throw error("duplicate key \(name) (first set at line \(existing.line))", at: start)
                }
                if case .inlineTable = value {
                    table.children[part] = .value(line: keyLine, isInlineTable: true)
                } else {
                    table.children[part] = .value(line: keyLine, isInlineTable: false)
                }
                entries.append(TOMLEntry(key: name, value: value, line: line(valueStart)))
                break
            }
            switch table.children[part] {
            case nil:
                let child = TableNode(origin: .dotted, line: keyLine)
                table.children[part] = .table(child)
                table = child
            case .table(let child)? where child.origin == .dotted:
                table = child
            case .table(let child)?:
                throw error(
                    "cannot add to the table \(name) with a dotted key: it is defined by a header (line \(child.line))",
                    at: start)
            case .tableArray(_, let firstLine)?:
                throw error("cannot add to the array of tables \(name) (line \(firstLine)) with a dotted key", at: start)
            case .value(let valueLine, _)?:
                throw error("key \(name) is already a value (line \(valueLine)), not a table", at: start)
            }
            prefix = name
        }
        try expectLineEnd(after: "the value of \(join(currentPrefix, Self.flat(parts)))")
    }

    // MARK: Values

    private mutating func parseValue(depth: Int) throws(TOMLError) -> TOMLValue {
        guard depth < Self.maxDepth else { throw error("arrays and inline tables are nested too deeply") }
        guard let c = peek() else { throw error("expected a value, found the end of the file") }
        switch c {
        case "\"":
            if peek(1) == "\"" && peek(2) == "\"" { return .string(try parseMultilineString(basic: true)) }
            return .string(try parseBasicString())
        case "'":
            if peek(1) == "'" && peek(2) == "'" { return .string(try parseMultilineString(basic: false)) }
            return .string(try parseLiteralString())
        case "[": return try parseArray(depth: depth)
        case "{": return try parseInlineTable(depth: depth)
        case "\n", "\r", "#": throw error("expected a value after '=', found \(c == "#" ? "a comment" : "the end of the line")")
        default: return try parseScalarWord()
        }
    }

    private mutating func parseBasicString() throws(TOMLError) -> String {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw error("unterminated string (opened here)", at: start) }
            if c == "\"" {
                i += 1
                return String(out)
            }
            if c == "\n" || c == "\r" { throw error("unterminated string: a basic string ends on its line (use \"\"\" for several lines)", at: start) }
            if c == "\\" {
                out.append(try parseEscape())
                continue
            }
            if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
                throw error("\(Self.describe(c)) must be escaped in a string")
            }
            out.append(c)
            i += 1
        }
    }

    private mutating func parseEscape() throws(TOMLError) -> Unicode.Scalar {
        let start = i
        i += 1
        guard let e = peek() else { throw error("unterminated escape sequence", at: start) }
        i += 1
        switch e {
        case "b": return "\u{08}"
        case "t": return "\t"
        case "n": return "\n"
        case "f": return "\u{0C}"
        case "r": return "\r"
        case "\"": return "\""
        case "\\": return "\\"
        case "u", "U":
            let count = e == "u" ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let h = peek(), let d = Self.hexValue(h) else {
                    throw error("\\\(e) needs \(count) hex digits", at: start)
                }
                value = value * 16 + d
                i += 1
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error("\\\(e)\(String(value, radix: 16, uppercase: true)) is not a Unicode scalar value", at: start)
            }
            return scalar
        default:
            throw error("unknown escape sequence \\\(e) (allowed: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", at: start)
        }
    }

    private static func hexValue(_ s: Unicode.Scalar) -> UInt32? {
        switch s {
        case "0"..."9": s.value - 48
        case "a"..."f": s.value - 87
        case "A"..."F": s.value - 55
        default: nil
        }
    }

    private mutating func parseLiteralString() throws(TOMLError) -> String {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw error("unterminated literal string (opened here)", at: start) }
            if c == "'" {
                i += 1
                return String(out)
            }
            if c == "\n" || c == "\r" { throw error("unterminated literal string: it ends on its line (use ''' for several lines)", at: start) }
            if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
                throw error("\(Self.describe(c)) is not allowed in a literal string")
            }
            out.append(c)
            i += 1
        }
    }

    /// Skips the newline right after an opening `"""` or `'''`.
    private mutating func skipOpeningNewline() {
        if peek() == "\n" {
            i += 1
        } else if peek() == "\r" && peek(1) == "\n" {
            i += 2
        }
    }

    /// A multi-line basic (`"""`, with escapes) or literal (`'''`, without) string; the opening delimiter is at `i`.
    private mutating func parseMultilineString(basic: Bool) throws(TOMLError) -> String {
        let quote: Unicode.Scalar = basic ? "\"" : "'"
        let kind = basic ? "multi-line string" : "multi-line literal string"
        let start = i
        i += 3
        skipOpeningNewline()
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw error("unterminated \(kind) (opened here)", at: start) }
            if c == quote {
                var n = 0
                while peek(n) == quote { n += 1 }
                if n >= 3 {
                    guard n <= 5 else { throw error("too many quotes at the end of a \(kind)") }
                    for _ in 0..<(n - 3) { out.append(quote) }
                    i += n
                    return String(out)
                }
                for _ in 0..<n { out.append(quote) }
                i += n
                continue
            }
            if basic && c == "\\" {
                // A line-ending backslash trims the newline and all whitespace that follows.
                var j = i + 1
                while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
                if j < s.count, s[j] == "\n" || (s[j] == "\r" && j + 1 < s.count && s[j + 1] == "\n") {
                    i = j
                    while let w = peek(), w == " " || w == "\t" || w == "\n" || (w == "\r" && peek(1) == "\n") {
                        i += w == "\r" ? 2 : 1
                    }
                    continue
                }
                out.append(try parseEscape())
                continue
            }
            if c == "\r" {
                guard peek(1) == "\n" else { throw error("a carriage return must be followed by a newline") }
                out.append("\n")
                i += 2
                continue
            }
            if (c.value < 0x20 && c != "\t" && c != "\n") || c.value == 0x7F {
                throw error(
                    basic ? "\(Self.describe(c)) must be escaped in a string" : "\(Self.describe(c)) is not allowed in a literal string")
            }
            out.append(c)
            i += 1
        }
    }

    /// Whitespace, newlines and comments inside an array.
    private mutating func skipArrayFiller() throws(TOMLError) {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\n" {
                i += 1
            } else if c == "\r" && peek(1) == "\n" {
                i += 2
            } else if c == "#" {
                try skipComment()
            } else {
                return
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(TOMLError) -> TOMLValue {
        let start = i
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipArrayFiller()
            guard let c = peek() else { throw error("unterminated array (opened here)", at: start) }
            if c == "]" {
                i += 1
                return .array(items)
            }
            items.append(try parseValue(depth: depth + 1))
            try skipArrayFiller()
            guard let d = peek() else { throw error("unterminated array (opened here)", at: start) }
            if d == "," {
                i += 1
            } else if d != "]" {
                throw error("expected ',' or ']' in the array, found \(Self.describe(d))")
            }
        }
    }

    private mutating func parseInlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
        let start = i
        i += 1
        var table: [String: TOMLValue] = [:]
        // Which nested keys were made by dotted keys (open) inside this inline table.
        var dottedPaths: Set<[String]> = []
        skipWhitespace()
        if peek() == "}" {
            i += 1
            return .inlineTable([:])
        }
        while true {
            skipWhitespace()
            let keyStart = i
            let parts = try parseKey()
            guard peek() == "=" else {
                throw error("expected '=' after the key \(Self.flat(parts)) in the inline table, found \(peek().map(Self.describe) ?? "the end of the file")")
            }
            i += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            guard Self.insert(value, at: parts[...], into: &table, path: [], dotted: &dottedPaths) else {
                throw error("duplicate key \(Self.flat(parts)) in the inline table", at: keyStart)
            }
            skipWhitespace()
            guard let c = peek() else { throw error("unterminated inline table (opened here)", at: start) }
            if c == "}" {
                i += 1
                return .inlineTable(table)
            }
            guard c == "," else {
                throw error("expected ',' or '}' in the inline table, found \(Self.describe(c)) (inline tables stay on one line)")
            }
            i += 1
            skipWhitespace()
            if peek() == "}" { throw error("a trailing comma is not allowed in an inline table") }
        }
    }

    private static func insert(
        _ value: TOMLValue, at parts: ArraySlice<String>, into table: inout [String: TOMLValue], path: [String],
        dotted: inout Set<[String]>
    ) -> Bool {
        let head = parts.first!
        if parts.count == 1 {
            if table[head] != nil { return false }
            table[head] = value
            return true
        }
        let childPath = path + [head]
        var child: [String: TOMLValue]
        switch table[head] {
        case nil:
            child = [:]
            dotted.insert(childPath)
        case .inlineTable(let existing)? where dotted.contains(childPath):
            child = existing
        default:
            return false
        }
        guard insert(value, at: parts.dropFirst(), into: &child, path: childPath, dotted: &dotted) else { return false }
        table[head] = .inlineTable(child)
        return true
    }

    // MARK: Numbers, booleans, dates

    private mutating func parseScalarWord() throws(TOMLError) -> TOMLValue {
        let start = i
        var word = String.UnicodeScalarView()
        func wordScalar(_ c: Unicode.Scalar) -> Bool {
            switch c {
            case "A"..."Z", "a"..."z", "0"..."9", "_", "+", "-", ".", ":": true
            default: false
            }
        }
        while let c = peek(), wordScalar(c) {
            word.append(c)
            i += 1
        }
        // A date and a time may be separated by one space: 1979-05-27 07:32:00.
        if Self.isDate(String(word)), peek() == " ", let d = peek(1), ("0"..."9").contains(d), peek(3) == ":" {
            i += 1
            word.append("T")
            while let c = peek(), wordScalar(c) {
                word.append(c)
                i += 1
            }
        }
        let text = String(word)
        if text.isEmpty {
            throw error("expected a value (string, number, true/false, date, array or inline table), found \(peek().map(Self.describe) ?? "the end of the file")")
        }
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        if let value = Self.integer(text) { return .integer(value) }
        if Self.isIntegerShaped(text) {
            let digits = text.drop { $0 == "+" || $0 == "-" }
            if digits.count > 1 && digits.first == "0" {
                throw error("\(text): leading zeros are not allowed in a decimal integer", at: start)
            }
            throw error("\(text) is out of range for a 64-bit integer", at: start)
        }
        if let value = Self.float(text) { return .float(value) }
        if Self.isDateTime(text) {
            // Keep the separator the author used when it was a space.
            return .datetime(String(scanner.scalars[start..<i].map(Character.init)))
        }
        if text.first?.isLetter ?? false {
            throw error("\(text) is not a value; strings need quotes: \"\(text)\"", at: start)
        }
        throw error("\(text) is not a valid number, boolean or date", at: start)
    }

    /// Digits with single underscores between them.
    private static func digitsOK(_ s: Substring, _ isDigit: (Character) -> Bool) -> Bool {
        guard let first = s.first, let last = s.last, isDigit(first), isDigit(last) else { return false }
        var previousUnderscore = false
        for c in s {
            if c == "_" {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if isDigit(c) {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return true
    }

    private static func isDecimalDigit(_ c: Character) -> Bool { ("0"..."9").contains(c) }

    private static func isIntegerShaped(_ text: String) -> Bool {
        var body = Substring(text)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        return digitsOK(body, isDecimalDigit)
    }

    static func integer(_ text: String) -> Int64? {
        var body = Substring(text)
        for (prefix, radix, digits) in [("0x", 16, "0123456789abcdefABCDEF"), ("0o", 8, "01234567"), ("0b", 2, "01")] {
            if body.hasPrefix(prefix) {
                let rest = body.dropFirst(2)
                guard digitsOK(rest, { digits.contains($0) }) else { return nil }
                return Int64(rest.filter { $0 != "_" }, radix: radix)
            }
        }
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = body.dropFirst()
        }
        guard digitsOK(body, isDecimalDigit) else { return nil }
        let digits = body.filter { $0 != "_" }
        if digits.count > 1 && digits.first == "0" { return nil }
        return Int64((negative ? "-" : "") + digits)
    }

    static func float(_ text: String) -> Double? {
        var body = Substring(text)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        // int-part ( frac-part | [frac-part] exp-part )
        let expIndex = body.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = expIndex.map { body[..<$0] } ?? body
        let exponent = expIndex.map { body[body.index(after: $0)...] }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        let intPart = parts[0]
        guard digitsOK(intPart, isDecimalDigit) else { return nil }
        let intDigits = intPart.filter { $0 != "_" }
        if intDigits.count > 1 && intDigits.first == "0" { return nil }
        if parts.count == 2 { guard digitsOK(parts[1], isDecimalDigit) else { return nil } }
        if var exp = exponent {
            if exp.first == "+" || exp.first == "-" { exp = exp.dropFirst() }
            guard digitsOK(exp, isDecimalDigit) else { return nil }
        } else if parts.count == 1 {
            return nil  // plain integer shape: not a float
        }
        return Double(text.filter { $0 != "_" })
    }

    private static func isDate(_ t: String) -> Bool {
        let c = Array(t)
        guard c.count == 10, c[4] == "-", c[7] == "-" else { return false }
        guard [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ c[$0].isASCII && c[$0].isNumber }),
            let month = Int(String(c[5...6])), let day = Int(String(c[8...9]))
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day)
    }

    private static func isTime(_ t: Substring) -> Bool {
        let c = Array(t)
        guard c.count >= 8, c[2] == ":", c[5] == ":",
            [0, 1, 3, 4, 6, 7].allSatisfy({ c[$0].isASCII && c[$0].isNumber }),
            let h = Int(String(c[0...1])), let m = Int(String(c[3...4])), let sec = Int(String(c[6...7])),
            h < 24, m < 60, sec <= 60
        else { return false }
        var rest = c[8...]
        if rest.first == "." {
            rest = rest.dropFirst()
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return false }
            rest = rest.dropFirst(digits.count)
        }
        if rest.isEmpty { return true }
        if rest == ["Z"] || rest == ["z"] { return true }
        let off = Array(rest)
        return off.count == 6 && (off[0] == "+" || off[0] == "-") && off[3] == ":"
            && [1, 2, 4, 5].allSatisfy { off[$0].isASCII && off[$0].isNumber }
    }

    private static func isDateTime(_ t: String) -> Bool {
        if isDate(t) { return true }
        if let sep = t.firstIndex(where: { $0 == "T" || $0 == "t" }) {
            return isDate(String(t[..<sep])) && isTime(t[t.index(after: sep)...])
        }
        // A local time has no offset.
        return isTime(Substring(t)) && !t.contains("Z") && !t.contains("+") && t.count >= 8 && !t.dropFirst(8).contains("-")
    }
}
