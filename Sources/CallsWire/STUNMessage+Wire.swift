import Crypto
import NIOCore

/// Size of the fixed STUN header (RFC 8489 §5).
let stunHeaderSize = 20

extension STUNMessage {
    /// Size of the fixed STUN header in bytes (RFC 8489 §5).
    public static let headerSize = 20
    /// The magic cookie, bytes 4–7 of every RFC 5389/8489 message.
    public static let magicCookie: UInt32 = 0x2112_A442
}

// MARK: - Decoding

extension STUNMessage {
    /// Decodes one STUN message that occupies *all* readable bytes of `buffer` (a UDP datagram).
    ///
    /// Keeps a slice of `buffer` (no copy) for later integrity checks; that slice keeps the buffer's
    /// storage alive while the message lives.
    /// - Throws: ``WireError`` naming the problem and its byte offset (relative to `readerIndex`).
    public init(decoding buffer: ByteBuffer) throws(WireError) {
        let total = try STUNMessage.checkHeader(buffer)
        guard total == buffer.readableBytes else {
            throw WireError(
                .trailingBytes, at: total,
                "STUN header announces \(total) bytes but the input has \(buffer.readableBytes)")
        }
        self = try STUNMessage.decodeBody(buffer, total: total)
    }

    /// Decodes one STUN message from a byte collection holding exactly that message.
    public init(decoding bytes: some Collection<UInt8>) throws(WireError) {
        try self.init(decoding: ByteBuffer(bytes: bytes))
    }

    /// A cheap demultiplexing test (RFC 8489 §5, RFC 7983): at least 20 bytes, first two bits zero,
    /// the magic cookie, a length that is a multiple of 4 and matches the input size.
    /// It does not look at attributes.
    public static func isProbablySTUN(_ bytes: some Collection<UInt8>) -> Bool {
        if let r = bytes.withContiguousStorageIfAvailable({ isProbablySTUN(UnsafeRawBufferPointer($0)) }) { return r }
        return isProbablySTUN(ByteBuffer(bytes: bytes))
    }

    /// The same demultiplexing test on the readable bytes of a `ByteBuffer`.
    public static func isProbablySTUN(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { isProbablySTUN($0) }
    }

    private static func isProbablySTUN(_ p: UnsafeRawBufferPointer) -> Bool {
        guard p.count >= stunHeaderSize, p[0] & 0xC0 == 0 else { return false }
        let length = Int(p[2]) << 8 | Int(p[3])
        return length & 3 == 0 && length + stunHeaderSize == p.count && p[4] == 0x21 && p[5] == 0x12
            && p[6] == 0xA4 && p[7] == 0x42
    }

    /// Validates the header and returns the total message size (header + body).
    static func checkHeader(_ buffer: ByteBuffer) throws(WireError) -> Int {
        let base = buffer.readerIndex
        guard buffer.readableBytes >= stunHeaderSize,
            let type = buffer.getInteger(at: base, as: UInt16.self),
            let length = buffer.getInteger(at: base + 2, as: UInt16.self),
            let cookie = buffer.getInteger(at: base + 4, as: UInt32.self)
        else {
            throw WireError(
                .truncated, at: buffer.readableBytes,
                "a STUN header needs 20 bytes, got \(buffer.readableBytes)")
        }
        // RFC 8489 §5: "The most significant 2 bits of every STUN message MUST be zeroes."
        guard type & 0xC000 == 0 else {
            throw WireError(.notSTUN, at: 0, "first two bits are not zero (type 0x\(hex(type, digits: 4)))")
        }
        // RFC 8489 §5: the length "MUST contain the size of the message in bytes, not including the
        // 20-byte STUN header. Since all STUN attributes are padded to a multiple of 4 bytes, the last
        // 2 bits of this field are always zero."
        guard length & 3 == 0 else {
            throw WireError(.badLength, at: 2, "message length \(length) is not a multiple of 4")
        }
        guard cookie == stunMagicCookie else {
            throw WireError(.badMagicCookie, at: 4, "magic cookie is 0x\(hex(cookie, digits: 8)), expected 0x2112a442")
        }
        let total = stunHeaderSize + Int(length)
        guard total <= buffer.readableBytes else {
            throw WireError(
                .truncated, at: buffer.readableBytes,
                "STUN header announces \(total) bytes but only \(buffer.readableBytes) are present")
        }
        return total
    }

    /// Decodes the attributes of a message whose header passed ``checkHeader(_:)``.
    static func decodeBody(_ buffer: ByteBuffer, total: Int) throws(WireError) -> STUNMessage {
        guard let wire = buffer.getSlice(at: buffer.readerIndex, length: total) else {
            throw WireError(.truncated, at: buffer.readableBytes, "STUN message incomplete")
        }
        // One borrow of the storage for the whole parse (see WireReader for why).
        let result = wire.withUnsafeReadableBytes { raw in decodeBody(WireReader(raw)) }
        var message = try result.get()
        message.wire = wire
        return message
    }

