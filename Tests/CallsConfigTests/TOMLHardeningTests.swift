import Foundation
import Testing

@testable import CallsConfig

private func resolve(_ text: String) -> ConfigResolution {
    CallsConfig.resolve(fileText: text, filePath: "c.toml")
}

private let tooDeep =
    "nested too deeply: more than 64 levels (table header parts, dotted key parts, arrays and inline tables count together); use fewer levels"

/// Item 1: nesting is bounded, so nothing recurses without limit on hostile input.
@Suite struct TOMLNestingLimitTests {
    @Test func fortyThousandPartDottedKeyIsRefused() {
        let key = Array(repeating: "a", count: 40_000).joined(separator: ".")
        // The 65th part starts at column 129 ("a." is two columns).
        #expect(failure(key + " = 1\n")?.description == "t.toml:1:129: " + tooDeep)
    }

    @Test func fortyThousandPartTableHeaderIsRefused() {
        let key = Array(repeating: "a", count: 40_000).joined(separator: ".")
        #expect(failure("x = 1\n[" + key + "]\ny = 2\n")?.description == "t.toml:2:130: " + tooDeep)
        #expect(failure("[[" + key + "]]\n")?.description == "t.toml:1:131: " + tooDeep)
    }

    @Test func headerPartsAndKeyPartsCountTogether() throws {
        let header = Array(repeating: "h", count: 62).joined(separator: ".")
        #expect(try parse("[\(header)]\nk.l = 1").entries.count == 1)
        #expect(failure("[\(header)]\nk.l.m = 1")?.description == "t.toml:2:5: " + tooDeep)
    }

    @Test func deepArraysAndInlineTablesAreRefused() {
        #expect(failure("a = " + String(repeating: "[", count: 40_000))?.description == "t.toml:1:68: " + tooDeep)
        #expect(failure("a = " + String(repeating: "{b=", count: 40_000))?.description == "t.toml:1:194: " + tooDeep)
        let inline = "a = {" + Array(repeating: "b", count: 70).joined(separator: ".") + " = 1}"
        #expect(failure(inline)?.description == "t.toml:1:132: " + tooDeep)
    }

    @Test func sixtyFourLevelsParsePrintAndCompare() throws {
        let key = Array(repeating: "a", count: 63).joined(separator: ".")
        let doc = try parse(key + " = 1\n")
        #expect(doc.entries.map(\.key) == [key])
        let arrays = "v = " + String(repeating: "[", count: 63) + "1" + String(repeating: "]", count: 63)
        let value = try #require(try parse(arrays)["v"]?.value)
        #expect(try parse("v = " + value.tomlText)["v"]?.value == value)
    }

    @Test func configLoadingReportsTheDeepKey() {
        let key = Array(repeating: "rtc", count: 40_000).joined(separator: ".")
        let r = resolve("[api]\n" + key + " = 1\n")
        #expect(r.diagnostics.map(\.description) == [
            "c.toml:2: error: TOML syntax: \(tooDeep) (column 253)\n  fix: Fix the syntax; see https://toml.io/en/v1.0.0."
        ])
    }
}

/// Item 2: size limit, and large input under it parses (in linear time; not timed here).
@Suite struct TOMLSizeLimitTests {
    @Test func aFileJustUnderTheLimitWithManyKeysParses() throws {
        var text = ""
        var count = 0
        while true {
            let line = "k\(count) = \(count)\n"
            if text.utf8.count + line.utf8.count > TOMLDocument.maxBytes { break }
            text += line
            count += 1
        }
        #expect(count > 60_000)
        let doc = try parse(text)
        #expect(doc.entries.count == count)
        #expect(doc.entries.last == TOMLEntry(key: "k\(count - 1)", value: .integer(Int64(count - 1)), line: count))
        // Every key is unknown to the config: one finding each, no suggestion for names like k123.
        let r = resolve(text)
        #expect(r.diagnostics.count == count)
        #expect(r.diagnostics.last?.message == "unknown key")
    }

