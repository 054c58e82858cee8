/// Character classes and positions over the document's Unicode scalars.
struct TOMLScanner {
    let scalars: [Unicode.Scalar]
    /// Index of the first scalar of each line, for line/column of an index.
    let lineStarts: [Int]

    /// Index of the first byte-order mark (U+FEFF) that is not the document's first scalar, if any.
    let strayByteOrderMark: Int?

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
        var starts = [0]
        var stray: Int?
        for (i, s) in scalars.enumerated() {
            if s == "\n" {
                starts.append(i + 1)
            } else if s == "\u{FEFF}" && i > 0 && stray == nil {
                stray = i
            }
        }
        lineStarts = starts
        strayByteOrderMark = stray
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

/// The elements of an array of tables, shared so appending one does not copy the others.
private final class TableArrayNode {
    var elements: [TableNode]
    let line: Int
    init(first: TableNode, line: Int) {
        elements = [first]
        self.line = line
    }
}

private enum Node {
    case table(TableNode)
    case tableArray(TableArrayNode)
    /// A plain value (inline tables and arrays are sealed values too).
    case value(line: Int, isInlineTable: Bool)

    var line: Int {
        switch self {
        case .table(let t): t.line
        case .tableArray(let array): array.line
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
    /// How many levels down the current table is (its header's parts; 0 at the root).
    private var currentDepth = 0
    private(set) var entries: [TOMLEntry] = []
    private(set) var headers: [TOMLTableHeader] = []
    private static let maxDepth = TOMLDocument.maxNestingDepth

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
        if let stray = scanner.strayByteOrderMark {
            throw error(
                "a byte-order mark (U+FEFF) is only allowed as the very first character of the file; delete it "
                    + "(it often comes from pasting one file into another; in a string, write \\uFEFF)", at: stray)
        }
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
    private mutating func expectLineEnd(after what: @autoclosure () -> String) throws(TOMLError) {
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
        throw error("expected a new line after \(what()), found \(Self.describe(c))")
    }

    // MARK: Keys

    /// The error for input nested deeper than `maxDepth`, at `index`.
    private func tooDeep(at index: Int) -> TOMLError {
        error(
            "nested too deeply: more than \(Self.maxDepth) levels (table header parts, dotted key parts, arrays and "
                + "inline tables count together); use fewer levels", at: index)
    }

    /// A dotted key's parts; more than `levelsLeft` parts is an error (at the first part too many).
    private mutating func parseKey(levelsLeft: Int) throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            if parts.count >= levelsLeft { throw tooDeep(at: i) }
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
        let parts = try parseKey(levelsLeft: Self.maxDepth)
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
                case .tableArray(let array)?:
                    table = array.elements[array.elements.count - 1]
                    prefix = name + "[\(array.elements.count - 1)]"
                case .value(let valueLine, _)?:
                    throw error("\(display): key \(name) is already a value (line \(valueLine)), not a table", at: start)
                }
                continue
            }
            if isArray {
                switch existing {
                case nil:
                    let element = TableNode(origin: .header, line: headerLine)
                    table.children[part] = .tableArray(TableArrayNode(first: element, line: headerLine))
                    table = element
                    prefix = name + "[0]"
                case .tableArray(let array)?:
                    let element = TableNode(origin: .header, line: headerLine)
                    array.elements.append(element)
                    table = element
                    prefix = name + "[\(array.elements.count - 1)]"
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
                case .tableArray(let array)?:
                    throw error("\(display): \(name) is already an array of tables (line \(array.line))", at: start)
                case .value(let valueLine, _)?:
                    throw error("\(display): key \(name) is already a value (line \(valueLine))", at: start)
                }
                prefix = name
            }
        }
        current = table
        currentPrefix = prefix
        currentDepth = parts.count
        headers.append(TOMLTableHeader(name: prefix, line: headerLine, isArrayElement: isArray))
        try expectLineEnd(after: "the table header")
    }

    // MARK: Key/value

    private mutating func parseKeyValueLine() throws(TOMLError) {
        let start = i
        let parts = try parseKey(levelsLeft: Self.maxDepth - currentDepth)
        guard peek() == "=" else {
            throw error("expected '=' after the key \(Self.flat(parts)), found \(peek().map(Self.describe) ?? "the end of the file")")
        }
        i += 1
        skipWhitespace()
        let valueStart = i
        let value = try parseValue(depth: currentDepth + parts.count)
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
            case .tableArray(let array)?:
                throw error("cannot add to the array of tables \(name) (line \(array.line)) with a dotted key", at: start)
            case .value(let valueLine, _)?:
                throw error("key \(name) is already a value (line \(valueLine)), not a table", at: start)
            }
            prefix = name
        }
        let keyPrefix = currentPrefix  // the message is built only on error
        try expectLineEnd(after: "the value of \(keyPrefix.isEmpty ? Self.flat(parts) : keyPrefix + "." + Self.flat(parts))")
    }

    // MARK: Values

    /// A value whose key sits `depth` levels down; its array items or inline-table keys go one level further.
    private mutating func parseValue(depth: Int) throws(TOMLError) -> TOMLValue {
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
        guard depth < Self.maxDepth else { throw tooDeep(at: start) }
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
        guard depth < Self.maxDepth else { throw tooDeep(at: start) }
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
            let parts = try parseKey(levelsLeft: Self.maxDepth - depth)
            guard peek() == "=" else {
                throw error("expected '=' after the key \(Self.flat(parts)) in the inline table, found \(peek().map(Self.describe) ?? "the end of the file")")
            }
            i += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + parts.count)
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
        var child: [String: TOMLValue] = [:]
        if table[head] == nil {
            dotted.insert(childPath)
        } else if dotted.contains(childPath), case .inlineTable? = table[head] {
            // Taken out first, so changing it does not copy it (that was quadratic on long inline tables).
            child = takeInlineTable(&table, head)
        } else {
            return false
        }
        guard insert(value, at: parts.dropFirst(), into: &child, path: childPath, dotted: &dotted) else { return false }
        table[head] = .inlineTable(child)
        return true
    }

    /// Removes and returns the inline table at `key`, leaving no other reference to its storage.
    private static func takeInlineTable(_ table: inout [String: TOMLValue], _ key: String) -> [String: TOMLValue] {
        guard case .inlineTable(let t)? = table.removeValue(forKey: key) else { return [:] }
        return t
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
        if Self.isDateShaped(Array(word)), peek() == " ", let d = peek(1), ("0"..."9").contains(d), peek(3) == ":" {
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
        if Self.isPrefixedIntegerShaped(text) {
            throw error("\(text) is out of range for a 64-bit integer (at most 0x7FFFFFFFFFFFFFFF)", at: start)
        }
        if Self.isIntegerShaped(text) {
            let digits = text.drop { $0 == "+" || $0 == "-" }
            if digits.count > 1 && digits.first == "0" {
                throw error("\(text): leading zeros are not allowed in a decimal integer", at: start)
            }
            throw error("\(text) is out of range for a 64-bit integer", at: start)
        }
        if let value = Self.float(text) {
            guard value.isFinite else {
                throw error("\(text) is out of range for a 64-bit float (about ±1.8e308); write inf or -inf for infinity", at: start)
            }
            return .float(value)
        }
        switch Self.checkDateTime(Array(word)) {
        case .valid:
            // Keep the separator the author used when it was a space.
            return .datetime(String(String.UnicodeScalarView(scanner.scalars[start..<i])))
        case .invalid(let problem, let offset):
            throw error(problem, at: start + offset)
        case .notADate:
            break
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

    private static func isPrefixedIntegerShaped(_ text: String) -> Bool {
        for (prefix, digits) in [("0x", "0123456789abcdefABCDEF"), ("0o", "01234567"), ("0b", "01")] where text.hasPrefix(prefix) {
            return digitsOK(text.dropFirst(2), { digits.contains($0) })
        }
        return false
    }

    enum DateCheck: Equatable {
        /// Not shaped like a date or time at all.
        case notADate
        case valid
        /// Shaped like one, but wrong: what is wrong, and the offset of the wrong part in the word.
        case invalid(String, offset: Int)
    }

    private static func digit(_ s: Unicode.Scalar) -> Int? {
        ("0"..."9").contains(s) ? Int(s.value) - 48 : nil
    }

    /// The number written by `count` (at most 4) ASCII digits at `at`, if they are all there.
    private static func number(_ t: [Unicode.Scalar], _ at: Int, _ count: Int) -> Int? {
        guard at >= 0, count <= 4, at <= t.count - count else { return nil }
        var value = 0
        for k in at..<(at + count) {
            guard let d = digit(t[k]) else { return nil }
            value = value * 10 + d
        }
        return value
    }

    /// `YYYY-MM-DD`, digits in the right places (the values are not checked).
    static func isDateShaped(_ t: [Unicode.Scalar]) -> Bool {
        t.count == 10 && number(t, 0, 4) != nil && t[4] == "-" && number(t, 5, 2) != nil && t[7] == "-" && number(t, 8, 2) != nil
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Checks an offset date-time, local date-time, local date or local time (RFC 3339 as TOML 1.0 takes it):
    /// real calendar days (leap years included), hours 00-23, minutes 00-59, seconds 00-60, offsets -23:59 to +23:59.
    static func checkDateTime(_ t: [Unicode.Scalar]) -> DateCheck {
        let dateShaped = t.count >= 5 && number(t, 0, 4) != nil && t[4] == "-"
        let timeShaped = t.count >= 3 && number(t, 0, 2) != nil && t[2] == ":"
        guard dateShaped || timeShaped else { return .notADate }
        let text = String(String.UnicodeScalarView(t))
        let malformed = DateCheck.invalid(
            "\(text) is not a valid date or time (write 1979-05-27, 07:32:00, 1979-05-27T07:32:00 or 1979-05-27T07:32:00-07:00)",
            offset: 0)
        var pos = 0
        if dateShaped {
            guard t.count >= 10, isDateShaped(Array(t[0..<10])), let year = number(t, 0, 4), let month = number(t, 5, 2),
                let day = number(t, 8, 2)
            else { return malformed }
            guard (1...12).contains(month) else {
                return .invalid("\(text): month \(twoDigits(month)) does not exist (months are 01-12)", offset: 5)
            }
            let days = daysIn(month: month, year: year)
            guard (1...days).contains(day) else {
                return .invalid(
                    "\(text): day \(twoDigits(day)) does not exist in \(monthNames[month - 1]) \(year) (it has \(days) days)",
                    offset: 8)
            }
            if t.count == 10 { return .valid }
            guard t[10] == "T" || t[10] == "t" else { return malformed }
            pos = 11
        }
        guard let hour = number(t, pos, 2), pos + 2 < t.count, t[pos + 2] == ":", let minute = number(t, pos + 3, 2),
            pos + 5 < t.count, t[pos + 5] == ":", let second = number(t, pos + 6, 2)
        else { return malformed }
        guard hour <= 23 else { return .invalid("\(text): hour \(twoDigits(hour)) does not exist (hours are 00-23)", offset: pos) }
        guard minute <= 59 else {
            return .invalid("\(text): minute \(twoDigits(minute)) does not exist (minutes are 00-59)", offset: pos + 3)
        }
        guard second <= 60 else {
            return .invalid(
                "\(text): second \(twoDigits(second)) does not exist (seconds are 00-59, or 60 for a leap second)", offset: pos + 6)
        }
        pos += 8
        if pos < t.count && t[pos] == "." {
            let digitsStart = pos + 1
            pos = digitsStart
            while pos < t.count, digit(t[pos]) != nil { pos += 1 }
            guard pos > digitsStart else { return malformed }
        }
        if pos == t.count { return .valid }
        guard dateShaped else {
            return .invalid("\(text): a local time cannot have a UTC offset; give a date too (1979-05-27T07:32:00Z)", offset: pos)
        }
        if (t[pos] == "Z" || t[pos] == "z") && pos + 1 == t.count { return .valid }
        guard t[pos] == "+" || t[pos] == "-", t.count == pos + 6, let offsetHours = number(t, pos + 1, 2),
            t[pos + 3] == ":", let offsetMinutes = number(t, pos + 4, 2)
        else { return malformed }
        let offset = String(String.UnicodeScalarView(t[pos...]))
        guard offsetHours <= 23, offsetMinutes <= 59 else {
            return .invalid(
                "\(text): the UTC offset \(offset) is out of range (offsets go from -23:59 to +23:59, minutes 00-59)",
                offset: pos)
        }
        return .valid
    }
}
