/// CRC-32 as used by FINGERPRINT (RFC 8489 §14.7 refers to ITU-T V.42 / ISO-HDLC, the zlib CRC):
/// reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF.
///
/// Byte-at-a-time with one 256-entry table: a ~100-byte STUN message costs ~100 table lookups,
/// far below the HMAC that usually accompanies it, so slicing-by-8 is not worth the extra tables.
enum CRC32 {
    /// The lookup table, built once on first use (`static let` initialisation is thread-safe).
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1 != 0) ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1) }
        return c
    }

    /// Continues a CRC over `bytes`. Start with `0` and pass the previous result to chain chunks.
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        table.withUnsafeBufferPointer { t in
            for b in bytes {
                // The index is a UInt8 and the table has 256 entries, so this can never be out of range.
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        return ~c
    }

    /// CRC-32 of a byte sequence.
    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let fast = bytes.withContiguousStorageIfAvailable { update(0, UnsafeRawBufferPointer($0)) }
        if let fast { return fast }
        let copy = Array(bytes)
        return copy.withUnsafeBytes { update(0, $0) }
    }
}
