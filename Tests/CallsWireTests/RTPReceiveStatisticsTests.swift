import CallsWire
import Testing

/// The next report block, or a thrown test failure.
private func report(
    _ stats: inout RTPReceiveStatistics, at nanoseconds: UInt64, sourceLocation: SourceLocation = #_sourceLocation
) throws -> RTCPReportBlock {
    let block = stats.makeReportBlock(at: nanoseconds)
    return try #require(block, sourceLocation: sourceLocation)
}

@Suite("RTP receive statistics (RFC 3550 A.1, A.3, A.8)")
struct RTPReceiveStatisticsTests {
    /// Records `seqs` with timestamps and arrivals that keep jitter at 0; returns which were counted.
    @discardableResult
    private static func feed(_ stats: inout RTPReceiveStatistics, _ seqs: [UInt16]) -> [Bool] {
        seqs.map { stats.record(sequenceNumber: $0, timestamp: UInt32($0) &* 160, arrival: UInt32($0) &* 160) }
    }

    @Test("Probation: the first packet is not counted, the base is the second")
    func probation() throws {
        var s = RTPReceiveStatistics(ssrc: 42)
        let initial = s.makeReportBlock(at: 0)
        #expect(initial == nil)
        let counted = Self.feed(&s, Array(10...19))
        #expect(counted == [false] + Array(repeating: true, count: 9))
        #expect(s.isValid && s.received == 9 && s.expected == 9 && s.cumulativeLost == 0)
        let block = try report(&s, at: 0)
        #expect(block.ssrc == 42 && block.extendedHighestSequence == 19)
        #expect(block.fractionLost == 0 && block.cumulativeLost == 0 && block.jitter == 0)
        #expect(block.lastSenderReport == 0 && block.delaySinceLastSenderReport == 0)

        // A non-sequential second packet restarts probation.
        var t = RTPReceiveStatistics(ssrc: 1, minSequential: 3)
        let counted1 = Self.feed(&t, [5, 9, 10, 11, 12])
        #expect(counted1 == [false, false, false, true, true])
        #expect(t.received == 2 && t.expected == 2)
    }