    private static func decodeBody(_ r: WireReader) -> Result<STUNMessage, WireError> {
        guard let type = r.u16(0), let high = r.u64(8), let low = r.u32(16) else {
            return .failure(WireError(.truncated, at: r.count, "STUN header incomplete"))
        }
        let total = r.count
        let (method, messageClass) = STUNMessageType.decode(type)
        let tid = STUNTransactionID(high: high, low: low)

        // First pass: validate every TLV's length against the message and count them, so the second
        // pass can allocate the array once and needs no error handling.
        var offset = stunHeaderSize
        var count = 0
        while offset < total {
            guard let t = r.u16(offset), let length = r.u16(offset + 2) else {
                return .failure(WireError(.truncated, at: offset, "attribute header needs 4 bytes, \(total - offset) left"))
            }
            // RFC 8489 §14: the value is padded to a multiple of 4 and the message length counts the padding.
            let padded = paddedLength(Int(length))
            guard padded <= total - offset - 4 else {
                return .failure(WireError(
                    .attributeOverrun, at: offset,
                    "attribute \(STUNAttributeType(rawValue: t)) claims \(length) bytes (\(padded) padded) "
                        + "but only \(total - offset - 4) remain in the message"))
            }
            offset += 4 + padded
            count += 1
        }

        var attributes = [STUNAttribute]()
        attributes.reserveCapacity(count)
        offset = stunHeaderSize
        while offset < total, let t = r.u16(offset), let l = r.u16(offset + 2) {
            attributes.append(STUNAttribute.decode(type: t, from: r, at: offset + 4, length: Int(l), transactionID: tid))
            offset += 4 + paddedLength(Int(l))
        }
        return .success(STUNMessage(method: method, messageClass: messageClass, transactionID: tid, attributes: attributes))
    }
}

extension ByteBuffer {
    /// Reads one STUN message from the front of a stream buffer (STUN over TCP/TLS without RFC 4571
    /// framing, RFC 8489 §6.2.2), moving the reader index past it.
    /// - Returns: `nil` if more bytes are needed (the reader index is unchanged).
    /// - Throws: ``WireError`` for a malformed header or body; the reader index is unchanged.
    public mutating func readSTUNMessage() throws(WireError) -> STUNMessage? {
        guard readableBytes >= stunHeaderSize else { return nil }
        let total: Int
        do {
            total = try STUNMessage.checkHeader(self)
        } catch where error.code == .truncated {
            return nil
        }
        let message = try STUNMessage.decodeBody(self, total: total)
        moveReaderIndex(forwardBy: total)
        return message
    }

    /// Encodes `message` at the writer index. See ``STUNMessage/encoded(integrity:fingerprint:paddingByte:)``.
    /// - Returns: The number of bytes written. On error nothing is written.
    @discardableResult
    public mutating func writeSTUNMessage(
        _ message: STUNMessage, integrity: STUNIntegrity? = nil, fingerprint: Bool = false, paddingByte: UInt8 = 0
    ) throws(WireError) -> Int {
        let start = writerIndex
        do {
            try message.write(into: &self, integrity: integrity, fingerprint: fingerprint, paddingByte: paddingByte)
        } catch {
            moveWriterIndex(to: start)
            throw error
        }
        return writerIndex - start
    }
}

// MARK: - Encoding

extension STUNMessage {
    /// Encodes the message.
    ///
    /// The attributes are written in order. With `integrity`, any MESSAGE-INTEGRITY,
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT already in ``attributes`` (e.g. from decoding) are
    /// skipped and fresh ones appended; with only `fingerprint`, an existing FINGERPRINT is replaced.
    /// Order on the wire: attributes, MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT
    /// (RFC 8489 §14.5–§14.7).
    /// - Parameters:
    ///   - integrity: Key and which MACs to append, or `nil` for none.
    ///   - fingerprint: Append FINGERPRINT (ICE requires it, RFC 8445 §7.2.2).
    ///   - paddingByte: Content of padding bytes. RFC 8489 §14 lets senders choose and requires receivers
    ///     to ignore it; 0 is conventional, the RFC 5769 test vectors use 0x20.
    /// - Throws: ``WireError/Code-swift.struct/valueTooLarge`` if an attribute or the message exceeds its
    ///   16-bit length field, ``WireError/Code-swift.struct/invalidArgument`` for unencodable values.
    public func encoded(
        integrity: STUNIntegrity? = nil, fingerprint: Bool = false, paddingByte: UInt8 = 0
    ) throws(WireError) -> [UInt8] {
        var buffer = ByteBuffer()
        try write(into: &buffer, integrity: integrity, fingerprint: fingerprint, paddingByte: paddingByte)
        return Array(buffer.readableBytesView)
    }

    /// Like ``encoded(integrity:fingerprint:paddingByte:)`` but returns a `ByteBuffer` ready to send.
    public func encodedBuffer(
        integrity: STUNIntegrity? = nil, fingerprint: Bool = false, paddingByte: UInt8 = 0,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(WireError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128)
        try write(into: &buffer, integrity: integrity, fingerprint: fingerprint, paddingByte: paddingByte)
        return buffer
    }

