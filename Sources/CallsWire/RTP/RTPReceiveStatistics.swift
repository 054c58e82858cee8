/// Reception statistics of one RTP source, for the report blocks of RR/SR packets (RFC 3550 §6.4.1, A.1, A.3, A.8).
///
/// Feed every received packet of the source to ``record(sequenceNumber:timestamp:arrival:)`` (arrival in RTP
/// timestamp units of the source's clock) or ``record(sequenceNumber:timestamp:arrivalSeconds:clockRate:)``, every
/// SR from the source to ``recordSenderReport(ntp:at:)``, and call ``makeReportBlock(at:)`` once per report
/// interval. Sequence tracking follows A.1: a new source is on probation until `minSequential` consecutive
/// packets arrive, a jump of `maxDropout` or more is treated as a restart once confirmed by the next packet, and
/// late or duplicate packets within `maxMisorder` are counted as received. Jitter follows A.8 and §6.4.1
/// (J += (|D| − J) / 16), updated only on packets that advance the highest sequence number, since reordered ones
/// would count their delay twice. Plain value; one per SSRC.
public struct RTPReceiveStatistics: Hashable, Sendable {
    /// Largest forward jump (in sequence numbers) still taken as in-order loss (RFC 3550 A.1 MAX_DROPOUT).
    public static let defaultMaxDropout: UInt16 = 3000
    /// Largest backward step still taken as a late packet (RFC 3550 A.1 MAX_MISORDER).
    public static let defaultMaxMisorder: UInt16 = 100
    /// Consecutive packets needed before a new source counts (RFC 3550 A.1 MIN_SEQUENTIAL).
    public static let defaultMinSequential = 2

    /// The source these statistics are about (SSRC_n in the report block).
    public let ssrc: UInt32
    private let maxDropout: UInt16
    private let maxMisorder: UInt16
    private let minSequential: Int

    private var started = false
    private var maxSeq: UInt16 = 0
    /// Sequence-number cycles, shifted: a multiple of 65536.
    private var cycles: UInt32 = 0
    private var baseSeq: UInt32 = 0
    /// Last "bad" sequence + 1 (A.1); an out-of-range value means none.
    private var badSeq: UInt32 = 1 << 16 + 1
    private var probation = 0
    /// Packets counted since the source became valid (duplicates included, as in A.1).
    public private(set) var received: Int = 0
    private var expectedPrior: Int64 = 0
    private var receivedPrior: Int = 0

    private var lastTransit: Int32 = 0
    private var hasTransit = false
    private var jitterValue: Double = 0

    private var lastSRCompact: UInt32 = 0
    private var lastSRArrivalNanoseconds: UInt64 = 0
    private var hasSR = false

    /// Statistics for `ssrc`. `minSequential` ≤ 1 accepts a source at its first packet (no probation).
    public init(
        ssrc: UInt32, maxDropout: UInt16 = defaultMaxDropout, maxMisorder: UInt16 = defaultMaxMisorder,
        minSequential: Int = defaultMinSequential
    ) {
        self.ssrc = ssrc
        self.maxDropout = maxDropout
        self.maxMisorder = maxMisorder
        self.minSequential = max(1, minSequential)
    }

    /// True once probation is over and packets are being counted.
    public var isValid: Bool { started && probation == 0 }

    /// Extended highest sequence number received (cycles × 65536 + highest sequence number).
    public var extendedHighestSequence: UInt32 { cycles &+ UInt32(maxSeq) }

    /// Packets expected since the source became valid: extended highest − base + 1 (A.3).
    public var expected: Int64 { isValid ? Int64(extendedHighestSequence) - Int64(baseSeq) + 1 : 0 }

    /// expected − received; negative when duplicates arrived (A.3).
    public var cumulativeLost: Int64 { expected - Int64(received) }

    /// Current interarrival jitter estimate, in RTP timestamp units (fractional).
    public var jitter: Double { jitterValue }

    /// Records a received packet. `arrival` is the arrival time in the source's RTP clock units (any origin,
    /// wrapping at 2^32). Returns true when the packet was counted (false during probation, and for a large
    /// jump that is not confirmed yet).
    @discardableResult
    public mutating func record(sequenceNumber seq: UInt16, timestamp: UInt32, arrival: UInt32) -> Bool {
        let (counted, advanced) = updateSequence(seq)
        if advanced {
            updateJitter(timestamp: timestamp, arrival: arrival)
        }
        return counted
    }

    /// Records a received packet whose arrival time is `arrivalSeconds` on any monotonic clock; `clockRate` is
    /// the source's RTP clock rate in Hz (48000 for Opus, 90000 for video).
    @discardableResult
    public mutating func record(
        sequenceNumber: UInt16, timestamp: UInt32, arrivalSeconds: Double, clockRate: Int
    ) -> Bool {
        record(
            sequenceNumber: sequenceNumber, timestamp: timestamp,
            arrival: Self.rtpUnits(seconds: arrivalSeconds, clockRate: clockRate))
    }

    /// Records an RTP packet by its parsed header.
    @discardableResult
    public mutating func record(_ header: RTPHeader, arrival: UInt32) -> Bool {
        record(sequenceNumber: header.sequenceNumber, timestamp: header.timestamp, arrival: arrival)
    }

