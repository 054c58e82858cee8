// Public entry points for the fuzzer: DTLSRecordFilter and DTLSRecordPacker are internal to this module.
public enum DTLSDemuxFuzz {
    /// DTLS record handling on a datagram classified as DTLS (RFC 7983 first byte 20-63): the record filter that
    /// runs before OpenSSL sees the datagram, and the packer that splits OpenSSL's output into datagrams.
    public static func run(_ datagram: UnsafeRawBufferPointer) {
        for minimum in [16, 24] {
            switch DTLSRecordFilter.filter(datagram, minimumCiphertextLength: minimum) {
            case .unchanged:
                break
            case .filtered(let kept):
                guard kept.count < datagram.count else { fatalError("filter dropped a record but kept \(kept.count) of \(datagram.count) bytes") }
                // What survives the filter must pass it unchanged: filtering is idempotent.
                let again = kept.withUnsafeBytes { DTLSRecordFilter.filter($0, minimumCiphertextLength: minimum) }
                guard case .unchanged = again else { fatalError("filtering the filtered datagram dropped more records") }
            }
        }
        // Packing never loses, reorders or duplicates bytes, and only a datagram holding a single (over-long)
        // record exceeds the MTU.
        let bytes = Array(datagram)
        for mtu in [256, 1200] {
            var datagrams: [[UInt8]] = []
            DTLSRecordPacker.pack(bytes, mtu: mtu, into: &datagrams)
            guard Array(datagrams.joined()) == bytes else { fatalError("packer output differs from its input") }
            for d in datagrams {
                guard !d.isEmpty else { fatalError("packer produced an empty datagram") }
                if d.count > mtu {
                    var inner: [[UInt8]] = []
                    DTLSRecordPacker.pack(d, mtu: Int.max, into: &inner)
                    var records = 0
                    var offset = 0
                    while offset < d.count {
                        let length = d.count - offset >= 13 ? 13 + (Int(d[offset + 11]) << 8 | Int(d[offset + 12])) : d.count - offset
                        offset += min(length, d.count - offset)
                        records += 1
                    }
                    guard records == 1 else { fatalError("an over-MTU datagram holds \(records) records") }
                }
            }
        }
    }
}
