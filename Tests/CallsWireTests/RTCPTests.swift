import CallsWire
import NIOCore
import Testing

/// Hex with spaces/newlines ignored; traps on bad input (test vectors only).
private func rtcpVector(_ s: String) -> [UInt8] {
    let digits = s.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd hex")
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// Header fields of every packet in `bytes`, plus the reader's error.
private func scan(_ bytes: [UInt8]) -> (
    packets: [(pt: UInt8, count: UInt8, offset: Int, length: Int)], error: RTCPReadError?
) {
    bytes.withUnsafeBytes { raw in
        var reader = RTCPReader(raw)
        var out: [(UInt8, UInt8, Int, Int)] = []
        while let p = reader.next() { out.append((p.packetType, p.count, p.offset, p.length)) }
        return (out, reader.error)
    }
}

/// The reader's next packet, or a thrown test failure.
private func take(_ reader: inout RTCPReader, sourceLocation: SourceLocation = #_sourceLocation) throws -> RTCPPacket {
    let packet = reader.next()
    return try #require(packet, sourceLocation: sourceLocation)
}

/// True when the reader has no packet left.
private func ended(_ reader: inout RTCPReader) -> Bool { reader.next() == nil }

private func written(_ build: (inout ByteBuffer) throws -> Void) rethrows -> [UInt8] {
    var buffer = ByteBuffer()
    try build(&buffer)
    return Array(buffer.readableBytesView)
}

@Suite("RTCP reader and decoders")
struct RTCPReaderTests {
    // Chromium-style compound RR + REMB: receive-only SSRC 0xFA17FA17 reporting on 0x1A2B3C4D, then a REMB of
    // 1.5 Mbit/s (exp 3, mantissa 187500) for the same SSRC.
    static let rrREMB = rtcpVector(
        """
        81 C9 00 07  FA 17 FA 17
        1A 2B 3C 4D  05 00 00 10  00 01 23 45  00 00 00 20  8A BC DE F0  00 01 80 00
        8F CE 00 05  FA 17 FA 17  00 00 00 00  52 45 4D 42  01 0E DC 6C  1A 2B 3C 4D
        """)

    // Compound SR + SDES(CNAME "q0ZUxDW1j2YwKmDv"), as a Chromium sender emits: NTP 0xE95E8B2A.80000000,
    // RTP 768000, 500 packets, 80000 octets.
    static let srSDES = rtcpVector(
        """
        80 C8 00 06  1A 2B 3C 4D  E9 5E 8B 2A  80 00 00 00  00 0B B8 00  00 00 01 F4  00 01 38 80
        81 CA 00 06  1A 2B 3C 4D  01 10 71 30 5A 55 78 44 57 31 6A 32 59 77 4B 6D 44 76  00 00
        """)

    // PLI (reduced-size RTCP, alone in the datagram).
    static let pli = rtcpVector("81 CE 00 02  FA 17 FA 17  1A 2B 3C 4D")

    // Generic NACK: PID 100, BLP 0x8005 → 100, 101, 103, 116.
    static let nack = rtcpVector("81 CD 00 03  FA 17 FA 17  1A 2B 3C 4D  00 64 80 05")

    @Test("Compound RR + REMB as sent by Chromium")
    func receiverReportAndREMB() throws {
        let (packets, error) = scan(Self.rrREMB)
        #expect(error == nil)
        #expect(packets.map(\.pt) == [201, 206])
        #expect(packets.map(\.offset) == [0, 32])
        #expect(packets.map(\.length) == [32, 24])
        try Self.rrREMB.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let rrPacket = try take(&reader)
            let rr = try #require(RTCPReceiverReport(rrPacket))
            #expect(rr.senderSSRC == 0xFA17_FA17)
            #expect(rr.reportBlocks.count == 1)
            let block = rr.reportBlocks[0]
            #expect(
                block
                    == RTCPReportBlock(
                        ssrc: 0x1A2B_3C4D, fractionLost: 5, cumulativeLost: 16, extendedHighestSequence: 0x0001_2345,
                        jitter: 32, lastSenderReport: 0x8ABC_DEF0, delaySinceLastSenderReport: 0x0001_8000))
            #expect(RTCPSenderReport(rrPacket) == nil)
            #expect(RTCPREMB(rrPacket) == nil)

            let rembPacket = try take(&reader)
            #expect(rembPacket.format == 15)
            let remb = try #require(RTCPREMB(rembPacket))
            #expect(remb.senderSSRC == 0xFA17_FA17 && remb.mediaSSRC == 0)
            #expect(remb.exponent == 3 && remb.mantissa == 187_500)
            #expect(remb.bitrate == 1_500_000)
            #expect(Array(remb.ssrcs) == [0x1A2B_3C4D])
            #expect(RTCPPictureLossIndication(rembPacket) == nil)
            #expect(RTCPFullIntraRequest(rembPacket) == nil)
            #expect(ended(&reader))
            #expect(reader.isAtEnd && reader.packetCount == 2)
        }
        #expect(Self.rrREMB.withUnsafeBytes { RTCPReader.validate($0) } == 2)
    }

    @Test("Compound SR + SDES as sent by Chromium")
    func senderReportAndSDES() throws {
        try Self.srSDES.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let srPacket = try take(&reader)
            let sr = try #require(RTCPSenderReport(srPacket))
            #expect(sr.senderSSRC == 0x1A2B_3C4D)
            #expect(sr.ntpTimestamp == 0xE95E_8B2A_8000_0000)
            #expect(sr.compactNTP == 0x8B2A_8000)
            #expect(sr.rtpTimestamp == 768_000 && sr.packetCount == 500 && sr.octetCount == 80_000)
            #expect(sr.reportBlocks.isEmpty)
            #expect(RTCPReceiverReport(srPacket) == nil)

            let sdesPacket = try take(&reader)
            #expect(sdesPacket.packetType == RTCPPacketType.sourceDescription && sdesPacket.count == 1)
            let sdes = try #require(RTCPSourceDescription(sdesPacket))
            var items: [(UInt32, UInt8, String)] = []
            sdes.forEachItem { ssrc, type, value in items.append((ssrc, type, String(decoding: value, as: UTF8.self))) }
            #expect(items.count == 1)
            #expect(items.first?.0 == 0x1A2B_3C4D && items.first?.1 == 1 && items.first?.2 == "q0ZUxDW1j2YwKmDv")
            let cname = try #require(sdes.cname(of: 0x1A2B_3C4D))
            #expect(String(decoding: cname, as: UTF8.self) == "q0ZUxDW1j2YwKmDv")
            #expect(sdes.cname(of: 7) == nil)
            #expect(ended(&reader) && reader.isAtEnd)
        }
    }

    @Test("PLI and NACK with BLP bits")
    func pliAndNACK() throws {
        try Self.pli.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let p = try take(&reader)
            let pli = try #require(RTCPPictureLossIndication(p))
            #expect(pli == RTCPPictureLossIndication(senderSSRC: 0xFA17_FA17, mediaSSRC: 0x1A2B_3C4D))
            #expect(RTCPGenericNACK(p) == nil && RTCPREMB(p) == nil)
        }
        try Self.nack.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let p = try take(&reader)
            let nack = try #require(RTCPGenericNACK(p))
            #expect(nack.senderSSRC == 0xFA17_FA17 && nack.mediaSSRC == 0x1A2B_3C4D)
            #expect(nack.itemCount == 1 && nack.lostCount == 4)
            #expect(nack.item(at: 0) == RTCPNACKItem(packetID: 100, bitmask: 0x8005))
            var lost: [UInt16] = []
            nack.forEachLostSequence { lost.append($0) }
            #expect(lost == [100, 101, 103, 116])
            // Caller buffer, too small: stops when full.
            var small = [UInt16](repeating: 0, count: 3)
            let n = small.withUnsafeMutableBufferPointer { nack.lostSequences(into: $0) }
            #expect(n == 3 && small == [100, 101, 103])
            #expect(RTCPTransportWideFeedback(p) == nil && RTCPPictureLossIndication(p) == nil)
        }
    }

    @Test("NACK BLP wraps past 65535")
    func nackWrap() throws {
        let bytes = rtcpVector("81 CD 00 04  00 00 00 01  00 00 00 02  FF FE 00 07  00 05 00 00")
        try bytes.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let nack = try #require(RTCPGenericNACK(try take(&reader)))
            var lost: [UInt16] = []
            nack.forEachLostSequence { lost.append($0) }
            #expect(lost == [65534, 65535, 0, 1, 5])
        }
    }

    @Test("TWCC, FIR, BYE and padding")
    func otherTypes() throws {
        // TWCC: base 1, 2 packets, reference time 0x000010 (×64 ms), feedback count 7, one run-length chunk + deltas.
        let twcc = rtcpVector("8F CD 00 05  FA 17 FA 17  1A 2B 3C 4D  00 01 00 02  00 00 10 07  20 02 04 08")
        // FIR with two entries.
        let fir = rtcpVector(
            "84 CE 00 06  FA 17 FA 17  00 00 00 00  1A 2B 3C 4D  03 00 00 00  0B 0B 0B 0B  FF 00 00 00")
        // BYE for two sources with the reason "bye!".
        let bye = rtcpVector("82 CB 00 04  1A 2B 3C 4D  0B 0B 0B 0B  04 62 79 65  21 00 00 00")
        // RR with the P bit and 4 padding bytes (count in the last one).
        let padded = rtcpVector("A0 C9 00 02  1A 2B 3C 4D  00 00 00 04")
        let all = twcc + fir + bye + padded
        try all.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let t = try #require(RTCPTransportWideFeedback(try take(&reader)))
            #expect(t.senderSSRC == 0xFA17_FA17 && t.mediaSSRC == 0x1A2B_3C4D)
            #expect(t.baseSequence == 1 && t.packetStatusCount == 2 && t.referenceTime == 16)
            #expect(t.feedbackPacketCount == 7 && t.fci.count == 12)

            let f = try #require(RTCPFullIntraRequest(try take(&reader)))
            #expect(f.senderSSRC == 0xFA17_FA17 && f.mediaSSRC == 0 && f.entryCount == 2)
            var entries: [RTCPFIREntry] = []
            f.forEachEntry { entries.append($0) }
            #expect(
                entries == [
                    RTCPFIREntry(ssrc: 0x1A2B_3C4D, sequenceNumber: 3),
                    RTCPFIREntry(ssrc: 0x0B0B_0B0B, sequenceNumber: 255),
                ])

            let b = try #require(RTCPBye(try take(&reader)))
            #expect(Array(b.ssrcs) == [0x1A2B_3C4D, 0x0B0B_0B0B])
            #expect(b.reason.map { String(decoding: $0, as: UTF8.self) } == "bye!")

            let p = try take(&reader)
            #expect(p.hasPadding && p.paddingLength == 4 && p.length == 12 && p.body.count == 4)
            let rr = try #require(RTCPReceiverReport(p))
            #expect(rr.senderSSRC == 0x1A2B_3C4D && rr.reportBlocks.isEmpty)
            #expect(ended(&reader) && reader.isAtEnd && reader.packetCount == 4)
        }
    }

    @Test("Negative cumulative loss is sign-extended from 24 bits")
    func negativeLoss() throws {
        let bytes = rtcpVector(
            "81 C9 00 07  00 00 00 01  00 00 00 02  00 FF FF FE  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00")
        try bytes.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let rr = try #require(RTCPReceiverReport(try take(&reader)))
            #expect(rr.reportBlocks[0].cumulativeLost == -2)
        }
    }

    @Test("Malformed compounds stop the reader with the right error")
    func malformed() {
        let rr = rtcpVector("80 C9 00 01  00 00 00 05")
        // Truncated second packet: the first is still returned.
        var r = scan(rr + [0x80, 0xC9])
        #expect(r.packets.count == 1 && r.error == .truncatedHeader(at: 8))
        r = scan(rr + rtcpVector("40 C9 00 01  00 00 00 05"))
        #expect(r.packets.count == 1 && r.error == .badVersion(at: 8))
        r = scan(rtcpVector("80 6F 00 01  00 00 00 05"))
        #expect(r.packets.isEmpty && r.error == .badPacketType(at: 0))
        r = scan(rtcpVector("80 C9 00 02  00 00 00 05"))
        #expect(r.packets.isEmpty && r.error == .lengthBeyondInput(at: 0))
        r = scan(rtcpVector("A0 C9 00 01  00 00 00 00"))  // P set, count 0
        #expect(r.error == .badPadding(at: 0))
        r = scan(rtcpVector("A0 C9 00 01  00 00 00 05"))  // P set, count 5 > 4 bytes of contents
        #expect(r.error == .badPadding(at: 0))
        r = scan([])
        #expect(r.packets.isEmpty && r.error == nil)
        #expect([UInt8]().withUnsafeBytes { RTCPReader.validate($0) } == nil)
        // A packet limit bounds the work on hostile input of many tiny packets.
        let tiny = Array(repeating: rtcpVector("80 CB 00 00"), count: 10).flatMap { $0 }
        let limited = tiny.withUnsafeBytes { raw -> (Int, RTCPReadError?) in
            var reader = RTCPReader(raw, limit: 4)
            while reader.next() != nil {}
            return (reader.packetCount, reader.error)
        }
        #expect(limited.0 == 4 && limited.1 == .tooManyPackets(at: 16))
        #expect(tiny.withUnsafeBytes { RTCPReader.validate($0) } == 10)
    }

    @Test("Decoders reject packets too short for what their counts announce")
    func decoderBounds() {
        let cases: [[UInt8]] = [
            rtcpVector("81 C9 00 01  00 00 00 05"),  // RR, RC 1 but no block
            rtcpVector("80 C8 00 01  00 00 00 05"),  // SR without sender info
            rtcpVector("82 CB 00 01  00 00 00 05"),  // BYE, SC 2 but one SSRC
            rtcpVector("81 CA 00 01  00 00 00 05"),  // SDES chunk without a null item
            rtcpVector("81 CD 00 02  00 00 00 05  00 00 00 06"),  // NACK without FCI
            rtcpVector("84 CE 00 02  00 00 00 05  00 00 00 00"),  // FIR without entries
            rtcpVector("8F CE 00 04  00 00 00 05  00 00 00 00  52 45 4D 42  02 00 00 01"),  // REMB, 2 SSRCs missing
            rtcpVector("8F CE 00 04  00 00 00 05  00 00 00 00  52 45 4D 43  00 00 00 01"),  // not "REMB"
            rtcpVector("8F CD 00 03  00 00 00 05  00 00 00 00  00 01 00 02"),  // TWCC, 4 of 8 fixed bytes
            rtcpVector("81 CE 00 01  00 00 00 05"),  // PLI without media SSRC
        ]
        for bytes in cases {
            bytes.withUnsafeBytes { raw in
                var reader = RTCPReader(raw)
                guard let p = reader.next() else {
                    Issue.record("reader rejected \(bytes)")
                    return
                }
                #expect(RTCPReceiverReport(p) == nil)
                #expect(RTCPSenderReport(p) == nil)
                #expect(RTCPBye(p) == nil)
                #expect(RTCPSourceDescription(p) == nil)
                #expect(RTCPGenericNACK(p) == nil)
                #expect(RTCPFullIntraRequest(p) == nil)
                #expect(RTCPREMB(p) == nil)
                #expect(RTCPTransportWideFeedback(p) == nil)
                #expect(RTCPPictureLossIndication(p) == nil)
            }
        }
    }

    @Test("Reading from a ByteBuffer does not move it")
    func byteBuffer() {
        let buffer = ByteBuffer(bytes: RTCPReaderTests.rrREMB)
        let types = RTCPReader.withReader(over: buffer) { reader -> [UInt8] in
            var out: [UInt8] = []
            while let p = reader.next() { out.append(p.packetType) }
            return out
        }
        #expect(types == [201, 206])
        #expect(buffer.readableBytes == RTCPReaderTests.rrREMB.count)
    }
}

