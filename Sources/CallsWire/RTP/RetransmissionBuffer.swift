import NIOCore

/// The last sent RTP packets of one stream, kept for answering Generic NACKs (RFC 4585 §6.2.1, RFC 4588).
///
/// A ring of `capacity` slots (a power of two) indexed by the low bits of the RTP sequence number, with all
/// storage allocated up front: one contiguous byte array of `capacity × slotSize` plus per-slot lengths and
/// sequence numbers. ``store(sequence:bytes:)`` copies a plain (unprotected) RTP packet into its slot, replacing
/// whatever was there; ``withPacket(sequence:_:)`` lends the bytes back only when the slot still holds that exact
/// sequence number, so a packet overwritten by one `capacity` sequence numbers later reads as absent. Packets
/// larger than `slotSize` are not stored. Nothing is allocated per packet as long as the value is not copied
/// (copy-on-write). A slot that is never overwritten (because the packets that would reuse it were lost) still
/// answers for its sequence number after the 16-bit space wraps; callers that care can check the RTP timestamp of
/// the returned packet. Keep it on the stream's event loop.
public struct RetransmissionBuffer: Sendable {
    /// Number of slots (a power of two).
    public let capacity: Int
    /// Largest packet stored, in bytes.
    public let slotSize: Int
    private let mask: Int
    private var storage: [UInt8]
    /// Stored length per slot; 0 means empty.
    private var lengths: [UInt16]
    private var sequences: [UInt16]

    /// A buffer of `capacity` slots (rounded up to a power of two, at least 1) of `slotSize` bytes (at most 65535).
    public init(capacity: Int = 512, slotSize: Int = 1500) {
        var c = 1
        while c < max(1, capacity) { c <<= 1 }
        self.capacity = c
        self.slotSize = min(max(1, slotSize), Int(UInt16.max))
        self.mask = c - 1
        self.storage = [UInt8](repeating: 0, count: c * self.slotSize)
        self.lengths = [UInt16](repeating: 0, count: c)
        self.sequences = [UInt16](repeating: 0, count: c)
    }

    /// Stores `bytes` as the packet with RTP sequence number `sequence`, replacing the slot's previous packet.
    /// Returns false (and leaves the slot unchanged) when the packet is empty or larger than ``slotSize``.
    @discardableResult
    public mutating func store(sequence: UInt16, bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0, bytes.count <= slotSize, let source = bytes.baseAddress else { return false }
        let slot = Int(sequence) & mask
        let start = slot * slotSize
        storage.withUnsafeMutableBytes { dst in
            (dst.baseAddress! + start).copyMemory(from: source, byteCount: bytes.count)
        }
        lengths[slot] = UInt16(bytes.count)
        sequences[slot] = sequence
        return true
    }

    /// Stores the packet in `bytes` under `sequence`.
    @discardableResult
    public mutating func store(sequence: UInt16, bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { store(sequence: sequence, bytes: $0) }
    }

    /// Stores the readable bytes of `buffer` under `sequence` (the buffer is not moved).
    @discardableResult
    public mutating func store(sequence: UInt16, buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { store(sequence: sequence, bytes: $0) }
    }

    /// Stores an RTP packet under the sequence number in its header; false when it is not a valid RTP packet.
    @discardableResult
    public mutating func store(packet: UnsafeRawBufferPointer) -> Bool {
        guard let header = RTPHeader(parsing: packet) else { return false }
        return store(sequence: header.sequenceNumber, bytes: packet)
    }

    /// Whether the packet with `sequence` is held.
    public func contains(sequence: UInt16) -> Bool {
        let slot = Int(sequence) & mask
        return lengths[slot] != 0 && sequences[slot] == sequence
    }

    /// Calls `body` with the stored bytes of the packet with `sequence` and returns its result, or returns nil
    /// when the packet was never stored or has been overwritten. The pointer is only valid inside `body`.
    public func withPacket<R>(sequence: UInt16, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let slot = Int(sequence) & mask
        let length = Int(lengths[slot])
        guard length != 0, sequences[slot] == sequence else { return nil }
        return try storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[(slot * slotSize)..<(slot * slotSize + length)]))
        }
    }

    /// Forgets the packet with `sequence`, if held.
    public mutating func remove(sequence: UInt16) {
        let slot = Int(sequence) & mask
        if sequences[slot] == sequence { lengths[slot] = 0 }
    }

    /// Forgets every packet (storage is kept).
    public mutating func removeAll() {
        for i in lengths.indices { lengths[i] = 0 }
    }
}
