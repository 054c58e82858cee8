import Foundation
import NIOCore

@testable import CallsWire

/// Loads a hex fixture from `Fixtures/` (comment lines starting with `#` and whitespace ignored).
func fixture(_ name: String) throws -> [UInt8] {
    guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw FixtureError(message: "Fixtures folder missing from test bundle")
    }
    let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
    let hexText = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: " ")
    guard let bytes = parseHex(hexText) else { throw FixtureError(message: "bad hex in \(name)") }
    return bytes
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func hexBytes(_ s: String) -> [UInt8] { parseHex(s) ?? [] }

/// SplitMix64: tiny, seedable, good enough to drive property tests reproducibly.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    /// `count` random bytes, eight per generator call (keeps debug-build tests fast).
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count {
            let word = next()
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        out.removeLast(out.count - count)
        return out
    }

    mutating func asciiString(maxLength: Int) -> String {
        let n = Int.random(in: 0...maxLength, using: &self)
        return String(decoding: (0..<n).map { _ in UInt8.random(in: 0x21...0x7E, using: &self) }, as: UTF8.self)
    }

    /// Mixed-script UTF-8 text without trailing NULs, so it survives ERROR-CODE's NUL stripping.
    mutating func unicodeString(maxScalars: Int) -> String {
        let pool: [Unicode.Scalar] = ["a", "Z", "0", ":", " ", "é", "ß", "マ", "ト", "😀", "\u{00AD}", "\u{2168}", "\u{0}"]
        let n = Int.random(in: 0...maxScalars, using: &self)
        var s = String.UnicodeScalarView()
        for _ in 0..<n { s.append(pool[Int.random(in: 0..<pool.count, using: &self)]) }
        while s.last == "\u{0}" { s.removeLast() }
        return String(s)
    }
}