@Suite("RTCP builders")
struct RTCPBuilderTests {
    private static func block(_ i: Int) -> RTCPReportBlock {
        RTCPReportBlock(
            ssrc: UInt32(0x1000 + i), fractionLost: UInt8(i), cumulativeLost: Int32(i) - 10,
            extendedHighestSequence: UInt32(70_000 + i), jitter: UInt32(i * 3), lastSenderReport: UInt32(i << 20),
            delaySinceLastSenderReport: UInt32(i * 65536))
    }

    @Test("Receiver report round trip with 0, 1 and 31 blocks; 32 is refused")
    func receiverReport() throws {
        for n in [0, 1, 31] {
            let blocks = (0..<n).map(Self.block)
            let bytes = try written {
                try RTCPBuilder.writeReceiverReport(senderSSRC: 0xFA17_FA17, reportBlocks: blocks, into: &$0)
            }
            #expect(bytes.count == 8 + 24 * n)
            try bytes.withUnsafeBytes { raw in
                var reader = RTCPReader(raw)
                let rr = try #require(RTCPReceiverReport(try take(&reader)))
                #expect(rr.senderSSRC == 0xFA17_FA17)
                #expect(Array(rr.reportBlocks) == blocks)
                #expect(reader.isAtEnd)
            }
        }
        var buffer = ByteBuffer()
        #expect(throws: RTCPBuildError.tooManyReportBlocks) {
            try RTCPBuilder.writeReceiverReport(senderSSRC: 1, reportBlocks: (0..<32).map(Self.block), into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("The Chromium RR vector is reproduced byte for byte")
    func chromiumBytes() throws {
        let block = RTCPReportBlock(
            ssrc: 0x1A2B_3C4D, fractionLost: 5, cumulativeLost: 16, extendedHighestSequence: 0x0001_2345, jitter: 32,
            lastSenderReport: 0x8ABC_DEF0, delaySinceLastSenderReport: 0x0001_8000)
        let bytes = try written { buf in
            try RTCPBuilder.writeReceiverReport(senderSSRC: 0xFA17_FA17, reportBlocks: [block], into: &buf)
            try RTCPBuilder.writeREMB(senderSSRC: 0xFA17_FA17, bitrate: 1_500_000, ssrcs: [0x1A2B_3C4D], into: &buf)
        }
        #expect(bytes == RTCPReaderTests.rrREMB)
        let pli = written {
            RTCPBuilder.writePictureLossIndication(senderSSRC: 0xFA17_FA17, mediaSSRC: 0x1A2B_3C4D, into: &$0)
        }
        #expect(pli == RTCPReaderTests.pli)
        let nack = try written {
            try RTCPBuilder.writeGenericNACK(
                senderSSRC: 0xFA17_FA17, mediaSSRC: 0x1A2B_3C4D, lostSequences: [100, 101, 103, 116], into: &$0)
        }
        #expect(nack == RTCPReaderTests.nack)
        let sr = written {
            RTCPBuilder.writeSenderReport(
                senderSSRC: 0x1A2B_3C4D, ntpTimestamp: 0xE95E_8B2A_8000_0000, rtpTimestamp: 768_000, packetCount: 500,
                octetCount: 80_000, into: &$0)
        }
        let sdes = try written {
            try RTCPBuilder.writeSourceDescription(ssrc: 0x1A2B_3C4D, cname: Array("q0ZUxDW1j2YwKmDv".utf8), into: &$0)
        }
        #expect(sr + sdes == RTCPReaderTests.srSDES)
    }

    @Test("Sender report round trip with blocks; clamps cumulative loss to 24 bits")
    func senderReport() throws {
        var blocks = [Self.block(1), Self.block(2)]
        blocks[1].cumulativeLost = 50_000_000
        blocks[0].cumulativeLost = -50_000_000
        let bytes = try written {
            try RTCPBuilder.writeSenderReport(
                senderSSRC: 9, ntpTimestamp: 0x0102_0304_0506_0708, rtpTimestamp: 11, packetCount: 12, octetCount: 13,
                reportBlocks: blocks, into: &$0)
        }
        #expect(bytes.count == 28 + 48)
        try bytes.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let sr = try #require(RTCPSenderReport(try take(&reader)))
            #expect(sr.senderSSRC == 9 && sr.ntpTimestamp == 0x0102_0304_0506_0708 && sr.rtpTimestamp == 11)
            #expect(sr.packetCount == 12 && sr.octetCount == 13 && sr.reportBlocks.count == 2)
            #expect(sr.reportBlocks[0].cumulativeLost == RTCPReportBlock.minCumulativeLost)
            #expect(sr.reportBlocks[1].cumulativeLost == RTCPReportBlock.maxCumulativeLost)
            #expect(sr.reportBlocks[1].ssrc == blocks[1].ssrc && sr.reportBlocks[1].jitter == blocks[1].jitter)
        }
    }

    @Test("FIR, BYE and SDES round trips")
    func firByeSDES() throws {
        let entries = [RTCPFIREntry(ssrc: 5, sequenceNumber: 1), RTCPFIREntry(ssrc: 6, sequenceNumber: 200)]
        let bytes = try written { buf in
            try RTCPBuilder.writeFullIntraRequest(senderSSRC: 1, entries: entries, into: &buf)
            try RTCPBuilder.writeBye(ssrcs: [5, 6, 7], into: &buf)
            for name in ["", "a", "abc", "abcd", "abcdefgh"] {
                try RTCPBuilder.writeSourceDescription(ssrc: 8, cname: Array(name.utf8), into: &buf)
            }
        }
        try bytes.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let fir = try #require(RTCPFullIntraRequest(try take(&reader)))
            #expect(fir.senderSSRC == 1 && fir.mediaSSRC == 0)
            #expect((0..<fir.entryCount).map { fir.entry(at: $0) } == entries)
            let bye = try #require(RTCPBye(try take(&reader)))
            #expect(Array(bye.ssrcs) == [5, 6, 7] && bye.reason == nil)
            for name in ["", "a", "abc", "abcd", "abcdefgh"] {
                let p = try take(&reader)
                #expect(p.length % 4 == 0)
                let sdes = try #require(RTCPSourceDescription(p))
                let cname = try #require(sdes.cname())
                #expect(String(decoding: cname, as: UTF8.self) == name)
            }
            #expect(reader.isAtEnd)
        }
        var buffer = ByteBuffer()
        #expect(throws: RTCPBuildError.emptyList) {
            try RTCPBuilder.writeFullIntraRequest(senderSSRC: 1, entries: [RTCPFIREntry](), into: &buffer)
        }
        #expect(throws: RTCPBuildError.tooManyEntries) { try RTCPBuilder.writeBye(ssrcs: Array(0..<32), into: &buffer) }
        #expect(throws: RTCPBuildError.tooLong) {
            try RTCPBuilder.writeSourceDescription(ssrc: 1, cname: [UInt8](repeating: 65, count: 256), into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("NACK packing into PID+BLP items, with wrap-around and duplicates")
    func nackPacking() throws {
        func roundTrip(_ seqs: [UInt16]) throws -> (items: [RTCPNACKItem], lost: [UInt16]) {
            let bytes = try written {
                try RTCPBuilder.writeGenericNACK(senderSSRC: 1, mediaSSRC: 2, lostSequences: seqs, into: &$0)
            }
            return try bytes.withUnsafeBytes { raw in
                var reader = RTCPReader(raw)
                let nack = try #require(RTCPGenericNACK(try take(&reader)))
                #expect(reader.isAtEnd && nack.senderSSRC == 1 && nack.mediaSSRC == 2)
                var lost: [UInt16] = []
                nack.forEachLostSequence { lost.append($0) }
                return ((0..<nack.itemCount).map { nack.item(at: $0) }, lost)
            }
        }
        var r = try roundTrip([100, 101, 103, 116, 117, 65535, 0, 5])
        #expect(
            r.items == [
                RTCPNACKItem(packetID: 100, bitmask: 0x8005), RTCPNACKItem(packetID: 117, bitmask: 0),
                RTCPNACKItem(packetID: 65535, bitmask: 0x0021),
            ])
        #expect(r.lost == [100, 101, 103, 116, 117, 65535, 0, 5])
        r = try roundTrip([7, 7, 8, 8])
        #expect(r.items == [RTCPNACKItem(packetID: 7, bitmask: 1)] && r.lost == [7, 8])
        r = try roundTrip(Array(65530...65535) + Array(0...20))
        #expect(r.items.count == 2 && r.lost == Array(65530...65535) + Array(0...20))

        var rng = SeededGenerator(seed: 4585)
        for _ in 0..<300 {
            let base = UInt16.random(in: 0...UInt16.max, using: &rng)
            let set = Set(
                (0..<Int.random(in: 1...60, using: &rng)).map { _ in base &+ UInt16.random(in: 0...200, using: &rng) })
            let sorted = set.sorted { ($0 &- base) < ($1 &- base) }
            let rt = try roundTrip(sorted)
            #expect(rt.lost == sorted)
            let shuffled = try roundTrip(sorted.shuffled(using: &rng))
            #expect(Set(shuffled.lost) == set)
        }

        var buffer = ByteBuffer()
        #expect(throws: RTCPBuildError.emptyList) {
            try RTCPBuilder.writeGenericNACK(senderSSRC: 1, mediaSSRC: 2, lostSequences: [UInt16](), into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("REMB bitrate encoding never exceeds the input and round trips")
    func remb() throws {
        #expect(RTCPREMB.encode(bitrate: 0) == (0, 0))
        #expect(RTCPREMB.encode(bitrate: 262_143) == (0, 262_143))
        #expect(RTCPREMB.encode(bitrate: 262_144) == (1, 131_072))
        #expect(RTCPREMB.encode(bitrate: 262_145) == (1, 131_072))
        #expect(RTCPREMB.encode(bitrate: 1_500_000) == (3, 187_500))
        #expect(RTCPREMB.encode(bitrate: UInt64.max) == (46, 262_143))
        #expect(RTCPREMB.bitrate(exponent: 63, mantissa: 262_143) == UInt64.max)
        #expect(RTCPREMB.bitrate(exponent: 63, mantissa: 0) == 0)
        var rng = SeededGenerator(seed: 18)
        for _ in 0..<2000 {
            let bitrate = UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng)
            let (e, m) = RTCPREMB.encode(bitrate: bitrate)
            let decoded = RTCPREMB.bitrate(exponent: e, mantissa: m)
            #expect(m <= RTCPREMB.maxMantissa && e < 64)
            #expect(decoded <= bitrate && bitrate - decoded < UInt64(1) << UInt64(e))
        }
        let ssrcs: [UInt32] = [1, 2, 3]
        let bytes = try written {
            try RTCPBuilder.writeREMB(senderSSRC: 7, bitrate: 2_500_123, ssrcs: ssrcs, into: &$0)
        }
        try bytes.withUnsafeBytes { raw in
            var reader = RTCPReader(raw)
            let remb = try #require(RTCPREMB(try take(&reader)))
            #expect(remb.senderSSRC == 7 && Array(remb.ssrcs) == ssrcs)
            #expect(remb.bitrate <= 2_500_123 && remb.bitrate > 2_500_123 - 16)
        }
        var buffer = ByteBuffer()
        #expect(throws: RTCPBuildError.tooManyEntries) {
            try RTCPBuilder.writeREMB(senderSSRC: 1, bitrate: 1, ssrcs: (0..<256).map { UInt32($0) }, into: &buffer)
        }
    }

    @Test("Builders append after existing bytes to form a compound")
    func appends() throws {
        var buffer = ByteBuffer(bytes: [0xEE])
        buffer.moveReaderIndex(forwardBy: 1)
        let n = try RTCPBuilder.writeReceiverReport(senderSSRC: 3, reportBlocks: [Self.block(1)], into: &buffer)
        let m = RTCPBuilder.writePictureLossIndication(senderSSRC: 3, mediaSSRC: 4, into: &buffer)
        #expect(n == 32 && m == 12 && buffer.readableBytes == 44)
        #expect(buffer.withUnsafeReadableBytes { RTCPReader.validate($0) } == 2)
    }
}
