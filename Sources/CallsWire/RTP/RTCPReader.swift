import NIOCore

/// RTCP packet type numbers (RFC 3550 §12.1, RFC 4585 §6.1).
public enum RTCPPacketType {
    /// Sender Report, RFC 3550 §6.4.1.
    public static let senderReport: UInt8 = 200
    /// Receiver Report, RFC 3550 §6.4.2.
    public static let receiverReport: UInt8 = 201
    /// Source Description, RFC 3550 §6.5.
    public static let sourceDescription: UInt8 = 202
    /// Goodbye, RFC 3550 §6.6.
    public static let bye: UInt8 = 203
    /// Application-defined, RFC 3550 §6.7.
    public static let application: UInt8 = 204
    /// Transport-layer feedback (RTPFB), RFC 4585 §6.2.
    public static let transportFeedback: UInt8 = 205
    /// Payload-specific feedback (PSFB), RFC 4585 §6.3.
    public static let payloadSpecificFeedback: UInt8 = 206
    /// Extended Report (XR), RFC 3611.
    public static let extendedReport: UInt8 = 207
}

/// Feedback message types (the FMT field in the count position, RFC 4585 §6.1).
public enum RTCPFeedbackFormat {
    /// RTPFB FMT 1: Generic NACK, RFC 4585 §6.2.1.
    public static let genericNACK: UInt8 = 1
    /// RTPFB FMT 15: transport-wide congestion control feedback
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
    public static let transportWideCC: UInt8 = 15
    /// PSFB FMT 1: Picture Loss Indication, RFC 4585 §6.3.1.
    public static let pictureLossIndication: UInt8 = 1
    /// PSFB FMT 4: Full Intra Request, RFC 5104 §4.3.1.
    public static let fullIntraRequest: UInt8 = 4
    /// PSFB FMT 15: application layer feedback; REMB when the FCI starts with "REMB"
    /// (draft-alvestrand-rmcat-remb-03 §2.2).
    public static let applicationLayer: UInt8 = 15
}

/// One packet of a compound RTCP packet, as found by ``RTCPReader``: its header fields and where its bytes are.
///
/// This is a *view*: `bytes` and `body` point into the buffer given to the reader and are only valid while that
/// buffer is (inside the `withUnsafeBytes` / `withUnsafeReadableBytes` closure that produced it). Pass it to the
/// typed decoders (``RTCPSenderReport``, ``RTCPReceiverReport``, ``RTCPGenericNACK``, ...) to read its contents.
public struct RTCPPacket {
    /// The packet type (RFC 3550 §6.4), 192–223; see ``RTCPPacketType``.
    public let packetType: UInt8
    /// The 5-bit count field: report count (SR/RR), source count (SDES/BYE), subtype (APP) or FMT (RFC 4585 §6.1).
    public let count: UInt8
    /// Offset of the packet's first byte from the start of the compound packet.
    public let offset: Int
    /// Length of the packet in bytes from its length field ((words + 1) × 4), padding included.
    public let length: Int
    /// Number of padding bytes at the end of the packet (0 unless the P bit is set; RFC 3550 §6.4.1).
    public let paddingLength: Int
    /// The whole packet: the 4-byte header, the contents and any padding.
    public let bytes: UnsafeRawBufferPointer

    /// The feedback message type; the same field as ``count`` (RFC 4585 §6.1).
    public var format: UInt8 { count }

    /// Whether the P bit was set.
    public var hasPadding: Bool { paddingLength > 0 }

    /// The contents after the 4-byte header, without padding. For every type used by WebRTC this starts with
    /// the sender's SSRC.
    public var body: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[4..<(length - paddingLength)])
    }

    /// The first 32-bit word after the header (the sender SSRC for SR, RR, RTPFB, PSFB, APP; the first
    /// source for SDES and BYE), or nil when the packet has no contents.
    public var firstSSRC: UInt32? {
        let b = body
        return b.count >= 4 ? RTCPBytes.u32(b, 0) : nil
    }
}

/// Why ``RTCPReader`` stopped before the end of its input.
public struct RTCPReadError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case truncatedHeader, badVersion, badPacketType, lengthBeyondInput, badPadding, tooManyPackets
    }
    private let code: Code
    /// The offset of the packet that could not be read.
    public let offset: Int

    private init(_ code: Code, _ offset: Int) {
        self.code = code
        self.offset = offset
    }

    /// Fewer than 4 bytes remain, so no header fits.
    public static func truncatedHeader(at offset: Int) -> Self { .init(.truncatedHeader, offset) }
    /// The version field is not 2 (RFC 3550 §6.4.1).
    public static func badVersion(at offset: Int) -> Self { .init(.badVersion, offset) }
    /// The packet type is outside 192–223 (RFC 5761 §4), so this is not RTCP.
    public static func badPacketType(at offset: Int) -> Self { .init(.badPacketType, offset) }
    /// The length field points past the end of the input.
    public static func lengthBeyondInput(at offset: Int) -> Self { .init(.lengthBeyondInput, offset) }
    /// The P bit is set but the padding count is 0 or larger than the packet's contents.
    public static func badPadding(at offset: Int) -> Self { .init(.badPadding, offset) }
    /// More packets than the reader's limit.
    public static func tooManyPackets(at offset: Int) -> Self { .init(.tooManyPackets, offset) }

    /// A short English description for logs.
    public var description: String {
        let what =
            switch code {
            case .truncatedHeader: "truncated RTCP header"
            case .badVersion: "RTCP version is not 2"
            case .badPacketType: "not an RTCP packet type (192-223)"
            case .lengthBeyondInput: "RTCP length field exceeds the input"
            case .badPadding: "bad RTCP padding count"
            case .tooManyPackets: "too many packets in compound RTCP"
            }
        return "\(what) at offset \(offset)"
    }
}