    @Test("Loss gives fraction lost per interval and cumulative loss")
    func loss() throws {
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&s, [0, 1, 2, 5, 6, 7, 8, 9])
        let first = try report(&s, at: 0)
        #expect(first.cumulativeLost == 2 && first.extendedHighestSequence == 9)
        #expect(first.fractionLost == 51)  // 2 × 256 / 10 = 51.2
        Self.feed(&s, Array(10...19))
        let second = try report(&s, at: 0)
        #expect(second.fractionLost == 0 && second.cumulativeLost == 2 && second.extendedHighestSequence == 19)
        // Interval where everything after 19 up to 23 was lost except 23.
        Self.feed(&s, [23])
        let third = try report(&s, at: 0)
        #expect(third.fractionLost == 192 && third.cumulativeLost == 5)  // 3 of 4 lost: 3 × 256 / 4
    }

    @Test("Sequence wrap-around counts a cycle")
    func wrapAround() throws {
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&s, Array(65530...65535) + Array(0...5))
        #expect(s.received == 12 && s.expected == 12)
        let block = try report(&s, at: 0)
        #expect(block.extendedHighestSequence == 65536 + 5 && block.cumulativeLost == 0)
        // Loss straddling the wrap.
        var t = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&t, [65533, 65534, 1, 2])
        #expect(t.extendedHighestSequence == 65538 && t.expected == 6 && t.cumulativeLost == 2)
        // A late packet from before the wrap does not add a cycle.
        Self.feed(&t, [65535])
        #expect(t.extendedHighestSequence == 65538 && t.cumulativeLost == 1)
    }

    @Test("Reordering and duplicates")
    func reorderAndDuplicates() throws {
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        let allCounted = Self.feed(&s, [1, 2, 4, 3, 5])
        #expect(allCounted.allSatisfy { $0 })
        #expect(s.received == 5 && s.expected == 5 && s.cumulativeLost == 0 && s.extendedHighestSequence == 5)

        var d = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&d, [1, 2, 3, 3, 4, 2])
        #expect(d.received == 6 && d.expected == 4 && d.cumulativeLost == -2)
        let block = try report(&d, at: 0)
        #expect(block.cumulativeLost == -2 && block.fractionLost == 0)
    }

    @Test("A large jump is ignored unless the next packet confirms a restart")
    func largeJump() {
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&s, Array(1...10))
        let counted2 = Self.feed(&s, [20000])
        #expect(counted2 == [false])
        let counted3 = Self.feed(&s, [11])
        #expect(counted3 == [true])
        #expect(s.extendedHighestSequence == 11 && s.received == 11)
        // Now a confirmed restart.
        let counted4 = Self.feed(&s, [40000, 40001])
        #expect(counted4 == [false, true])
        #expect(s.extendedHighestSequence == 40001 && s.received == 1 && s.expected == 1)
        // A jump backwards by more than the misorder window is also a jump.
        let counted5 = Self.feed(&s, [39000])
        #expect(counted5 == [false])
        // A late packet within the misorder window is counted.
        let counted6 = Self.feed(&s, [39950])
        #expect(counted6 == [true])
    }

    @Test("Jitter computed by hand (8 kHz clock)")
    func jitter() throws {
        // Timestamps 0,160,320,480; arrivals 0,170,320,490 → transit 0,10,0,10; |D| = 10,10,10.
        // J1 = 10/16 = 0.625; J2 = 0.625 + (10 − 0.625)/16 = 1.2109375;
        // J3 = 1.2109375 + (10 − 1.2109375)/16 = 1.76025390625.
        let timestamps: [UInt32] = [0, 160, 320, 480]
        let arrivals: [UInt32] = [0, 170, 320, 490]
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        for i in 0..<4 { s.record(sequenceNumber: UInt16(i), timestamp: timestamps[i], arrival: arrivals[i]) }
        #expect(s.jitter == 1.760_253_906_25)
        #expect(try report(&s, at: 0).jitter == 1)

        // The same in seconds, with an arbitrary clock origin and RTP timestamps that wrap.
        var t = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        for i in 0..<4 {
            t.record(
                sequenceNumber: UInt16(i), timestamp: timestamps[i] &+ 0xFFFF_FF00,
                arrivalSeconds: 1000 + Double(arrivals[i]) / 8000, clockRate: 8000)
        }
        #expect(t.jitter == 1.760_253_906_25)

        // A reordered packet does not update jitter; a duplicate neither.
        var u = s
        u.record(sequenceNumber: 2, timestamp: 320, arrival: 9999)
        u.record(sequenceNumber: 3, timestamp: 480, arrival: 9999)
        #expect(u.jitter == s.jitter)

        // Odd arrival seconds never trap.
        var v = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        for x in [Double.nan, .infinity, -1, 1e300] {
            v.record(sequenceNumber: 1, timestamp: 0, arrivalSeconds: x, clockRate: 90000)
        }
    }

    @Test("LSR and DLSR from the last sender report")
    func lsrDLSR() throws {
        var s = RTPReceiveStatistics(ssrc: 1, minSequential: 1)
        Self.feed(&s, [1])
        s.recordSenderReport(ntp: 0xE95E_8B2A_8000_0000, at: 1_000_000_000)
        let block = try report(&s, at: 2_500_000_000)
        #expect(block.lastSenderReport == 0x8B2A_8000)
        #expect(block.delaySinceLastSenderReport == 98_304)  // 1.5 s × 65536
        let immediate = try report(&s, at: 1_000_000_000)
        #expect(immediate.delaySinceLastSenderReport == 0 && immediate.lastSenderReport == 0x8B2A_8000)
        let late = try report(&s, at: UInt64.max)
        #expect(late.delaySinceLastSenderReport == UInt32.max)
    }
}
