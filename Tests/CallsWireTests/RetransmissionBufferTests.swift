import CallsWire
import NIOCore
import Testing

private func allow(_ limiter: inout KeyFrameRequestLimiter, source: UInt32, now: UInt64) -> Bool {
    limiter.shouldForward(source: source, now: now)
}

private func put(_ buffer: inout RetransmissionBuffer, sequence: UInt16, bytes: [UInt8]) -> Bool {
    buffer.store(sequence: sequence, bytes: bytes)
}

private func put(_ buffer: inout RetransmissionBuffer, sequence: UInt16, buffer bytes: ByteBuffer) -> Bool {
    buffer.store(sequence: sequence, buffer: bytes)
}

@Suite("Retransmission buffer and key-frame request limiter")
struct RetransmissionBufferTests {
    private static func packet(_ seq: UInt16, size: Int = 20) -> [UInt8] {
        var bytes = RTPHeader(payloadType: 96, sequenceNumber: seq, timestamp: UInt32(seq) * 3000, ssrc: 7).bytes
        bytes += (0..<(size - 12)).map { UInt8(truncatingIfNeeded: Int(seq) &+ $0) }
        return bytes
    }

    private static func stored(_ buffer: RetransmissionBuffer, _ seq: UInt16) -> [UInt8]? {
        buffer.withPacket(sequence: seq) { Array($0) }
    }

    @Test("Capacity is rounded up to a power of two")
    func capacity() {
        #expect(RetransmissionBuffer(capacity: 5, slotSize: 100).capacity == 8)
        #expect(RetransmissionBuffer().capacity == 512 && RetransmissionBuffer().slotSize == 1500)
        #expect(RetransmissionBuffer(capacity: 0, slotSize: 0).capacity == 1)
    }

    @Test("Store and fetch; overwritten and never-stored packets are absent")
    func storeAndOverwrite() {
        var buffer = RetransmissionBuffer(capacity: 8, slotSize: 64)
        for seq in UInt16(0)..<10 { #expect(put(&buffer, sequence: seq, bytes: Self.packet(seq, size: 12 + Int(seq)))) }
        #expect(Self.stored(buffer, 0) == nil && Self.stored(buffer, 1) == nil)  // overwritten by 8 and 9
        for seq in UInt16(2)..<10 { #expect(Self.stored(buffer, seq) == Self.packet(seq, size: 12 + Int(seq))) }
        #expect(Self.stored(buffer, 10) == nil)  // slot 2 holds 2
        #expect(Self.stored(buffer, 1000) == nil)
        #expect(buffer.contains(sequence: 9) && !buffer.contains(sequence: 1))
        buffer.remove(sequence: 9)
        #expect(Self.stored(buffer, 9) == nil)
        buffer.remove(sequence: 3 + 8)  // not held: slot 3 keeps packet 3
        #expect(Self.stored(buffer, 3) != nil)
        buffer.removeAll()
        #expect(Self.stored(buffer, 3) == nil)
    }

    @Test("Sequence wrap-around")
    func wrapAround() {
        var buffer = RetransmissionBuffer(capacity: 16, slotSize: 64)
        let seqs = Array(UInt16(65530)...65535) + Array(UInt16(0)...9)
        for seq in seqs { buffer.store(sequence: seq, bytes: Self.packet(seq)) }
        for seq in seqs { #expect(Self.stored(buffer, seq) == Self.packet(seq)) }
        buffer.store(sequence: 10, bytes: Self.packet(10))  // replaces 65530 (same slot)
        #expect(Self.stored(buffer, 65530) == nil && Self.stored(buffer, 10) == Self.packet(10))
    }

    @Test("Oversized and empty packets are ignored; other entry points")
    func sizesAndEntryPoints() {
        var buffer = RetransmissionBuffer(capacity: 4, slotSize: 32)
        #expect(put(&buffer, sequence: 1, bytes: Self.packet(1, size: 32)))
        #expect(!put(&buffer, sequence: 1, bytes: Self.packet(1, size: 33)))
        #expect(Self.stored(buffer, 1) == Self.packet(1, size: 32))  // unchanged
        #expect(!put(&buffer, sequence: 2, bytes: []))
        #expect(Self.stored(buffer, 2) == nil)
        #expect(put(&buffer, sequence: 3, buffer: ByteBuffer(bytes: Self.packet(3))))
        #expect(Self.stored(buffer, 3) == Self.packet(3))
        let storedSix = Self.packet(6).withUnsafeBytes { buffer.store(packet: $0) }
        #expect(storedSix)
        #expect(Self.stored(buffer, 6) == Self.packet(6))
        let storedJunk = [UInt8](repeating: 0, count: 20).withUnsafeBytes { buffer.store(packet: $0) }
        #expect(!storedJunk)
    }

    @Test("Key-frame requests: one per source per interval")
    func keyFrameLimiter() {
        var limiter = KeyFrameRequestLimiter()
        let ms: UInt64 = 1_000_000
        let t0: UInt64 = 5_000 * ms
        #expect(allow(&limiter, source: 1, now: t0))
        #expect(!allow(&limiter, source: 1, now: t0))
        #expect(!allow(&limiter, source: 1, now: t0 + 100 * ms))
        #expect(allow(&limiter, source: 2, now: t0 + 100 * ms))
        #expect(limiter.delayUntilAllowed(source: 1, now: t0 + 100 * ms) == 400 * ms)
        #expect(!allow(&limiter, source: 1, now: t0 + 500 * ms - 1))
        #expect(allow(&limiter, source: 1, now: t0 + 500 * ms))
        #expect(limiter.delayUntilAllowed(source: 1, now: t0 + 500 * ms) == 500 * ms)
        // Blocked requests do not extend the window.
        #expect(!allow(&limiter, source: 1, now: t0 + 900 * ms))
        #expect(allow(&limiter, source: 1, now: t0 + 1000 * ms))
        // A clock going backwards lets the request through.
        #expect(allow(&limiter, source: 1, now: t0))
        #expect(limiter.sourceCount == 2)
        limiter.remove(source: 1)
        #expect(limiter.sourceCount == 1 && allow(&limiter, source: 1, now: t0 + 1))
        var zero = KeyFrameRequestLimiter(intervalNanoseconds: 0)
        #expect(allow(&zero, source: 1, now: 0) && allow(&zero, source: 1, now: 0))
    }
}
