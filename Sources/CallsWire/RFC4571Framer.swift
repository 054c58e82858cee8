import NIOCore

/// Incremental decoder for RFC 4571 framing: each packet on a TCP stream is preceded by a 16-bit
/// big-endian length. ICE-TCP (RFC 6544 §3) uses it for STUN, DTLS and SRTP on rtcd's TCP 8443.
///
/// Feed bytes as they arrive with ``append(_:)``, then call ``nextFrame()`` until it returns `nil`.
/// Partial frames are kept; several frames in one read come out one by one. A frame longer than
/// ``maxFrameSize`` is an error, and errors are sticky: framing is lost, so the connection should close.
///
/// ```swift
/// framer.append(readBuffer)
/// while let frame = try framer.nextFrame() { handle(frame) }
/// ```
public struct RFC4571Framer: Sendable {
    private enum State: Sendable {
        /// Waiting for the 2-byte length prefix.
        case awaitingLength
        /// Prefix consumed; waiting for this many payload bytes.
        case awaitingPayload(Int)
        /// A previous error; framing cannot resynchronise.
        case failed(WireError)
    }

    /// The largest payload accepted; at most 65535 (the prefix is 16 bits).
    public let maxFrameSize: Int
    private var buffer: ByteBuffer
    private var state: State = .awaitingLength
    /// Stream offset of `buffer.readerIndex`, so errors can name a position in the whole stream.
    private var streamOffset = 0

    /// Creates a framer.
    /// - Parameter maxFrameSize: Reject frames with a larger payload (default 65535, no extra limit).
    public init(maxFrameSize: Int = 0xFFFF) {
        self.maxFrameSize = max(0, min(maxFrameSize, 0xFFFF))
        self.buffer = ByteBuffer()
    }

    /// Bytes received but not yet returned as frames (excluding a consumed length prefix).
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Appends bytes read from the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        compactIfUseful()
        buffer.writeBuffer(&bytes)
    }

    /// Appends bytes read from the stream.
    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        compactIfUseful()
        buffer.writeBytes(bytes)
    }

    /// The next complete frame's payload, or `nil` if more bytes are needed.
    /// - Throws: ``WireError/Code-swift.struct/frameTooLarge`` (sticky).
    public mutating func nextFrame() throws(WireError) -> ByteBuffer? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .awaitingLength:
                guard let length = buffer.readInteger(as: UInt16.self) else { return nil }
                streamOffset += 2
                guard Int(length) <= maxFrameSize else {
                    let error = WireError(
                        .frameTooLarge, at: streamOffset - 2,
                        "RFC 4571 frame of \(length) bytes exceeds the limit of \(maxFrameSize)")
                    state = .failed(error)
                    throw error
                }
                state = .awaitingPayload(Int(length))
            case .awaitingPayload(let length):
                guard let frame = buffer.readSlice(length: length) else { return nil }
                streamOffset += length
                state = .awaitingLength
                return frame
            }
        }
    }

    /// Reclaims consumed space once it dominates the buffer, so a long-lived connection does not grow.
    private mutating func compactIfUseful() {
        if buffer.readerIndex > 4096, buffer.readerIndex > buffer.readableBytes {
            buffer.discardReadBytes()
        }
    }

    /// Writes `payload` with its 2-byte length prefix.
    /// - Throws: ``WireError/Code-swift.struct/valueTooLarge`` if the payload exceeds 65535 bytes.
    public static func writeFrame(_ payload: ByteBuffer, into buffer: inout ByteBuffer) throws(WireError) {
        guard payload.readableBytes <= 0xFFFF else {
            throw WireError(.valueTooLarge, at: 0, "RFC 4571 payload of \(payload.readableBytes) bytes exceeds 65535")
        }
        var copy = payload
        buffer.writeInteger(UInt16(payload.readableBytes))
        buffer.writeBuffer(&copy)
    }

    /// `payload` with its 2-byte length prefix.
    public static func framed(_ payload: some Collection<UInt8>) throws(WireError) -> [UInt8] {
        var out = ByteBuffer()
        try writeFrame(ByteBuffer(bytes: payload), into: &out)
        return Array(out.readableBytesView)
    }
}
