// Public entry point for the fuzzer: parse a TOML document and check what was parsed.
public enum TOMLFuzz {
    public static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        // The config loader reads files as UTF-8 text; invalid sequences become U+FFFD as with String(decoding:).
        let text = String(decoding: bytes, as: UTF8.self)
        guard let document = try? TOMLDocument(parsing: text, file: "fuzz.toml") else { return }
        let lines = text.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        for table in document.tables where !(1...lines).contains(table.line) {
            fatalError("table \(table.name) on line \(table.line) of a \(lines)-line document")
        }
        for entry in document.entries {
            guard (1...lines).contains(entry.line) else { fatalError("entry \(entry.key) on line \(entry.line) of \(lines)") }
            // The value written back as TOML parses to the same value (NaN is never equal to itself: skipped).
            if containsNaN(entry.value) { continue }
            let written = "x = " + entry.value.tomlText + "\n"
            guard let again = try? TOMLDocument(parsing: written, file: "round-trip.toml") else {
                fatalError("tomlText of \(entry.key) does not parse: \(written)")
            }
            guard again.entries.count == 1, again.entries[0].value == entry.value else {
                fatalError("tomlText round trip changed \(entry.key): \(entry.value) -> \(again.entries.map(\.value))")
            }
        }
    }

    private static func containsNaN(_ value: TOMLValue) -> Bool {
        switch value {
        case .float(let d): d.isNaN
        case .array(let items): items.contains(where: containsNaN)
        case .inlineTable(let table): table.values.contains(where: containsNaN)
        default: false
        }
    }
}
