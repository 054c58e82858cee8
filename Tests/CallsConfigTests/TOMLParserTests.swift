import Testing

@testable import CallsConfig

/// Parses `text` as `t.toml` (shared by the TOML test files).
func parse(_ text: String) throws(TOMLError) -> TOMLDocument {
    try TOMLDocument(parsing: text, file: "t.toml")
}

/// The parse error of `text`, nil when it parses.
func failure(_ text: String) -> TOMLError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct TOMLParserTests {
    @Test func keysTablesAndDottedKeysFlatten() throws {
        let doc = try parse(
            """
            # top comment
            title = "x" # trailing
            [api]
            http.listen_address = ":8045"
            security.enable_admin = true

            [rtc]
            ice_port_udp = 8_443
            "quoted.key" = 1
            'lit' = 2
            [a.b.c]
            d = 1.5
            """)
        #expect(doc.entries.map(\.key) == [
            "title", "api.http.listen_address", "api.security.enable_admin", "rtc.ice_port_udp", "rtc.\"quoted.key\"",
            "rtc.lit", "a.b.c.d",
        ])
        #expect(doc["api.http.listen_address"]?.value == .string(":8045"))
        #expect(doc["api.http.listen_address"]?.line == 4)
        #expect(doc["rtc.ice_port_udp"]?.value == .integer(8443))
        #expect(doc["a.b.c.d"]?.value == .float(1.5))
        #expect(doc.tables.map(\.name) == ["api", "rtc", "a.b.c"])
    }

    @Test func arraysOfTablesAreIndexed() throws {
        let doc = try parse(
            """
            [[servers]]
            url = "a"
            [servers.opts]
            x = 1
            [[servers]]
            url = "b"
            [[servers.ports]]
            p = 1
            """)
        #expect(doc.entries.map(\.key) == ["servers[0].url", "servers[0].opts.x", "servers[1].url", "servers[1].ports[0].p"])
    }

    @Test func strings() throws {
        let doc = try parse(
            #"""
            a = "tab\there \"q\" \\ \u00E9 \U0001F600"
            b = 'C:\path\no escapes'
            c = """
            line1
            line2"""
            d = """one \
                  two"""
            e = '''
            raw \n ''text'''
            f = """quote at end"""""
            """#)
        #expect(doc["a"]?.value == .string("tab\there \"q\" \\ é 😀"))
        #expect(doc["b"]?.value == .string(#"C:\path\no escapes"#))
        #expect(doc["c"]?.value == .string("line1\nline2"))
        #expect(doc["d"]?.value == .string("one two"))
        #expect(doc["e"]?.value == .string("raw \\n ''text"))
        #expect(doc["f"]?.value == .string("quote at end\"\""))
    }

    @Test func numbersBoolsDates() throws {
        let doc = try parse(
            """
            i1 = +99
            i2 = -17
            i3 = 1_000
            h = 0xDEAD_beef
            o = 0o755
            b = 0b1101
            f1 = 3.14
            f2 = -0.01
            f3 = 5e+22
            f4 = 6.626e-34
            f5 = inf
            f6 = -inf
            t = true
            n = false
            d1 = 1979-05-27T07:32:00Z
            d2 = 1979-05-27 07:32:00.999
            d3 = 1979-05-27
            d4 = 07:32:00
            zero = 0
            """)
        #expect(doc["i1"]?.value == .integer(99))
        #expect(doc["i2"]?.value == .integer(-17))
        #expect(doc["i3"]?.value == .integer(1000))
        #expect(doc["h"]?.value == .integer(0xDEAD_BEEF))
        #expect(doc["o"]?.value == .integer(0o755))
        #expect(doc["b"]?.value == .integer(13))
        #expect(doc["f1"]?.value == .float(3.14))
        #expect(doc["f2"]?.value == .float(-0.01))
        #expect(doc["f3"]?.value == .float(5e22))
        #expect(doc["f4"]?.value == .float(6.626e-34))
        #expect(doc["f5"]?.value == .float(.infinity))
        #expect(doc["f6"]?.value == .float(-.infinity))
        #expect(doc["t"]?.value == .bool(true))
        #expect(doc["n"]?.value == .bool(false))
        #expect(doc["d1"]?.value == .datetime("1979-05-27T07:32:00Z"))
        #expect(doc["d2"]?.value == .datetime("1979-05-27 07:32:00.999"))
        #expect(doc["d3"]?.value == .datetime("1979-05-27"))
        #expect(doc["d4"]?.value == .datetime("07:32:00"))
        #expect(doc["zero"]?.value == .integer(0))
    }

    @Test func arraysAndInlineTables() throws {
        let doc = try parse(
            """
            ports = [ 1, 2,
              3, # comment
            ]
            nested = [[1], ["a"]]
            ice = { urls = ["stun:a"], cred.user = "u", cred.pass = "p" }
            empty = {}
            """)
        #expect(doc["ports"]?.value == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(doc["nested"]?.value == .array([.array([.integer(1)]), .array([.string("a")])]))
        #expect(
            doc["ice"]?.value
                == .inlineTable([
                    "urls": .array([.string("stun:a")]),
                    "cred": .inlineTable(["user": .string("u"), "pass": .string("p")]),
                ]))
        #expect(doc["empty"]?.value == .inlineTable([:]))
    }

    @Test func crlfLineEndings() throws {
        let doc = try parse("a = 1\r\n[t]\r\nb = \"x\"\r\n")
        #expect(doc["t.b"]?.value == .string("x"))
        #expect(doc["t.b"]?.line == 3)
    }

    @Test(arguments: [
        ("a = 1\na = 2", "t.toml:2:1: duplicate key a (first set at line 1)"),
        ("[t]\nx = 1\n[t]", "t.toml:3:1: table [t] is defined twice (first at line 1)"),
        ("[a]\nb.c = 1\n[a.b]", "t.toml:3:1: table [a.b] is defined twice (first at line 2)"),
        ("a = 1\n[a]", "t.toml:2:1: [a]: key a is already a value (line 1)"),
        ("[[a]]\n[a]", "t.toml:2:1: [a]: a is already an array of tables (line 1)"),
        ("[a]\n[[a]]", "t.toml:2:1: [[a]]: a is already a table (line 1), not an array of tables"),
        ("[a.b.c]\nz = 1\n[a]\nb.c.t = 2", "t.toml:4:1: cannot add to the table a.b with a dotted key: it is defined by a header (line 1)"),
        ("a = \"x\nb = 1", "t.toml:1:5: unterminated string: a basic string ends on its line (use \"\"\" for several lines)"),
        ("a = \"\\q\"", "t.toml:1:6: unknown escape sequence \\q (allowed: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)"),
        ("a = 01", "t.toml:1:5: 01: leading zeros are not allowed in a decimal integer"),
        ("a = \"x", "t.toml:1:5: unterminated string (opened here)"),
        ("a = 1__0", "t.toml:1:5: 1__0 is not a valid number, boolean or date"),
        ("a = 9223372036854775808", "t.toml:1:5: 9223372036854775808 is out of range for a 64-bit integer"),
        ("a = hello", "t.toml:1:5: hello is not a value; strings need quotes: \"hello\""),
        ("a = 1 b = 2", "t.toml:1:7: expected a new line after the value of a, found 'b'"),
        ("a =", "t.toml:1:4: expected a value, found the end of the file"),
        ("a = [1, 2", "t.toml:1:5: unterminated array (opened here)"),
        ("a = {x = 1,}", "t.toml:1:12: a trailing comma is not allowed in an inline table"),
        ("a = {x = 1, x = 2}", "t.toml:1:13: duplicate key x in the inline table"),
        ("t = {a = 1}\n[t]", "t.toml:2:1: [t]: key t is already a value (line 1)"),
        ("[t\nx=1", "t.toml:1:3: expected ']' to close the table header, found end of line"),
        ("= 1", "t.toml:1:1: expected a key, found '=' (bare keys use A-Z a-z 0-9 _ -; quote others)"),
        ("k.x = 1\nk = 2", "t.toml:2:1: duplicate key k (first set at line 1)"),
        ("a = 1.", "t.toml:1:5: 1. is not a valid number, boolean or date"),
    ])
    func errorsHaveLineColumnAndMessage(input: String, expected: String) {
        #expect(failure(input)?.description == expected)
    }

    @Test func byteOrderMarkIsSkipped() throws {
        let doc = try parse("\u{FEFF}a = 1\n")
        #expect(doc["a"]?.value == .integer(1))
    }

    @Test func implicitTableMayBeDefinedLater() throws {
        let doc = try parse("[a.b]\nx = 1\n[a]\ny = 2")
        #expect(doc.entries.map(\.key) == ["a.b.x", "a.y"])
    }

    @Test func subTableOfDottedTableIsAllowed() throws {
        let doc = try parse("[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true")
        #expect(doc["fruit.apple.texture.smooth"]?.value == .bool(true))
    }

    @Test func tomlTextRoundTrips() throws {
        let values: [TOMLValue] = [
            .string("a\"b\\c\n\u{01}é"), .integer(-5), .float(1.0), .float(2.5e-8), .bool(true),
            .array([.integer(1), .string("x")]), .inlineTable(["k.x": .integer(1), "b": .bool(false)]),
        ]
        for value in values {
            let doc = try parse("v = \(value.tomlText)")
            #expect(doc["v"]?.value == value)
        }
    }

    /// Truncations, byte flips and random junk must produce a value or a TOMLError, never a trap.
    @Test func malformedInputNeverTraps() {
        let seed = #"""
            [api]
            http.listen_address = ":8045"
            [[servers]]
            url = "turn:x?transport=udp" # c
            s = """multi
            line"""
            l = '''lit'''
            n = [1, 0x1F, 1e3, -inf, {a = 1}, 1979-05-27T07:32:00Z]
            """#
        let scalars = Array(seed.unicodeScalars)
        var inputs: [String] = []
        for cut in 0...scalars.count { inputs.append(String(String.UnicodeScalarView(scalars[..<cut]))) }
        let junk: [Unicode.Scalar] = ["[", "]", "{", "}", "\"", "'", "=", ".", ",", "#", "\n", "\r", "\\", "\u{0}", " ", "x", "1", "_", "-", "+", ":", "é"]
        var rng = SplitMix(seed: 7)
        for _ in 0..<3000 {
            var copy = scalars
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(copy.count))
                copy[at] = junk[Int(rng.next() % UInt64(junk.count))]
            }
            inputs.append(String(String.UnicodeScalarView(copy)))
        }
        for _ in 0..<500 {
            let length = Int(rng.next() % 40)
            inputs.append(String(String.UnicodeScalarView((0..<length).map { _ in junk[Int(rng.next() % UInt64(junk.count))] })))
        }
        inputs.append(String(repeating: "[", count: 10_000))
        inputs.append("a = " + String(repeating: "[", count: 10_000))
        inputs.append("a = " + String(repeating: "{b=", count: 10_000))
        var failures = 0
        for input in inputs {
            do { _ = try parse(input) } catch {
                failures += 1
                #expect(error.line >= 1 && error.column >= 1)
            }
        }
        #expect(failures > 100)
    }
}

/// A small deterministic generator for the sweep.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
