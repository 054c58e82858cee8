/// One reception report block (RFC 3550 §6.4.1, 24 bytes), as carried by SR and RR packets.
public struct RTCPReportBlock: Hashable, Sendable {
    /// Wire size of a block.
    public static let length = 24
    /// Largest cumulative-lost value the signed 24-bit field holds.
    public static let maxCumulativeLost: Int32 = 0x7F_FFFF
    /// Smallest cumulative-lost value the signed 24-bit field holds.
    public static let minCumulativeLost: Int32 = -0x80_0000

    /// The source this block reports on (SSRC_n).
    public var ssrc: UInt32
    /// Fraction of packets lost since the previous report, as a fixed-point number with the binary point at the
    /// left (lost × 256 / expected).
    public var fractionLost: UInt8
    /// Cumulative number of packets lost (signed 24-bit: duplicates can make it negative). Clamped on write.
    public var cumulativeLost: Int32
    /// Extended highest sequence number received: cycles × 65536 + highest sequence number.
    public var extendedHighestSequence: UInt32
    /// Interarrival jitter in RTP timestamp units (RFC 3550 §6.4.1, A.8).
    public var jitter: UInt32
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source (LSR), 0 if none.
    public var lastSenderReport: UInt32
    /// Delay since that SR was received, in units of 1/65536 s (DLSR), 0 if none.
    public var delaySinceLastSenderReport: UInt32

    /// A block with the given fields (all but `ssrc` default to 0).
    public init(
        ssrc: UInt32, fractionLost: UInt8 = 0, cumulativeLost: Int32 = 0, extendedHighestSequence: UInt32 = 0,
        jitter: UInt32 = 0, lastSenderReport: UInt32 = 0, delaySinceLastSenderReport: UInt32 = 0
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequence = extendedHighestSequence
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }

    /// Reads a block from the 24 bytes at `offset` of `p` (caller checks bounds).
    init(reading p: UnsafeRawBufferPointer, at offset: Int) {
        ssrc = RTCPBytes.u32(p, offset)
        fractionLost = p[offset + 4]
        let raw = RTCPBytes.u24(p, offset + 5)
        // Sign-extend the 24-bit two's complement value.
        cumulativeLost = Int32(bitPattern: raw << 8) >> 8
        extendedHighestSequence = RTCPBytes.u32(p, offset + 8)
        jitter = RTCPBytes.u32(p, offset + 12)
        lastSenderReport = RTCPBytes.u32(p, offset + 16)
        delaySinceLastSenderReport = RTCPBytes.u32(p, offset + 20)
    }
}

/// The report blocks of an SR or RR, read in place (no array is built).
public struct RTCPReportBlocks: RandomAccessCollection {
    private let bytes: UnsafeRawBufferPointer
    /// Always 0.
    public let startIndex = 0
    /// The number of entries.
    public let endIndex: Int

    init(_ bytes: UnsafeRawBufferPointer, count: Int) {
        self.bytes = bytes
        self.endIndex = count
    }

    /// The block at `position`, decoded from its 24 bytes.
    public subscript(position: Int) -> RTCPReportBlock {
        precondition(position >= 0 && position < endIndex, "report block index out of range")
        return RTCPReportBlock(reading: bytes, at: position * RTCPReportBlock.length)
    }

    /// A concrete iterator, so that `for block in blocks` allocates nothing even in unoptimised builds.
    public struct Iterator: IteratorProtocol {
        private let blocks: RTCPReportBlocks
        private var index = 0

        init(_ blocks: RTCPReportBlocks) { self.blocks = blocks }

        /// The next block, or nil after the last.
        public mutating func next() -> RTCPReportBlock? {
            guard index < blocks.endIndex else { return nil }
            defer { index += 1 }
            return blocks[index]
        }
    }

    /// An iterator from the first entry.
    public func makeIterator() -> Iterator { Iterator(self) }
}

/// A list of 32-bit SSRCs stored back to back in a packet (BYE sources, REMB SSRC feedback), read in place.
public struct RTCPSSRCList: RandomAccessCollection {
    private let bytes: UnsafeRawBufferPointer
    /// Always 0.
    public let startIndex = 0
    /// The number of entries.
    public let endIndex: Int

