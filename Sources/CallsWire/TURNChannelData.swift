import NIOCore

/// A TURN ChannelData message (RFC 8656 §12.4): 2-byte channel number, 2-byte length, application data.
///
/// Four bytes of overhead instead of a 36-byte Send/Data indication, which is why TURN clients bind
/// channels for media.
public struct TURNChannelData: Hashable, Sendable {
    /// Channel numbers a client may bind (RFC 8656 §12: 0x4000–0x4FFF; 0x5000–0xFFFF are reserved,
    /// RFC 5766 allowed up to 0x7FFF). Their first byte is 64–79, the RFC 7983 TURN range.
    public static let validChannelNumbers: ClosedRange<UInt16> = 0x4000...0x4FFF

    /// The channel number.
    public var channelNumber: UInt16
    /// The application data (no padding).
    public var data: ByteBuffer

    /// Creates a ChannelData message. The channel number is validated when encoding.
    public init(channelNumber: UInt16, data: ByteBuffer) {
        self.channelNumber = channelNumber
        self.data = data
    }

    /// Creates a ChannelData message from bytes.
    public init(channelNumber: UInt16, bytes: some Sequence<UInt8>) {
        self.init(channelNumber: channelNumber, data: ByteBuffer(bytes: bytes))
    }

    /// Decodes a ChannelData message occupying the readable bytes of `buffer` (a datagram, or one frame
    /// cut by ``STUNStreamSplitter``). `data` is a slice of `buffer`, not a copy.
    ///
    /// Up to 3 bytes of padding after the data are accepted (RFC 8656 §12.5: padding is required over
    /// TCP and allowed over UDP); more is an error.
    /// - Throws: ``WireError`` for a short header, a channel number outside 0x4000–0x4FFF, a length
    ///   running past the input, or surplus bytes.
    public init(decoding buffer: ByteBuffer) throws(WireError) {
        let base = buffer.readerIndex
        guard let channel = buffer.getInteger(at: base, as: UInt16.self),
            let length = buffer.getInteger(at: base + 2, as: UInt16.self)
        else {
            throw WireError(.truncated, at: buffer.readableBytes, "ChannelData header needs 4 bytes, got \(buffer.readableBytes)")
        }
        guard Self.validChannelNumbers.contains(channel) else {
            throw WireError(.invalidChannelNumber, at: 0, "channel number 0x\(hex(channel, digits: 4)) is outside 0x4000–0x4fff")
        }
        let available = buffer.readableBytes - 4
        guard Int(length) <= available else {
            throw WireError(.truncated, at: buffer.readableBytes, "ChannelData length \(length) but only \(available) data bytes")
        }
        guard available <= paddedLength(Int(length)) else {
            throw WireError(.trailingBytes, at: 4 + Int(length), "\(available - Int(length)) bytes follow the ChannelData payload")
        }
        guard let data = buffer.getSlice(at: base + 4, length: Int(length)) else {
            throw WireError(.truncated, at: 4, "ChannelData payload unavailable")
        }
        self.init(channelNumber: channel, data: data)
    }

    /// Decodes from a byte collection; see ``init(decoding:)-(ByteBuffer)``.
    public init(decoding bytes: some Collection<UInt8>) throws(WireError) {
        try self.init(decoding: ByteBuffer(bytes: bytes))
    }

    /// Whether the first byte marks a ChannelData message (0x40–0x4F, RFC 7983 / RFC 8656 §12).
    public static func isChannelData(firstByte: UInt8) -> Bool { firstByte & 0xF0 == 0x40 }

    /// Appends the message to `buffer`.
    /// - Parameter padded: Pad the payload to a multiple of 4 with zeros; required over TCP/TLS
    ///   (RFC 8656 §12.5), optional over UDP.
    /// - Returns: Bytes written.
    @discardableResult
    public func write(into buffer: inout ByteBuffer, padded: Bool) throws(WireError) -> Int {
        guard Self.validChannelNumbers.contains(channelNumber) else {
            throw WireError(.invalidChannelNumber, at: 0, "channel number 0x\(hex(channelNumber, digits: 4)) is outside 0x4000–0x4fff")
        }
        guard data.readableBytes <= 0xFFFF else {
            throw WireError(.valueTooLarge, at: 2, "ChannelData payload of \(data.readableBytes) bytes exceeds 65535")
        }
        let start = buffer.writerIndex
        buffer.writeInteger(channelNumber)
        buffer.writeInteger(UInt16(data.readableBytes))
        var copy = data
        buffer.writeBuffer(&copy)
        if padded { buffer.writeRepeatingByte(0, count: paddedLength(data.readableBytes) - data.readableBytes) }
        return buffer.writerIndex - start
    }

    /// The encoded message as bytes.
    public func encoded(padded: Bool = false) throws(WireError) -> [UInt8] {
        var buffer = ByteBuffer()
        try write(into: &buffer, padded: padded)
        return Array(buffer.readableBytesView)
    }
}
