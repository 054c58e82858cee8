import CallsWire
import Testing

/// Seeds for mutation: the Chromium-style vectors plus a few builder outputs.
private let rtcpFuzzSeeds: [[UInt8]] = [
    RTCPReaderTests.rrREMB, RTCPReaderTests.srSDES, RTCPReaderTests.pli, RTCPReaderTests.nack,
    RTCPReaderTests.srSDES + RTCPReaderTests.pli + RTCPReaderTests.nack,
    [0x8F, 0xCD, 0x00, 0x05, 0xFA, 0x17, 0xFA, 0x17, 0x1A, 0x2B, 0x3C, 0x4D, 0, 1, 0, 2, 0, 0, 0x10, 7, 0x20, 2, 4, 8],
    [0x84, 0xCE, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 3, 0, 0, 0],
    [0x82, 0xCB, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2, 4, 0x62, 0x79, 0x65, 0x21, 0, 0, 0],
    [0xA0, 0xC9, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 4],
]

/// Returns a mutated copy of `seed`: byte flips, truncation, splicing, length/count/type tweaks.
private func mutate(_ seed: [UInt8], using rng: inout SeededGenerator) -> [UInt8] {
    var bytes = seed
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !bytes.isEmpty:
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 1 where !bytes.isEmpty:
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
        case 2 where !bytes.isEmpty:
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 3:
            let other = rtcpFuzzSeeds[Int.random(in: 0..<rtcpFuzzSeeds.count, using: &rng)]
            bytes += other.prefix(Int.random(in: 0...other.count, using: &rng))
        case 4 where bytes.count >= 4:
            // Length field of the first packet.
            bytes[2] = UInt8.random(in: 0...1, using: &rng) == 0 ? 0 : 0xFF
            bytes[3] = UInt8.random(in: 0...255, using: &rng)
        case 5 where !bytes.isEmpty:
            // Count/FMT and P bit of the first packet.
            bytes[0] = 0x80 | UInt8.random(in: 0...0x3F, using: &rng)
        case 6 where bytes.count >= 2:
            bytes[1] = UInt8.random(in: 200...207, using: &rng)
        default:
            bytes.append(UInt8.random(in: 0...255, using: &rng))
        }
    }
    return bytes
}

/// True when `inner` lies within `outer` (an empty view may sit at either end or have no base address).
private func contained(_ inner: UnsafeRawBufferPointer, in outer: UnsafeRawBufferPointer) -> Bool {
    guard let ib = inner.baseAddress else { return inner.isEmpty }
    guard let ob = outer.baseAddress else { return false }
    return ib >= ob && ib + inner.count <= ob + outer.count
}

/// Reads everything in `bytes` with every decoder, checking every reported item lies inside the input.
/// Returns the number of packets read.
private func exercise(_ raw: UnsafeRawBufferPointer, decoded: inout [String: Int]) -> Int {
    var reader = RTCPReader(raw)
    var steps = 0
    var lostScratch = (0..<64).map { _ in UInt16(0) }
    while let p = reader.next() {
        steps += 1
        #expect(steps <= reader.limit)
        #expect(p.offset >= 0 && p.length >= 4 && p.offset + p.length <= raw.count)
        #expect(contained(p.bytes, in: raw) && contained(p.body, in: p.bytes))
        #expect(p.paddingLength >= 0 && p.paddingLength <= p.length - 4)
        if let sr = RTCPSenderReport(p) {
            decoded["sr", default: 0] += 1
            #expect(sr.reportBlocks.count == Int(p.count))
            for b in sr.reportBlocks { _ = b.cumulativeLost }
        }
        if let rr = RTCPReceiverReport(p) {
            decoded["rr", default: 0] += 1
            #expect(rr.reportBlocks.count == Int(p.count))
            for b in rr.reportBlocks { #expect(b.cumulativeLost >= RTCPReportBlock.minCumulativeLost) }
        }
        if let sdes = RTCPSourceDescription(p) {
            decoded["sdes", default: 0] += 1
            sdes.forEachItem { _, _, value in #expect(contained(value, in: p.body)) }
            _ = sdes.cname()
        }
        if let bye = RTCPBye(p) {
            decoded["bye", default: 0] += 1
            #expect(bye.ssrcs.count * 4 <= p.body.count)
            for _ in bye.ssrcs {}
            if let reason = bye.reason { #expect(contained(reason, in: p.body)) }
        }
        if let fb = RTCPFeedback(p) { #expect(contained(fb.fci, in: p.body)) }
        if let nack = RTCPGenericNACK(p) {
            decoded["nack", default: 0] += 1
            var visited = 0
            nack.forEachLostSequence { _ in visited += 1 }
            #expect(visited == nack.lostCount && visited <= 17 * nack.itemCount && nack.itemCount * 4 <= p.body.count)
            let n = lostScratch.withUnsafeMutableBufferPointer { nack.lostSequences(into: $0) }
            #expect(n == min(64, visited))
        }
        if let twcc = RTCPTransportWideFeedback(p) {
            decoded["twcc", default: 0] += 1
            #expect(contained(twcc.fci, in: p.body))
        }
        if RTCPPictureLossIndication(p) != nil { decoded["pli", default: 0] += 1 }
        if let fir = RTCPFullIntraRequest(p) {
            decoded["fir", default: 0] += 1
            #expect(fir.entryCount * 8 + 8 <= p.body.count)
            fir.forEachEntry { _ in }
        }
        if let remb = RTCPREMB(p) {
            decoded["remb", default: 0] += 1
            #expect(remb.ssrcs.count * 4 + 16 <= p.body.count)
            for _ in remb.ssrcs {}
            _ = remb.bitrate
        }
    }
    #expect(reader.error != nil || reader.isAtEnd)
    return steps
}

@Suite("RTCP robustness")
struct RTCPFuzzTests {
    @Test("30k random and mutated inputs never trap and stay in bounds")
    func fuzz() {
        var rng = SeededGenerator(seed: 3550)
        var packetsSeen = 0
        var validCompounds = 0
        var decoded: [String: Int] = [:]
        for i in 0..<30_000 {
            let bytes: [UInt8]
            if i % 4 == 0 {
                bytes = fuzzBytes(Int.random(in: 0...96, using: &rng), using: &rng).enumerated().map { j, b in
                    // Bias towards plausible headers so the decoders get work.
                    j == 0 ? 0x80 | (b & 0x3F) : (j == 1 ? 200 + b % 8 : b)
                }
            } else {
                bytes = mutate(rtcpFuzzSeeds[Int.random(in: 0..<rtcpFuzzSeeds.count, using: &rng)], using: &rng)
            }
            packetsSeen += bytes.withUnsafeBytes { exercise($0, decoded: &decoded) }
            if bytes.withUnsafeBytes({ RTCPReader.validate($0) }) != nil { validCompounds += 1 }
        }
        // The corpus must actually reach the decoders.
        #expect(packetsSeen > 12_000)
        #expect(validCompounds > 3_000)
        for kind in ["sr", "rr", "sdes", "bye", "nack", "twcc", "pli", "fir", "remb"] {
            #expect(decoded[kind, default: 0] > 30, "decoder \(kind) was rarely reached: \(decoded)")
        }
    }
}

/// `count` random bytes.
private func fuzzBytes(_ count: Int, using rng: inout SeededGenerator) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}