    init(_ bytes: UnsafeRawBufferPointer, count: Int) {
        self.bytes = bytes
        self.endIndex = count
    }

    /// The SSRC at `position`.
    public subscript(position: Int) -> UInt32 {
        precondition(position >= 0 && position < endIndex, "SSRC index out of range")
        return RTCPBytes.u32(bytes, position * 4)
    }

    /// A concrete iterator, so that `for ssrc in list` allocates nothing even in unoptimised builds.
    public struct Iterator: IteratorProtocol {
        private let list: RTCPSSRCList
        private var index = 0

        init(_ list: RTCPSSRCList) { self.list = list }

        /// The next SSRC, or nil after the last.
        public mutating func next() -> UInt32? {
            guard index < list.endIndex else { return nil }
            defer { index += 1 }
            return list[index]
        }
    }

    /// An iterator from the first entry.
    public func makeIterator() -> Iterator { Iterator(self) }
}

/// A Sender Report (PT 200, RFC 3550 §6.4.1): sender info and up to 31 report blocks. A view into the packet.
public struct RTCPSenderReport {
    /// The sender's SSRC.
    public let senderSSRC: UInt32
    /// 64-bit NTP timestamp (seconds since 1900 in the high word, fraction in the low word) of this report.
    public let ntpTimestamp: UInt64
    /// The same instant in the RTP clock of this source.
    public let rtpTimestamp: UInt32
    /// RTP data packets sent since starting transmission.
    public let packetCount: UInt32
    /// RTP payload octets sent since starting transmission.
    public let octetCount: UInt32
    /// The report blocks (count given by the RC field).
    public let reportBlocks: RTCPReportBlocks

    /// The middle 32 bits of ``ntpTimestamp``, which receivers echo back as LSR.
    public var compactNTP: UInt32 { UInt32(truncatingIfNeeded: ntpTimestamp >> 16) }

    /// Decodes `packet`; nil unless it is PT 200 with room for the sender info and RC blocks. Profile-specific
    /// extensions after the blocks are ignored.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.senderReport else { return nil }
        let body = packet.body
        let n = Int(packet.count)
        guard body.count >= 24 + n * RTCPReportBlock.length else { return nil }
        senderSSRC = RTCPBytes.u32(body, 0)
        ntpTimestamp = RTCPBytes.u64(body, 4)
        rtpTimestamp = RTCPBytes.u32(body, 12)
        packetCount = RTCPBytes.u32(body, 16)
        octetCount = RTCPBytes.u32(body, 20)
        reportBlocks = RTCPReportBlocks(
            UnsafeRawBufferPointer(rebasing: body[24..<(24 + n * RTCPReportBlock.length)]), count: n)
    }
}

/// A Receiver Report (PT 201, RFC 3550 §6.4.2): the reporter's SSRC and up to 31 report blocks. A view.
public struct RTCPReceiverReport {
    /// The SSRC of the receiver sending the report.
    public let senderSSRC: UInt32
    /// The report blocks (count given by the RC field).
    public let reportBlocks: RTCPReportBlocks

    /// Decodes `packet`; nil unless it is PT 201 with room for RC blocks.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.receiverReport else { return nil }
        let body = packet.body
        let n = Int(packet.count)
        guard body.count >= 4 + n * RTCPReportBlock.length else { return nil }
        senderSSRC = RTCPBytes.u32(body, 0)
        reportBlocks = RTCPReportBlocks(
            UnsafeRawBufferPointer(rebasing: body[4..<(4 + n * RTCPReportBlock.length)]), count: n)
    }
}

/// A Goodbye packet (PT 203, RFC 3550 §6.6): the leaving sources and an optional reason. A view.
public struct RTCPBye {
    /// The SSRCs/CSRCs that are leaving (count given by the SC field).
    public let ssrcs: RTCPSSRCList
    /// The UTF-8 reason for leaving, if present and complete.
    public let reason: UnsafeRawBufferPointer?