    fileprivate func write(
        into buffer: inout ByteBuffer, integrity: STUNIntegrity?, fingerprint: Bool, paddingByte: UInt8
    ) throws(WireError) {
        let start = buffer.writerIndex
        buffer.writeInteger(STUNMessageType.encode(method: method, messageClass: messageClass))
        buffer.writeInteger(UInt16(0))  // length, patched below
        buffer.writeInteger(stunMagicCookie)
        buffer.writeInteger(transactionID.high)
        buffer.writeInteger(transactionID.low)

        for attribute in attributes {
            switch attribute.type {
            case .messageIntegrity, .messageIntegritySHA256:
                if integrity != nil { continue }
            case .fingerprint:
                if integrity != nil || fingerprint { continue }
            default:
                break
            }
            try STUNMessage.writeAttribute(attribute, into: &buffer, tid: transactionID, paddingByte: paddingByte)
        }

        if let integrity {
            if integrity.messageIntegrity {
                try STUNMessage.appendMAC(Insecure.SHA1.self, macLength: 20, type: .messageIntegrity,
                                          key: integrity.key, buffer: &buffer, start: start)
            }
            if let length = integrity.sha256Length {
                guard length >= 16, length <= 32, length % 4 == 0 else {
                    throw WireError(.invalidArgument, at: buffer.writerIndex - start,
                                    "MESSAGE-INTEGRITY-SHA256 length \(length) is not 16–32 and a multiple of 4")
                }
                try STUNMessage.appendMAC(SHA256.self, macLength: length, type: .messageIntegritySHA256,
                                          key: integrity.key, buffer: &buffer, start: start)
            }
        }

        if fingerprint {
            // RFC 8489 §14.7: the CRC covers the message up to the attribute, with the header length
            // already including the 8-byte FINGERPRINT.
            try STUNMessage.setLength(&buffer, start: start, bodyLength: buffer.writerIndex - start - stunHeaderSize + 8)
            let crc = buffer.withUnsafeReadableBytes { p in
                CRC32.update(0, UnsafeRawBufferPointer(rebasing: p[(start - buffer.readerIndex)...]))
            }
            buffer.writeInteger(STUNAttributeType.fingerprint.rawValue)
            buffer.writeInteger(UInt16(4))
            buffer.writeInteger(crc ^ fingerprintXOR)
        }
        try STUNMessage.setLength(&buffer, start: start, bodyLength: buffer.writerIndex - start - stunHeaderSize)
    }

    private static func setLength(_ buffer: inout ByteBuffer, start: Int, bodyLength: Int) throws(WireError) {
        guard bodyLength <= 0xFFFF else {
            throw WireError(.valueTooLarge, at: bodyLength, "STUN message body of \(bodyLength) bytes exceeds 65535")
        }
        buffer.setInteger(UInt16(bodyLength), at: start + 2)
    }

    private static func writeAttribute(
        _ attribute: STUNAttribute, into buffer: inout ByteBuffer, tid: STUNTransactionID, paddingByte: UInt8
    ) throws(WireError) {
        let headerIndex = buffer.writerIndex
        buffer.writeInteger(attribute.type.rawValue)
        buffer.writeInteger(UInt16(0))
        let length = try attribute.writeValue(into: &buffer, transactionID: tid)
        guard length <= 0xFFFF else {
            throw WireError(.valueTooLarge, at: headerIndex, "attribute \(attribute.type) value of \(length) bytes exceeds 65535")
        }
        buffer.setInteger(UInt16(length), at: headerIndex + 2)
        buffer.writeRepeatingByte(paddingByte, count: paddedLength(length) - length)
    }

    /// RFC 8489 §14.5/§14.6: set the header length so it ends right after the integrity attribute about
    /// to be written, MAC everything so far, then write the attribute.
    private static func appendMAC<H: HashFunction>(
        _ h: H.Type, macLength: Int, type: STUNAttributeType, key: STUNKey, buffer: inout ByteBuffer, start: Int
    ) throws(WireError) {
        let bodyLength = buffer.writerIndex - start - stunHeaderSize + 4 + macLength
        try setLength(&buffer, start: start, bodyLength: bodyLength)
        // MAC into a stack copy first: the buffer cannot be written while its bytes are being read.
        var mac = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        buffer.withUnsafeReadableBytes { p in
            stunHMAC(H.self, key: key, prefix: UnsafeRawBufferPointer(rebasing: p[(start - buffer.readerIndex)...]),
                     patchedLength: UInt16(bodyLength)) { digest in
                withUnsafeMutableBytes(of: &mac) { m in
                    m.copyMemory(from: UnsafeRawBufferPointer(rebasing: digest[0..<min(digest.count, m.count)]))
                }
            }
        }
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(UInt16(macLength))
        _ = withUnsafeBytes(of: &mac) { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<macLength])) }
    }
}

/// FINGERPRINT = CRC-32 XOR 0x5354554E ("STUN"), RFC 8489 §14.7, so a STUN CRC never equals the CRC
/// another protocol on the same port might carry.
let fingerprintXOR: UInt32 = 0x5354_554E