/// Iterates the packets of a compound RTCP packet (RFC 3550 §6.1) without allocating.
///
/// Each packet is validated before it is returned: version 2, packet type 192–223, a length field that fits the
/// remaining input and, when the P bit is set, a padding count between 1 and the contents' size. Iteration stops
/// at the end of the input or at the first malformed packet; ``error`` then tells which. Packets already returned
/// stay valid views. Decoding is up to the typed decoders. The reader does not enforce RFC 3550's "SR or RR
/// first" rule, since reduced-size RTCP (RFC 5506), which WebRTC negotiates, drops it.
///
/// The reader holds `bytes` without owning it: use it only inside the closure that provided the pointer.
///
/// ```swift
/// buffer.withUnsafeReadableBytes { raw in
///     var reader = RTCPReader(raw)
///     while let packet = reader.next() {
///         if let pli = RTCPPictureLossIndication(packet) { ... }
///     }
/// }
/// ```
public struct RTCPReader: IteratorProtocol, Sequence {
    /// The compound packet being read.
    public let bytes: UnsafeRawBufferPointer
    /// Offset of the next packet to read.
    public private(set) var offset: Int = 0
    /// Packets returned so far.
    public private(set) var packetCount: Int = 0
    /// Why reading stopped early, or nil while reading or after a clean end.
    public private(set) var error: RTCPReadError?
    /// The most packets this reader returns (bounds work on hostile input; 4-byte packets would allow 375 per MTU).
    public let limit: Int

    /// A reader over the compound packet in `bytes`, returning at most `limit` packets.
    public init(_ bytes: UnsafeRawBufferPointer, limit: Int = 64) {
        self.bytes = bytes
        self.limit = limit
    }

    /// True once the input was read to its end with no error.
    public var isAtEnd: Bool { error == nil && offset >= bytes.count }

    /// The next valid packet, or nil at the end of the input or at the first malformed packet (see ``error``).
    public mutating func next() -> RTCPPacket? {
        guard error == nil, offset < bytes.count else { return nil }
        let start = offset
        let remaining = bytes.count - start
        guard remaining >= 4 else { return fail(.truncatedHeader(at: start)) }
        let b0 = bytes[start]
        let pt = bytes[start + 1]
        guard b0 >> 6 == 2 else { return fail(.badVersion(at: start)) }
        guard pt >= 192, pt <= 223 else { return fail(.badPacketType(at: start)) }
        let length = (Int(bytes[start + 2]) << 8 | Int(bytes[start + 3])) * 4 + 4
        guard length <= remaining else { return fail(.lengthBeyondInput(at: start)) }
        var padding = 0
        if b0 & 0x20 != 0 {
            padding = Int(bytes[start + length - 1])
            guard padding >= 1, padding <= length - 4 else { return fail(.badPadding(at: start)) }
        }
        guard packetCount < limit else { return fail(.tooManyPackets(at: start)) }
        packetCount += 1
        offset = start + length
        return RTCPPacket(
            packetType: pt, count: b0 & 0x1F, offset: start, length: length, paddingLength: padding,
            bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
    }

    private mutating func fail(_ e: RTCPReadError) -> RTCPPacket? {
        error = e
        return nil
    }

    /// Checks a whole compound packet: the number of packets when every one is valid and there is at least one,
    /// otherwise nil.
    public static func validate(_ bytes: UnsafeRawBufferPointer, limit: Int = 64) -> Int? {
        var reader = RTCPReader(bytes, limit: limit)
        while reader.next() != nil {}
        return reader.isAtEnd && reader.packetCount > 0 ? reader.packetCount : nil
    }

    /// Runs `body` with a reader over the readable bytes of `buffer` (the buffer is not moved).
    public static func withReader<R>(
        over buffer: ByteBuffer, limit: Int = 64, _ body: (inout RTCPReader) throws -> R
    ) rethrows -> R {
        try buffer.withUnsafeReadableBytes { raw in
            var reader = RTCPReader(raw, limit: limit)
            return try body(&reader)
        }
    }
}

/// Big-endian reads from raw bytes; callers check bounds first.
enum RTCPBytes {
    @inline(__always)
    static func u16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 {
        UInt16(p[i]) << 8 | UInt16(p[i + 1])
    }

    @inline(__always)
    static func u24(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(p[i]) << 16 | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2])
    }

    @inline(__always)
    static func u32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
    }

    @inline(__always)
    static func u64(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt64 {
        UInt64(u32(p, i)) << 32 | UInt64(u32(p, i + 4))
    }
}

// Views hold pointers into a buffer borrowed for the duration of a closure: they must not cross concurrency domains.
@available(*, unavailable)
extension RTCPPacket: Sendable {}

@available(*, unavailable)
extension RTCPReader: Sendable {}