    /// Decodes `packet`; nil unless it is PT 203 with room for SC sources.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.bye else { return nil }
        let body = packet.body
        let n = Int(packet.count)
        guard body.count >= n * 4 else { return nil }
        ssrcs = RTCPSSRCList(UnsafeRawBufferPointer(rebasing: body[0..<(n * 4)]), count: n)
        let rest = n * 4
        if body.count > rest, rest + 1 + Int(body[rest]) <= body.count {
            reason = UnsafeRawBufferPointer(rebasing: body[(rest + 1)..<(rest + 1 + Int(body[rest]))])
        } else {
            reason = nil
        }
    }
}

/// A Source Description packet (PT 202, RFC 3550 §6.5): chunks of (SSRC, items). A view; the structure of
/// every chunk is validated by the initialiser, and ``forEachItem(_:)`` walks them without allocating.
public struct RTCPSourceDescription {
    /// SDES item type of the canonical name (RFC 3550 §6.5.1).
    public static let cnameItem: UInt8 = 1

    private let body: UnsafeRawBufferPointer
    /// Number of chunks (the SC field).
    public let chunkCount: Int

    /// Decodes `packet`; nil unless it is PT 202 and each of its SC chunks is an SSRC followed by items that fit,
    /// ended by a null octet.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.sourceDescription else { return nil }
        body = packet.body
        chunkCount = Int(packet.count)
        guard Self.walk(body, chunks: chunkCount, { _, _, _ in }) else { return nil }
    }

    /// Calls `body` for every item: the chunk's SSRC, the item type (1 CNAME, 2 NAME, ...) and the item's value.
    public func forEachItem(_ visit: (_ ssrc: UInt32, _ type: UInt8, _ value: UnsafeRawBufferPointer) -> Void) {
        _ = Self.walk(body, chunks: chunkCount, visit)
    }

    /// The CNAME of `ssrc` (or of the first chunk when `ssrc` is nil) as UTF-8 bytes, if present.
    public func cname(of ssrc: UInt32? = nil) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        forEachItem { s, type, value in
            if found == nil, type == Self.cnameItem, ssrc == nil || ssrc == s { found = value }
        }
        return found
    }

    /// Walks `chunks` chunks; false when one does not fit.
    private static func walk(
        _ p: UnsafeRawBufferPointer, chunks: Int, _ visit: (UInt32, UInt8, UnsafeRawBufferPointer) -> Void
    ) -> Bool {
        var i = 0
        for _ in 0..<chunks {
            guard i + 4 <= p.count else { return false }
            let ssrc = RTCPBytes.u32(p, i)
            i += 4
            while true {
                guard i < p.count else { return false }
                let type = p[i]
                if type == 0 { break }
                guard i + 2 <= p.count else { return false }
                let len = Int(p[i + 1])
                guard i + 2 + len <= p.count else { return false }
                visit(ssrc, type, UnsafeRawBufferPointer(rebasing: p[(i + 2)..<(i + 2 + len)]))
                i += 2 + len
            }
            // The null item, then padding to the next 32-bit boundary (relative to the body, which is aligned).
            i = (i + 4) & ~3
            guard i <= p.count else { return false }
        }
        return true
    }
}

/// The common part of RTPFB/PSFB feedback packets (RFC 4585 §6.1): PT 205 or 206, FMT, the two SSRCs and the
/// feedback control information (FCI). A view.
public struct RTCPFeedback {
    /// 205 (RTPFB) or 206 (PSFB).
    public let packetType: UInt8
    /// The feedback message type (FMT).
    public let format: UInt8
    /// SSRC of the packet sender.
    public let senderSSRC: UInt32
    /// SSRC of the media source the feedback is about (0 for FIR and REMB, which name sources in the FCI).
    public let mediaSSRC: UInt32
    /// The feedback control information after the two SSRCs.
    public let fci: UnsafeRawBufferPointer

    /// Decodes `packet`; nil unless it is PT 205 or 206 with at least the two SSRCs.
    public init?(_ packet: RTCPPacket) {
        guard
            packet.packetType == RTCPPacketType.transportFeedback
                || packet.packetType == RTCPPacketType.payloadSpecificFeedback
        else { return nil }
        let body = packet.body
        guard body.count >= 8 else { return nil }
        packetType = packet.packetType
        format = packet.count
        senderSSRC = RTCPBytes.u32(body, 0)
        mediaSSRC = RTCPBytes.u32(body, 4)
        fci = UnsafeRawBufferPointer(rebasing: body[8...])
    }
}