    @Test func aLongInlineTableWithDottedKeysParses() throws {
        var parts: [String] = []
        for n in 0..<55_000 { parts.append("a.k\(n) = \(n)") }
        let text = "t = { " + parts.joined(separator: ", ") + " }\n"
        #expect(text.utf8.count < TOMLDocument.maxBytes)
        guard case .inlineTable(let t)? = try parse(text)["t"]?.value, case .inlineTable(let a)? = t["a"] else {
            Issue.record("t.a is not an inline table")
            return
        }
        #expect(a.count == 55_000)
        #expect(a["k54999"] == .integer(54_999))
    }

    @Test func aLongKeyAndStringUnderTheLimitParse() throws {
        let long = String(repeating: "x", count: 1_000_000)
        #expect(try parse(long + " = 1")[long]?.value == .integer(1))
        #expect(try parse("s = \"" + long + "\"")["s"]?.value == .string(long))
    }

    @Test func overSizeTextIsRefused() {
        let text = "a = \"" + String(repeating: "x", count: TOMLDocument.maxBytes) + "\"\n"
        #expect(
            failure(text)?.description
                == "t.toml:1:1: the document is 1048583 bytes, over the limit of 1048576 bytes; a config file is a few kilobytes: "
                + "check that this is the right file, and remove what does not belong in it")
    }
}

/// Item 4: dates and times that do not exist, and stray byte-order marks.
@Suite struct TOMLDateAndBOMTests {
    @Test(arguments: [
        ("d = 2023-02-30", "t.toml:1:13: 2023-02-30: day 30 does not exist in February 2023 (it has 28 days)"),
        ("d = 2023-02-29", "t.toml:1:13: 2023-02-29: day 29 does not exist in February 2023 (it has 28 days)"),
        ("d = 1900-02-29", "t.toml:1:13: 1900-02-29: day 29 does not exist in February 1900 (it has 28 days)"),
        ("d = 2023-04-31", "t.toml:1:13: 2023-04-31: day 31 does not exist in April 2023 (it has 30 days)"),
        ("d = 2023-01-00", "t.toml:1:13: 2023-01-00: day 00 does not exist in January 2023 (it has 31 days)"),
        ("d = 2023-13-01", "t.toml:1:10: 2023-13-01: month 13 does not exist (months are 01-12)"),
        ("d = 2023-00-01", "t.toml:1:10: 2023-00-01: month 00 does not exist (months are 01-12)"),
        ("d = 2023-02-30 07:00:00", "t.toml:1:13: 2023-02-30T07:00:00: day 30 does not exist in February 2023 (it has 28 days)"),
        ("d = 2023-01-01T24:00:00", "t.toml:1:16: 2023-01-01T24:00:00: hour 24 does not exist (hours are 00-23)"),
        ("d = 24:00:00", "t.toml:1:5: 24:00:00: hour 24 does not exist (hours are 00-23)"),
        ("d = 07:60:00", "t.toml:1:8: 07:60:00: minute 60 does not exist (minutes are 00-59)"),
        ("d = 07:00:61", "t.toml:1:11: 07:00:61: second 61 does not exist (seconds are 00-59, or 60 for a leap second)"),
        (
            "d = 2023-01-01T00:00:00+25:00",
            "t.toml:1:24: 2023-01-01T00:00:00+25:00: the UTC offset +25:00 is out of range (offsets go from -23:59 to +23:59, minutes 00-59)"
        ),
        (
            "d = 2023-01-01T00:00:00-24:00",
            "t.toml:1:24: 2023-01-01T00:00:00-24:00: the UTC offset -24:00 is out of range (offsets go from -23:59 to +23:59, minutes 00-59)"
        ),
        (
            "d = 2023-01-01T00:00:00+05:60",
            "t.toml:1:24: 2023-01-01T00:00:00+05:60: the UTC offset +05:60 is out of range (offsets go from -23:59 to +23:59, minutes 00-59)"
        ),
        ("d = 07:32:00Z", "t.toml:1:13: 07:32:00Z: a local time cannot have a UTC offset; give a date too (1979-05-27T07:32:00Z)"),
        (
            "d = 2023-01-01T07:32",
            "t.toml:1:5: 2023-01-01T07:32 is not a valid date or time (write 1979-05-27, 07:32:00, 1979-05-27T07:32:00 or 1979-05-27T07:32:00-07:00)"
        ),
    ])
    func impossibleDatesAndTimesAreRefused(input: String, expected: String) {
        #expect(failure(input)?.description == expected)
    }

