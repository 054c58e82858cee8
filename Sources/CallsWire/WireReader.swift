/// Bounds-checked big-endian reads over a borrowed byte region.
///
/// Decoders run inside one `ByteBuffer.withUnsafeReadableBytes` call and read through this instead of
/// `ByteBuffer.getInteger(at:)`: each `getInteger` re-enters the buffer's storage and pays a dynamic
/// exclusivity check, which was ~20 % of decoding an ICE check. Every accessor here checks its range
/// and returns `nil` when it does not fit, so hostile lengths cannot read out of bounds.
struct WireReader {
    let bytes: UnsafeRawBufferPointer

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var count: Int { bytes.count }

    /// Whether `offset..<offset+length` lies inside the region (overflow-safe).
    @inline(__always)
    func contains(_ offset: Int, _ length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= bytes.count && length <= bytes.count - offset
    }

    @inline(__always)
    func u8(_ o: Int) -> UInt8? { contains(o, 1) ? bytes[o] : nil }

    @inline(__always)
    func u16(_ o: Int) -> UInt16? { contains(o, 2) ? UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1]) : nil }

    @inline(__always)
    func u32(_ o: Int) -> UInt32? {
        guard contains(o, 4) else { return nil }
        return UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3])
    }

    @inline(__always)
    func u64(_ o: Int) -> UInt64? {
        guard let h = u32(o), let l = u32(o + 4) else { return nil }
        return UInt64(h) << 32 | UInt64(l)
    }

    /// A copy of `length` bytes at `o`.
    func array(_ o: Int, _ length: Int) -> [UInt8]? {
        guard contains(o, length) else { return nil }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[o..<(o + length)]))
    }

    /// The sub-region `o..<o+length`.
    func region(_ o: Int, _ length: Int) -> UnsafeRawBufferPointer? {
        guard contains(o, length) else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[o..<(o + length)])
    }

    /// UTF-8 text, or `nil` if out of range or not valid UTF-8 (so such values stay `.raw` and round-trip).
    func text(_ o: Int, _ length: Int) -> String? {
        guard let r = region(o, length), isValidUTF8(r) else { return nil }
        // Validated above, so decoding cannot substitute U+FFFD and the String keeps the exact bytes.
        return r.withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
    }
}

/// RFC 3629 §4 well-formedness: no overlong forms, no surrogates, nothing above U+10FFFF.
/// (`String(validating:as:)` would do, but needs macOS 15 and the package supports macOS 14.)
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        let b0 = bytes[i]
        if b0 < 0x80 {
            i += 1
            continue
        }
        let need: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return false
        }
        guard n - i > need else { return false }
        let b1 = bytes[i + 1]
        guard b1 >= lower, b1 <= upper else { return false }
        var k = 2
        while k <= need {
            guard bytes[i + k] & 0xC0 == 0x80 else { return false }
            k += 1
        }
        i += need + 1
    }
    return true
}