/// One Generic NACK FCI entry (RFC 4585 §6.2.1): a lost packet ID and a bitmask of the 16 following ones.
public struct RTCPNACKItem: Hashable, Sendable {
    /// Packet ID: the RTP sequence number of a lost packet.
    public var packetID: UInt16
    /// Bitmask of following lost packets: bit i (LSB = 0) set means PID + i + 1 is lost too.
    public var bitmask: UInt16

    /// An item naming `packetID` and the packets flagged in `bitmask`.
    public init(packetID: UInt16, bitmask: UInt16) {
        self.packetID = packetID
        self.bitmask = bitmask
    }

    /// Number of sequence numbers this item names (1...17).
    public var lostCount: Int { 1 + bitmask.nonzeroBitCount }

    /// Calls `visit` with every sequence number this item names, in increasing (wrapping) order.
    public func forEachLostSequence(_ visit: (UInt16) -> Void) {
        visit(packetID)
        var mask = bitmask
        while mask != 0 {
            let bit = mask.trailingZeroBitCount
            visit(packetID &+ UInt16(bit + 1))
            mask &= mask - 1
        }
    }
}

/// A Generic NACK (RTPFB FMT 1, RFC 4585 §6.2.1): the media source and its lost sequence numbers. A view; the
/// sequence numbers are expanded on demand, with a closure or into a caller buffer.
public struct RTCPGenericNACK {
    /// SSRC of the NACK's sender.
    public let senderSSRC: UInt32
    /// SSRC of the media source whose packets were lost.
    public let mediaSSRC: UInt32
    private let fci: UnsafeRawBufferPointer
    /// Number of PID+BLP items (at least 1).
    public let itemCount: Int

    /// Decodes `packet`; nil unless it is RTPFB FMT 1 with at least one item. A trailing partial word is ignored.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.transportFeedback, packet.count == RTCPFeedbackFormat.genericNACK,
            let fb = RTCPFeedback(packet), fb.fci.count >= 4
        else { return nil }
        senderSSRC = fb.senderSSRC
        mediaSSRC = fb.mediaSSRC
        fci = fb.fci
        itemCount = fb.fci.count / 4
    }

    /// The item at `index` (0..<``itemCount``).
    public func item(at index: Int) -> RTCPNACKItem {
        precondition(index >= 0 && index < itemCount, "NACK item index out of range")
        return RTCPNACKItem(packetID: RTCPBytes.u16(fci, index * 4), bitmask: RTCPBytes.u16(fci, index * 4 + 2))
    }

    /// Total sequence numbers named by all items (duplicates across items counted again); at most 17 per item.
    public var lostCount: Int {
        var n = 0
        for i in 0..<itemCount { n += item(at: i).lostCount }
        return n
    }

    /// Calls `visit` with every lost sequence number, item by item.
    public func forEachLostSequence(_ visit: (UInt16) -> Void) {
        for i in 0..<itemCount { item(at: i).forEachLostSequence(visit) }
    }

    /// Writes lost sequence numbers into `buffer`, stopping when it is full; returns how many were written.
    public func lostSequences(into buffer: UnsafeMutableBufferPointer<UInt16>) -> Int {
        var n = 0
        for i in 0..<itemCount {
            guard n < buffer.count else { break }
            item(at: i).forEachLostSequence { seq in
                if n < buffer.count {
                    buffer[n] = seq
                    n += 1
                }
            }
        }
        return n
    }
}

/// Transport-wide congestion control feedback (RTPFB FMT 15, draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §3.1). Only the fixed fields are decoded; the packet chunks and deltas stay in ``fci``.
public struct RTCPTransportWideFeedback {
    /// SSRC of the feedback's sender.
    public let senderSSRC: UInt32
    /// SSRC of the media source (Chromium sends the first video or audio SSRC).
    public let mediaSSRC: UInt32
    /// Transport-wide sequence number of the first packet reported on.
    public let baseSequence: UInt16
    /// Number of packets this feedback reports a status for.
    public let packetStatusCount: UInt16
    /// Reference time in multiples of 64 ms (signed 24-bit).
    public let referenceTime: Int32
    /// Feedback packet counter (wraps at 256), to detect lost feedback.
    public let feedbackPacketCount: UInt8
    /// The whole FCI, starting with the base sequence number.
    public let fci: UnsafeRawBufferPointer

