import NIOCore

/// The fixed RTP header fields (RFC 3550 §5.1) and where the payload starts.
///
/// Parsing is bounds-checked and never traps: anything that is not a version-2 packet whose whole header (CSRCs and
/// extension, §5.3.1) fits returns nil. Padding (§5.1 P bit) is reported, not removed.
public struct RTPHeader: Hashable, Sendable {
    public static let fixedLength = 12

    public var padding: Bool
    public var hasExtension: Bool
    public var csrcCount: Int
    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    /// Bytes from the start of the packet to the payload: fixed header, CSRCs and the extension.
    public var headerLength: Int
    /// The extension's profile word (0xBEDE for one-byte, 0x100x for two-byte, RFC 8285), if present.
    public var extensionProfile: UInt16?

    public init(
        marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32
    ) {
        self.padding = false
        self.hasExtension = false
        self.csrcCount = 0
        self.marker = marker
        self.payloadType = payloadType & 0x7F
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.headerLength = Self.fixedLength
        self.extensionProfile = nil
    }

    /// Parses the header at the start of `bytes`.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.fixedLength else { return nil }
        let b0 = bytes[0]
        let b1 = bytes[1]
        guard b0 >> 6 == 2 else { return nil }
        padding = b0 & 0x20 != 0
        hasExtension = b0 & 0x10 != 0
        csrcCount = Int(b0 & 0x0F)
        marker = b1 & 0x80 != 0
        payloadType = b1 & 0x7F
        sequenceNumber = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        timestamp = Self.readUInt32(bytes, at: 4)
        ssrc = Self.readUInt32(bytes, at: 8)
        var length = Self.fixedLength + 4 * csrcCount
        extensionProfile = nil
        if hasExtension {
            // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words.
            guard bytes.count >= length + 4 else { return nil }
            extensionProfile = UInt16(bytes[length]) << 8 | UInt16(bytes[length + 1])
            let words = Int(bytes[length + 2]) << 8 | Int(bytes[length + 3])
            length += 4 + 4 * words
        }
        guard length <= bytes.count else { return nil }
        headerLength = length
    }

    /// Parses the header at the start of `bytes`.
    public init?(parsing bytes: [UInt8]) {
        guard let h = bytes.withUnsafeBytes({ RTPHeader(parsing: $0) }) else { return nil }
        self = h
    }

    /// Parses the header at the reader index of `buffer` (the buffer is not moved).
    public init?(parsing buffer: ByteBuffer) {
        guard let h = buffer.withUnsafeReadableBytes({ RTPHeader(parsing: $0) }) else { return nil }
        self = h
    }

    /// Writes the 12-byte fixed header (no CSRCs, no extension) at the writer index.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0x80 | (padding ? 0x20 : 0)))
        buffer.writeInteger(UInt8((marker ? 0x80 : 0) | (payloadType & 0x7F)))
        buffer.writeInteger(sequenceNumber)
        buffer.writeInteger(timestamp)
        buffer.writeInteger(ssrc)
    }

    /// The 12-byte fixed header (no CSRCs, no extension).
    public var bytes: [UInt8] {
        var b = ByteBuffer()
        write(into: &b)
        return Array(b.readableBytesView)
    }

    private static func readUInt32(_ p: UnsafeRawBufferPointer, at i: Int) -> UInt32 {
        UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
    }
}

/// In-place rewrites of RTP header fields, for forwarding without re-serialising. Each returns false (and changes
/// nothing) when the bytes are not an RTP packet with a complete fixed header.
public enum RTPRewriter {
    /// Replaces the SSRC (bytes 8–11).
    @discardableResult
    public static func setSSRC(_ ssrc: UInt32, in packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard packet.count >= RTPHeader.fixedLength, packet[0] >> 6 == 2 else { return false }
        packet[8] = UInt8(truncatingIfNeeded: ssrc >> 24)
        packet[9] = UInt8(truncatingIfNeeded: ssrc >> 16)
        packet[10] = UInt8(truncatingIfNeeded: ssrc >> 8)
        packet[11] = UInt8(truncatingIfNeeded: ssrc)
        return true
    }

    /// Replaces the sequence number (bytes 2–3).
    @discardableResult
    public static func setSequenceNumber(_ sequence: UInt16, in packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard packet.count >= RTPHeader.fixedLength, packet[0] >> 6 == 2 else { return false }
        packet[2] = UInt8(truncatingIfNeeded: sequence >> 8)
        packet[3] = UInt8(truncatingIfNeeded: sequence)
        return true
    }

    /// Replaces the timestamp (bytes 4–7).
    @discardableResult
    public static func setTimestamp(_ timestamp: UInt32, in packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard packet.count >= RTPHeader.fixedLength, packet[0] >> 6 == 2 else { return false }
        packet[4] = UInt8(truncatingIfNeeded: timestamp >> 24)
        packet[5] = UInt8(truncatingIfNeeded: timestamp >> 16)
        packet[6] = UInt8(truncatingIfNeeded: timestamp >> 8)
        packet[7] = UInt8(truncatingIfNeeded: timestamp)
        return true
    }

    /// Replaces the payload type (keeps the marker bit).
    @discardableResult
    public static func setPayloadType(_ pt: UInt8, in packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard packet.count >= RTPHeader.fixedLength, packet[0] >> 6 == 2 else { return false }
        packet[1] = (packet[1] & 0x80) | (pt & 0x7F)
        return true
    }
}

/// The common header of one RTCP packet (RFC 3550 §6.4): version, count, packet type, length, and the sender SSRC
/// that every RTCP packet type used by WebRTC carries in its first word after the header.
public struct RTCPHeader: Hashable, Sendable {
    public static let length = 8

    public var padding: Bool
    /// Reception report count, or FMT for feedback packets (RFC 4585 §6.1).
    public var count: UInt8
    /// 200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP, 205 RTPFB, 206 PSFB, ...
    public var packetType: UInt8
    /// Length of this packet in bytes, from its length field ((words + 1) × 4).
    public var packetLength: Int
    public var senderSSRC: UInt32

    /// Parses the first packet of a (compound) RTCP packet; nil unless version 2, a packet type in 192–223 and a
    /// length field that fits the input.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length, bytes[0] >> 6 == 2, (192...223).contains(bytes[1]) else { return nil }
        padding = bytes[0] & 0x20 != 0
        count = bytes[0] & 0x1F
        packetType = bytes[1]
        packetLength = (Int(bytes[2]) << 8 | Int(bytes[3]) + 1) * 4
        guard packetLength <= bytes.count else { return nil }
        senderSSRC = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
    }

    public init?(parsing bytes: [UInt8]) {
        guard let h = bytes.withUnsafeBytes({ RTCPHeader(parsing: $0) }) else { return nil }
        self = h
    }

    public init?(parsing buffer: ByteBuffer) {
        guard let h = buffer.withUnsafeReadableBytes({ RTCPHeader(parsing: $0) }) else { return nil }
        self = h
    }

    /// The headers of every packet in a compound RTCP packet (RFC 3550 §6.1), or nil when any is malformed.
    /// At most `limit` packets are read.
    public static func compound(_ bytes: UnsafeRawBufferPointer, limit: Int = 64) -> [RTCPHeader]? {
        var out: [RTCPHeader] = []
        var offset = 0
        while offset < bytes.count {
            guard out.count < limit,
                let h = RTCPHeader(parsing: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            else { return nil }
            out.append(h)
            offset += h.packetLength
        }
        return out.isEmpty ? nil : out
    }
}