    @Test func realDatesAreKept() throws {
        let doc = try parse(
            """
            a = 2024-02-29
            b = 2000-02-29T23:59:60.5+23:59
            c = 1979-05-27T00:00:00-23:59
            d = 2023-12-31 23:59:59z
            e = 00:00:00.000001
            """)
        #expect(doc["a"]?.value == .datetime("2024-02-29"))
        #expect(doc["b"]?.value == .datetime("2000-02-29T23:59:60.5+23:59"))
        #expect(doc["c"]?.value == .datetime("1979-05-27T00:00:00-23:59"))
        #expect(doc["d"]?.value == .datetime("2023-12-31 23:59:59z"))
        #expect(doc["e"]?.value == .datetime("00:00:00.000001"))
    }

    @Test func byteOrderMarkOnlyAtTheStart() throws {
        #expect(try parse("\u{FEFF}a = 1\n")["a"]?.value == .integer(1))
        let message =
            "a byte-order mark (U+FEFF) is only allowed as the very first character of the file; delete it "
            + "(it often comes from pasting one file into another; in a string, write \\uFEFF)"
        #expect(failure("a = 1\n\u{FEFF}b = 2\n")?.description == "t.toml:2:1: " + message)
        #expect(failure("a = \"x\u{FEFF}\"\n")?.description == "t.toml:1:7: " + message)
        #expect(failure("\u{FEFF}\u{FEFF}a = 1\n")?.description == "t.toml:1:2: " + message)
        #expect(failure("a = 1 # \u{FEFF}\n")?.description == "t.toml:1:9: " + message)
        #expect(try parse("a = \"\\uFEFF\"\n")["a"]?.value == .string("\u{FEFF}"))
    }
}

/// Item 5: numbers at and past the edges give errors, never traps.
@Suite struct TOMLNumberEdgeTests {
    @Test(arguments: [
        ("a = 0xFFFFFFFFFFFFFFFF", "t.toml:1:5: 0xFFFFFFFFFFFFFFFF is out of range for a 64-bit integer (at most 0x7FFFFFFFFFFFFFFF)"),
        ("a = 0x8000_0000_0000_0000", "t.toml:1:5: 0x8000_0000_0000_0000 is out of range for a 64-bit integer (at most 0x7FFFFFFFFFFFFFFF)"),
        ("a = 0o1000000000000000000000", "t.toml:1:5: 0o1000000000000000000000 is out of range for a 64-bit integer (at most 0x7FFFFFFFFFFFFFFF)"),
        (
            "a = 0b1" + String(repeating: "0", count: 63),
            "t.toml:1:5: 0b1" + String(repeating: "0", count: 63) + " is out of range for a 64-bit integer (at most 0x7FFFFFFFFFFFFFFF)"
        ),
        ("a = 9223372036854775808", "t.toml:1:5: 9223372036854775808 is out of range for a 64-bit integer"),
        ("a = -9223372036854775809", "t.toml:1:5: -9223372036854775809 is out of range for a 64-bit integer"),
        ("a = 99999999999999999999999999999999", "t.toml:1:5: 99999999999999999999999999999999 is out of range for a 64-bit integer"),
        ("a = 1e400", "t.toml:1:5: 1e400 is out of range for a 64-bit float (about ±1.8e308); write inf or -inf for infinity"),
        ("a = -1.5e99999999999999999999", "t.toml:1:5: -1.5e99999999999999999999 is out of range for a 64-bit float (about ±1.8e308); write inf or -inf for infinity"),
    ])
    func overflowingLiteralsAreErrors(input: String, expected: String) {
        #expect(failure(input)?.description == expected)
    }

    @Test func extremeLiteralsThatFitAreKept() throws {
        let doc = try parse(
            """
            max = 9223372036854775807
            min = -9223372036854775808
            hex = 0x7FFF_FFFF_FFFF_FFFF
            oct = 0o777777777777777777777
            tiny = 1e-400
            big = 1.7e308
            """)
        #expect(doc["max"]?.value == .integer(.max))
        #expect(doc["min"]?.value == .integer(.min))
        #expect(doc["hex"]?.value == .integer(.max))
        #expect(doc["oct"]?.value == .integer(.max))
        #expect(doc["tiny"]?.value == .float(0))
        #expect(doc["big"]?.value == .float(1.7e308))
    }

}