    /// Decodes `packet`; nil unless it is RTPFB FMT 15 with at least the 8 fixed FCI bytes.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.transportFeedback,
            packet.count == RTCPFeedbackFormat.transportWideCC,
            let fb = RTCPFeedback(packet), fb.fci.count >= 8
        else { return nil }
        senderSSRC = fb.senderSSRC
        mediaSSRC = fb.mediaSSRC
        fci = fb.fci
        baseSequence = RTCPBytes.u16(fci, 0)
        packetStatusCount = RTCPBytes.u16(fci, 2)
        referenceTime = Int32(bitPattern: RTCPBytes.u24(fci, 4) << 8) >> 8
        feedbackPacketCount = fci[7]
    }
}

/// A Picture Loss Indication (PSFB FMT 1, RFC 4585 §6.3.1): the receiver lost a picture of `mediaSSRC` and
/// needs a key frame.
public struct RTCPPictureLossIndication: Hashable, Sendable {
    /// SSRC of the PLI's sender.
    public var senderSSRC: UInt32
    /// SSRC of the media source that should send a key frame.
    public var mediaSSRC: UInt32

    /// A PLI from `senderSSRC` about `mediaSSRC`.
    public init(senderSSRC: UInt32, mediaSSRC: UInt32) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
    }

    /// Decodes `packet`; nil unless it is PSFB FMT 1 with both SSRCs (any FCI is ignored).
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.payloadSpecificFeedback,
            packet.count == RTCPFeedbackFormat.pictureLossIndication, let fb = RTCPFeedback(packet)
        else { return nil }
        senderSSRC = fb.senderSSRC
        mediaSSRC = fb.mediaSSRC
    }
}

/// One Full Intra Request entry (RFC 5104 §4.3.1.1): the source asked for a decoder refresh and the request's
/// command sequence number (incremented per new request, so repeats can be recognised).
public struct RTCPFIREntry: Hashable, Sendable {
    /// SSRC of the media sender that should send a key frame.
    public var ssrc: UInt32
    /// Command sequence number (8 bits, wraps).
    public var sequenceNumber: UInt8

    /// An entry asking `ssrc` for a key frame, with command sequence number `sequenceNumber`.
    public init(ssrc: UInt32, sequenceNumber: UInt8) {
        self.ssrc = ssrc
        self.sequenceNumber = sequenceNumber
    }
}

/// A Full Intra Request (PSFB FMT 4, RFC 5104 §4.3.1): one or more (SSRC, sequence number) entries. A view.
public struct RTCPFullIntraRequest {
    /// SSRC of the FIR's sender.
    public let senderSSRC: UInt32
    /// The media-source SSRC of the common header; RFC 5104 says 0 (the targets are in the entries).
    public let mediaSSRC: UInt32
    private let fci: UnsafeRawBufferPointer
    /// Number of 8-byte entries (at least 1).
    public let entryCount: Int

    /// Decodes `packet`; nil unless it is PSFB FMT 4 with at least one entry.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.payloadSpecificFeedback,
            packet.count == RTCPFeedbackFormat.fullIntraRequest,
            let fb = RTCPFeedback(packet), fb.fci.count >= 8
        else { return nil }
        senderSSRC = fb.senderSSRC
        mediaSSRC = fb.mediaSSRC
        fci = fb.fci
        entryCount = fb.fci.count / 8
    }

    /// The entry at `index` (0..<``entryCount``).
    public func entry(at index: Int) -> RTCPFIREntry {
        precondition(index >= 0 && index < entryCount, "FIR entry index out of range")
        return RTCPFIREntry(ssrc: RTCPBytes.u32(fci, index * 8), sequenceNumber: fci[index * 8 + 4])
    }

    /// Calls `visit` with each entry.
    public func forEachEntry(_ visit: (RTCPFIREntry) -> Void) {
        for i in 0..<entryCount { visit(entry(at: i)) }
    }
}

