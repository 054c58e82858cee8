import CallsWire
import NIOCore
import Testing

@Suite("RTP and RTCP headers")
struct RTPTests {
    @Test("Parses the fixed header, CSRCs and a one-byte extension")
    func parse() throws {
        // V=2 X=1 CC=1, M=1 PT=111, seq 0x1234, ts 0x01020304, SSRC 0xDEADBEEF, CSRC 7, extension 0xBEDE with 1 word.
        let bytes: [UInt8] = [
            0x91, 0xEF, 0x12, 0x34, 1, 2, 3, 4, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 7,
            0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0, 0xF0, 0x0D,
        ]
        let h = try #require(RTPHeader(parsing: bytes))
        #expect(h.marker && h.payloadType == 111 && h.sequenceNumber == 0x1234)
        #expect(h.timestamp == 0x0102_0304 && h.ssrc == 0xDEAD_BEEF && h.csrcCount == 1)
        #expect(h.extensionProfile == 0xBEDE)
        #expect(h.headerLength == 24)
        #expect(RTPHeader(parsing: ByteBuffer(bytes: bytes)) == h)
    }

    @Test("Truncated or wrong-version packets are rejected, never trapping")
    func truncated() {
        let full: [UInt8] = [0x91, 0xEF, 0x12, 0x34, 1, 2, 3, 4, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 7, 0xBE, 0xDE, 0, 1, 1, 2, 3, 4]
        for n in 0..<full.count { #expect(RTPHeader(parsing: Array(full.prefix(n))) == nil) }
        #expect(RTPHeader(parsing: full) != nil)
        var v1 = full
        v1[0] = 0x51
        #expect(RTPHeader(parsing: v1) == nil)
        // 15 CSRCs announced, none present.
        #expect(RTPHeader(parsing: [0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == nil)
        // Extension length 0xFFFF words.
        #expect(RTPHeader(parsing: [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0xFF, 0xFF]) == nil)
    }

    @Test("Random bytes never trap")
    func fuzz() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let h = RTPHeader(parsing: bytes) { #expect(h.headerLength <= bytes.count) }
            if let r = RTCPHeader(parsing: bytes) { #expect(r.packetLength <= bytes.count) }
            _ = bytes.withUnsafeBytes { RTCPHeader.compound($0) }
        }
    }

    @Test("Round trip and in-place rewrites")
    func rewrite() throws {
        let header = RTPHeader(marker: true, payloadType: 96, sequenceNumber: 65535, timestamp: 48000, ssrc: 1)
        var packet = header.bytes + [9, 9, 9]
        #expect(packet.count == 15)
        packet.withUnsafeMutableBytes { p in
            #expect(RTPRewriter.setSSRC(0xCAFE_BABE, in: p))
            #expect(RTPRewriter.setSequenceNumber(7, in: p))
            #expect(RTPRewriter.setTimestamp(99, in: p))
            #expect(RTPRewriter.setPayloadType(111, in: p))
        }
        let h = try #require(RTPHeader(parsing: packet))
        #expect(h.ssrc == 0xCAFE_BABE && h.sequenceNumber == 7 && h.timestamp == 99 && h.payloadType == 111 && h.marker)
        #expect(Array(packet[h.headerLength...]) == [9, 9, 9])
        var short: [UInt8] = [0x80, 0, 0]
        short.withUnsafeMutableBytes { #expect(!RTPRewriter.setSSRC(1, in: $0)) }
    }

    @Test("RTCP headers and compound packets")
    func rtcp() throws {
        // RR (201) with no reports + PLI (206, FMT 1) with sender and media SSRC.
        let rr: [UInt8] = [0x80, 201, 0, 1, 0, 0, 0, 5]
        let pli: [UInt8] = [0x81, 206, 0, 2, 0, 0, 0, 5, 0, 0, 0, 9]
        let h = try #require(RTCPHeader(parsing: rr + pli))
        #expect(h.packetType == 201 && h.senderSSRC == 5 && h.packetLength == 8)
        let all = try #require((rr + pli).withUnsafeBytes { RTCPHeader.compound($0) })
        #expect(all.map(\.packetType) == [201, 206])
        #expect(all[1].count == 1)
        #expect((rr + pli.dropLast()).withUnsafeBytes { RTCPHeader.compound($0) } == nil)
        #expect(RTCPHeader(parsing: [0x80, 111, 0, 1, 0, 0, 0, 5]) == nil)  // an RTP payload type, not RTCP
    }
}
