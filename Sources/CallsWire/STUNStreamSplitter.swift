import NIOCore

/// Cuts a TCP/TLS byte stream into STUN messages and TURN ChannelData messages, the way a TURN server
/// such as coturn frames them: no RFC 4571 prefix, each message delimits itself (RFC 8489 §6.2.2,
/// RFC 8656 §12.5). STUN is recognised by a first byte of 0–3 (RFC 7983) and the magic cookie and sized
/// by its length field; ChannelData by a first byte of 0x40–0x4F, sized by its length plus padding to 4.
///
/// Errors are sticky (the stream cannot be resynchronised): close the connection.
public struct STUNStreamSplitter: Sendable {
    /// One message cut from the stream.
    public enum Frame: Sendable, Hashable {
        /// A complete STUN message (header + attributes), ready for ``STUNMessage/init(decoding:)-(ByteBuffer)``.
        case stun(ByteBuffer)
        /// A ChannelData message *without* its TCP padding, ready for
        /// ``TURNChannelData/init(decoding:)-(ByteBuffer)``.
        case channelData(ByteBuffer)
    }

    private enum State: Sendable {
        case ready
        case failed(WireError)
    }

    /// The largest message accepted, header included.
    public let maxMessageSize: Int
    private var buffer = ByteBuffer()
    private var state = State.ready
    private var streamOffset = 0

    /// Creates a splitter.
    /// - Parameter maxMessageSize: Reject larger messages (default: the largest the 16-bit length fields
    ///   allow). Lower it to bound memory per connection.
    public init(maxMessageSize: Int = STUNMessage.headerSize + 0xFFFF) {
        self.maxMessageSize = max(stunHeaderSize, maxMessageSize)
    }

    /// Bytes received but not yet returned.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Appends bytes read from the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        if buffer.readerIndex > 4096, buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
        buffer.writeBuffer(&bytes)
    }

    /// Appends bytes read from the stream.
    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        append(ByteBuffer(bytes: bytes))
    }

    /// The next complete message, or `nil` if more bytes are needed.
    /// - Throws: ``WireError`` for a byte that starts neither STUN nor ChannelData, a bad STUN header,
    ///   or a message above ``maxMessageSize`` (sticky).
    public mutating func nextFrame() throws(WireError) -> Frame? {
        if case .failed(let error) = state { throw error }
        do {
            return try cut()
        } catch {
            let positioned = WireError(error.code, at: streamOffset + error.offset, error.detail)
            state = .failed(positioned)
            throw positioned
        }
    }

    private mutating func cut() throws(WireError) -> Frame? {
        let base = buffer.readerIndex
        guard let first = buffer.getInteger(at: base, as: UInt8.self) else { return nil }
        if first <= 3 {
            // STUN (RFC 7983: first byte 0–3). Check the cookie as soon as it is here, so a TLS
            // ClientHello or HTTP request on a STUN port fails fast instead of waiting for 20 bytes.
            guard let cookie = buffer.getInteger(at: base + 4, as: UInt32.self),
                let length = buffer.getInteger(at: base + 2, as: UInt16.self)
            else { return nil }
            guard cookie == stunMagicCookie else {
                throw WireError(.badMagicCookie, at: 4, "magic cookie is 0x\(hex(cookie, digits: 8)), expected 0x2112a442")
            }
            guard length & 3 == 0 else {
                throw WireError(.badLength, at: 2, "STUN message length \(length) is not a multiple of 4")
            }
            let total = stunHeaderSize + Int(length)
            guard total <= maxMessageSize else {
                throw WireError(.frameTooLarge, at: 0, "STUN message of \(total) bytes exceeds the limit of \(maxMessageSize)")
            }
            guard let frame = buffer.readSlice(length: total) else { return nil }
            streamOffset += total
            return .stun(frame)
        }
        if TURNChannelData.isChannelData(firstByte: first) {
            guard let length = buffer.getInteger(at: base + 2, as: UInt16.self) else { return nil }
            let total = 4 + Int(length)
            let padded = paddedLength(total)
            guard total <= maxMessageSize else {
                throw WireError(.frameTooLarge, at: 0, "ChannelData of \(total) bytes exceeds the limit of \(maxMessageSize)")
            }
            // RFC 8656 §12.5: over TCP the message is padded to a multiple of 4; the padding is not
            // counted in the length field and is dropped here.
            guard buffer.readableBytes >= padded, let frame = buffer.getSlice(at: base, length: total) else {
                return nil
            }
            buffer.moveReaderIndex(forwardBy: padded)
            streamOffset += padded
            return .channelData(frame)
        }
        throw WireError(
            .unrecognizedFrame, at: 0,
            "byte 0x\(hex(first, digits: 2)) starts neither a STUN message nor TURN ChannelData")
    }
}