/// Receiver Estimated Maximum Bitrate (PSFB FMT 15 with identifier "REMB", draft-alvestrand-rmcat-remb-03 §2.2):
/// the receiver's estimate of the total bitrate it can take for the listed SSRCs. A view.
public struct RTCPREMB {
    /// The largest mantissa (18 bits).
    public static let maxMantissa: UInt32 = (1 << 18) - 1
    /// The unique identifier "REMB" as a big-endian word.
    public static let identifier: UInt32 = 0x5245_4D42

    /// SSRC of the REMB's sender.
    public let senderSSRC: UInt32
    /// Media-source SSRC of the common header (always 0 per the draft).
    public let mediaSSRC: UInt32
    /// BR Exp (6 bits).
    public let exponent: UInt8
    /// BR Mantissa (18 bits).
    public let mantissa: UInt32
    /// The SSRCs this estimate applies to (count given by Num SSRC).
    public let ssrcs: RTCPSSRCList

    /// The estimate in bits per second, mantissa × 2^exponent (saturating at `UInt64.max`).
    public var bitrate: UInt64 { Self.bitrate(exponent: exponent, mantissa: mantissa) }

    /// Decodes `packet`; nil unless it is PSFB FMT 15 whose FCI starts with "REMB" and holds Num SSRC SSRCs.
    public init?(_ packet: RTCPPacket) {
        guard packet.packetType == RTCPPacketType.payloadSpecificFeedback,
            packet.count == RTCPFeedbackFormat.applicationLayer,
            let fb = RTCPFeedback(packet), fb.fci.count >= 8, RTCPBytes.u32(fb.fci, 0) == Self.identifier
        else { return nil }
        let n = Int(fb.fci[4])
        guard fb.fci.count >= 8 + 4 * n else { return nil }
        senderSSRC = fb.senderSSRC
        mediaSSRC = fb.mediaSSRC
        exponent = fb.fci[5] >> 2
        mantissa = RTCPBytes.u24(fb.fci, 5) & Self.maxMantissa
        ssrcs = RTCPSSRCList(UnsafeRawBufferPointer(rebasing: fb.fci[8..<(8 + 4 * n)]), count: n)
    }

    /// mantissa × 2^exponent, saturating at `UInt64.max`.
    public static func bitrate(exponent: UInt8, mantissa: UInt32) -> UInt64 {
        let m = UInt64(mantissa & maxMantissa)
        guard m != 0 else { return 0 }
        let e = Int(exponent & 0x3F)
        return e > m.leadingZeroBitCount ? UInt64.max : m << UInt64(e)
    }

    /// The exponent and 18-bit mantissa for `bitrate`: the smallest exponent whose mantissa fits, with the
    /// mantissa rounded down, so the encoded value never exceeds `bitrate` (and loses at most 2^exponent − 1).
    public static func encode(bitrate: UInt64) -> (exponent: UInt8, mantissa: UInt32) {
        let bits = 64 - bitrate.leadingZeroBitCount
        let e = max(0, bits - 18)
        return (UInt8(e), UInt32(truncatingIfNeeded: bitrate >> UInt64(e)))
    }
}

// The decoded packets are views into a borrowed buffer (see ``RTCPPacket``): not Sendable.
@available(*, unavailable)
extension RTCPReportBlocks: Sendable {}

@available(*, unavailable)
extension RTCPSSRCList: Sendable {}

@available(*, unavailable)
extension RTCPReportBlocks.Iterator: Sendable {}

@available(*, unavailable)
extension RTCPSSRCList.Iterator: Sendable {}

@available(*, unavailable)
extension RTCPSenderReport: Sendable {}

@available(*, unavailable)
extension RTCPReceiverReport: Sendable {}

@available(*, unavailable)
extension RTCPBye: Sendable {}

@available(*, unavailable)
extension RTCPSourceDescription: Sendable {}

@available(*, unavailable)
extension RTCPFeedback: Sendable {}

@available(*, unavailable)
extension RTCPGenericNACK: Sendable {}

@available(*, unavailable)
extension RTCPTransportWideFeedback: Sendable {}

@available(*, unavailable)
extension RTCPFullIntraRequest: Sendable {}

@available(*, unavailable)
extension RTCPREMB: Sendable {}