    /// Records an SR from this source: `ntp` is its 64-bit NTP timestamp, `nanoseconds` the local monotonic
    /// arrival time. The next report blocks carry LSR (middle 32 bits of `ntp`) and DLSR.
    public mutating func recordSenderReport(ntp: UInt64, at nanoseconds: UInt64) {
        lastSRCompact = UInt32(truncatingIfNeeded: ntp >> 16)
        lastSRArrivalNanoseconds = nanoseconds
        hasSR = true
    }

    /// The report block for this source at local monotonic time `nanoseconds` (same clock as
    /// ``recordSenderReport(ntp:at:)``), or nil while no packet has been counted. Starts a new report interval:
    /// the fraction lost covers the packets since the previous call (A.3).
    public mutating func makeReportBlock(at nanoseconds: UInt64) -> RTCPReportBlock? {
        guard isValid else { return nil }
        let expectedNow = expected
        let expectedInterval = expectedNow - expectedPrior
        expectedPrior = expectedNow
        let receivedInterval = Int64(received - receivedPrior)
        receivedPrior = received
        let lostInterval = expectedInterval - receivedInterval
        let fraction: UInt8 =
            expectedInterval == 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        let lost = Int32(
            min(max(cumulativeLost, Int64(RTCPReportBlock.minCumulativeLost)), Int64(RTCPReportBlock.maxCumulativeLost))
        )
        var dlsr: UInt32 = 0
        if hasSR, nanoseconds > lastSRArrivalNanoseconds {
            // Units of 1/65536 s; saturate rather than wrap (≈ 18 hours).
            let units = (nanoseconds - lastSRArrivalNanoseconds).multipliedFullWidth(by: 65536)
            let q = units.high == 0 ? units.low / 1_000_000_000 : UInt64.max
            dlsr = UInt32(clamping: q)
        }
        return RTCPReportBlock(
            ssrc: ssrc, fractionLost: fraction, cumulativeLost: lost, extendedHighestSequence: extendedHighestSequence,
            jitter: UInt32(clamping: Int64(jitterValue.rounded(.down))), lastSenderReport: hasSR ? lastSRCompact : 0,
            delaySinceLastSenderReport: dlsr)
    }

    /// RFC 3550 A.1 `update_seq`: whether the packet is counted, and whether it became the new highest.
    private mutating func updateSequence(_ seq: UInt16) -> (counted: Bool, advanced: Bool) {
        if !started {
            started = true
            initSequence(seq)
            maxSeq = seq &- 1
            probation = minSequential
        }
        if probation > 0 {
            if seq == maxSeq &+ 1 {
                probation -= 1
                maxSeq = seq
                if probation == 0 {
                    initSequence(seq)
                    received += 1
                    return (true, true)
                }
            } else {
                probation = minSequential - 1
                maxSeq = seq
                if probation == 0 {
                    initSequence(seq)
                    received += 1
                    return (true, true)
                }
            }
            return (false, false)
        }
        let udelta = seq &- maxSeq
        var advanced = false
        if udelta < maxDropout {
            // In order, with a permissible gap (udelta 0 is a duplicate of the highest).
            if seq < maxSeq { cycles &+= 1 << 16 }
            maxSeq = seq
            advanced = udelta != 0
        } else if Int(udelta) <= 65536 - Int(maxMisorder) {
            // A very large jump.
            if UInt32(seq) == badSeq {
                // Two sequential packets: assume the other side restarted without telling us.
                initSequence(seq)
                advanced = true
            } else {
                badSeq = UInt32(seq &+ 1)
                return (false, false)
            }
        } else {
            // Duplicate or reordered packet: counted, highest unchanged.
        }
        received += 1
        return (true, advanced)
    }

    /// RFC 3550 A.1 `init_seq`, also resetting the report interval.
    private mutating func initSequence(_ seq: UInt16) {
        baseSeq = UInt32(seq)
        maxSeq = seq
        badSeq = 1 << 16 + 1
        cycles = 0
        received = 0
        receivedPrior = 0
        expectedPrior = 0
        hasTransit = false
    }

    /// RFC 3550 A.8: transit = arrival − timestamp, D = transit − previous transit, J += (|D| − J) / 16.
    private mutating func updateJitter(timestamp: UInt32, arrival: UInt32) {
        let transit = Int32(bitPattern: arrival &- timestamp)
        if hasTransit {
            let d = Double(transit &- lastTransit).magnitude
            jitterValue += (d - jitterValue) / 16
        }
        lastTransit = transit
        hasTransit = true
    }

    /// `seconds × clockRate` rounded to the nearest unit, modulo 2^32; never traps on odd input (NaN, infinities
    /// and negatives give 0).
    static func rtpUnits(seconds: Double, clockRate: Int) -> UInt32 {
        let x = (seconds * Double(clockRate)).rounded()
        guard x.isFinite, x >= 0 else { return 0 }
        let wrapped = x.truncatingRemainder(dividingBy: 4_294_967_296)
        return UInt32(wrapped)
    }
}
