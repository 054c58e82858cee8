import NIOCore

/// Why an RTCP packet could not be built. Nothing is written when a builder throws.
public struct RTCPBuildError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case tooManyReportBlocks, emptyList, tooManyEntries, tooLong
    }
    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// More than 31 report blocks (the RC field has 5 bits, RFC 3550 §6.4.1).
    public static let tooManyReportBlocks = Self(.tooManyReportBlocks)
    /// A NACK or FIR without any entry (RFC 4585 §6.2.1, RFC 5104 §4.3.1.2 require at least one).
    public static let emptyList = Self(.emptyList)
    /// More SSRCs than a count field holds (REMB Num SSRC: 255; BYE SC: 31).
    public static let tooManyEntries = Self(.tooManyEntries)
    /// The packet would exceed the 16-bit length field or 255-byte SDES/BYE text.
    public static let tooLong = Self(.tooLong)

    /// A short English description for logs.
    public var description: String {
        switch code {
        case .tooManyReportBlocks: "more than 31 RTCP report blocks"
        case .emptyList: "RTCP feedback needs at least one entry"
        case .tooManyEntries: "too many SSRCs for the RTCP count field"
        case .tooLong: "RTCP packet or item too long"
        }
    }
}

/// Writes RTCP packets (RFC 3550 §6.4–6.6, RFC 4585 §6, RFC 5104 §4.3.1, draft-alvestrand-rmcat-remb-03) at the
/// writer index of a caller-provided `ByteBuffer`. Append several to build a compound packet. Each function
/// returns the number of bytes written; on error nothing is written. No padding is added (SRTCP needs none).
public enum RTCPBuilder {
    /// Most report blocks in one SR or RR.
    public static let maxReportBlocks = 31

    /// Writes a Receiver Report (PT 201) with up to 31 report blocks.
    @discardableResult
    public static func writeReceiverReport(
        senderSSRC: UInt32, reportBlocks: some Collection<RTCPReportBlock>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let n = reportBlocks.count
        guard n <= maxReportBlocks else { throw .tooManyReportBlocks }
        let start = buffer.writerIndex
        writeHeader(count: UInt8(n), packetType: RTCPPacketType.receiverReport, words: 1 + 6 * n, into: &buffer)
        buffer.writeInteger(senderSSRC)
        for block in reportBlocks { write(block, into: &buffer) }
        return buffer.writerIndex - start
    }

    /// Writes a Sender Report (PT 200): sender info (NTP time as 32.32 fixed point since 1900, RTP timestamp of
    /// the same instant, packets and payload octets sent) and up to 31 report blocks.
    @discardableResult
    public static func writeSenderReport(
        senderSSRC: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        reportBlocks: some Collection<RTCPReportBlock>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let n = reportBlocks.count
        guard n <= maxReportBlocks else { throw .tooManyReportBlocks }
        let start = buffer.writerIndex
        writeHeader(count: UInt8(n), packetType: RTCPPacketType.senderReport, words: 6 + 6 * n, into: &buffer)
        buffer.writeInteger(senderSSRC)
        buffer.writeInteger(ntpTimestamp)
        buffer.writeInteger(rtpTimestamp)
        buffer.writeInteger(packetCount)
        buffer.writeInteger(octetCount)
        for block in reportBlocks { write(block, into: &buffer) }
        return buffer.writerIndex - start
    }

    /// Writes a Sender Report without report blocks.
    @discardableResult
    public static func writeSenderReport(
        senderSSRC: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        into buffer: inout ByteBuffer
    ) -> Int {
        // Cannot throw: no blocks.
        (try? writeSenderReport(
            senderSSRC: senderSSRC, ntpTimestamp: ntpTimestamp, rtpTimestamp: rtpTimestamp,
            packetCount: packetCount, octetCount: octetCount, reportBlocks: EmptyCollection(), into: &buffer)) ?? 0
    }

    /// Writes an SDES packet (PT 202) with one chunk holding the CNAME item of `ssrc` (RFC 3550 §6.5.1).
    @discardableResult
    public static func writeSourceDescription(
        ssrc: UInt32, cname: some Collection<UInt8>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let len = cname.count
        guard len <= 255 else { throw .tooLong }
        // SSRC + type + length + text + at least one null octet, padded to 32 bits.
        let chunk = (4 + 2 + len + 1 + 3) & ~3
        let start = buffer.writerIndex
        writeHeader(count: 1, packetType: RTCPPacketType.sourceDescription, words: chunk / 4, into: &buffer)
        buffer.writeInteger(ssrc)
        buffer.writeInteger(RTCPSourceDescription.cnameItem)
        buffer.writeInteger(UInt8(len))
        buffer.writeBytes(cname)
        buffer.writeRepeatingByte(0, count: chunk - 6 - len)
        return buffer.writerIndex - start
    }

    /// Writes a BYE packet (PT 203) for up to 31 sources, without a reason.
    @discardableResult
    public static func writeBye(ssrcs: some Collection<UInt32>, into buffer: inout ByteBuffer) throws(RTCPBuildError)
        -> Int
    {
        let n = ssrcs.count
        guard n <= 31 else { throw .tooManyEntries }
        let start = buffer.writerIndex
        writeHeader(count: UInt8(n), packetType: RTCPPacketType.bye, words: n, into: &buffer)
        for s in ssrcs { buffer.writeInteger(s) }
        return buffer.writerIndex - start
    }

    /// Writes a Picture Loss Indication (PSFB FMT 1) asking `mediaSSRC` for a key frame.
    @discardableResult
    public static func writePictureLossIndication(
        senderSSRC: UInt32, mediaSSRC: UInt32, into buffer: inout ByteBuffer
    ) -> Int {
        let start = buffer.writerIndex
        writeHeader(
            count: RTCPFeedbackFormat.pictureLossIndication, packetType: RTCPPacketType.payloadSpecificFeedback,
            words: 2, into: &buffer)
        buffer.writeInteger(senderSSRC)
        buffer.writeInteger(mediaSSRC)
        return buffer.writerIndex - start
    }

    /// Writes a Full Intra Request (PSFB FMT 4) with one entry per target; the header's media SSRC is 0.
    @discardableResult
    public static func writeFullIntraRequest(
        senderSSRC: UInt32, entries: some Collection<RTCPFIREntry>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let n = entries.count
        guard n > 0 else { throw .emptyList }
        guard 2 + 2 * n <= 0xFFFF else { throw .tooLong }
        let start = buffer.writerIndex
        writeHeader(
            count: RTCPFeedbackFormat.fullIntraRequest, packetType: RTCPPacketType.payloadSpecificFeedback,
            words: 2 + 2 * n, into: &buffer)
        buffer.writeInteger(senderSSRC)
        buffer.writeInteger(UInt32(0))
        for e in entries {
            buffer.writeInteger(e.ssrc)
            buffer.writeInteger(e.sequenceNumber)
            buffer.writeRepeatingByte(0, count: 3)
        }
        return buffer.writerIndex - start
    }

    /// Writes a Generic NACK (RTPFB FMT 1) for `lostSequences`, packing them into PID+BLP items: a number within
    /// 1...16 after the current item's PID (modulo 2^16) sets a bit, any other starts a new item. Sorted input
    /// (in wrapping order) gives the fewest items; repeats of a PID are skipped. Returns bytes written.
    @discardableResult
    public static func writeGenericNACK(
        senderSSRC: UInt32, mediaSSRC: UInt32, lostSequences: some Sequence<UInt16>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let start = buffer.writerIndex
        writeHeader(
            count: RTCPFeedbackFormat.genericNACK, packetType: RTCPPacketType.transportFeedback, words: 0,
            into: &buffer)
        buffer.writeInteger(senderSSRC)
        buffer.writeInteger(mediaSSRC)
        var items = 0
        var pid: UInt16 = 0
        var blp: UInt16 = 0
        for seq in lostSequences {
            if items > 0 {
                let delta = seq &- pid
                if delta == 0 { continue }
                if delta <= 16 {
                    blp |= 1 << (delta - 1)
                    continue
                }
                buffer.writeMultipleIntegers(pid, blp)
            }
            pid = seq
            blp = 0
            items += 1
        }
        guard items > 0, 2 + items <= 0xFFFF else {
            buffer.moveWriterIndex(to: start)
            throw items == 0 ? .emptyList : .tooLong
        }
        buffer.writeMultipleIntegers(pid, blp)
        buffer.setInteger(UInt16(2 + items), at: start + 2)
        return buffer.writerIndex - start
    }

    /// Writes a REMB (PSFB FMT 15, draft-alvestrand-rmcat-remb-03 §2.2): `bitrate` in bits per second, encoded
    /// with ``RTCPREMB/encode(bitrate:)`` (never above the input), for up to 255 SSRCs.
    @discardableResult
    public static func writeREMB(
        senderSSRC: UInt32, bitrate: UInt64, ssrcs: some Collection<UInt32>, into buffer: inout ByteBuffer
    ) throws(RTCPBuildError) -> Int {
        let n = ssrcs.count
        guard n <= 255 else { throw .tooManyEntries }
        let (exp, mantissa) = RTCPREMB.encode(bitrate: bitrate)
        let start = buffer.writerIndex
        writeHeader(
            count: RTCPFeedbackFormat.applicationLayer, packetType: RTCPPacketType.payloadSpecificFeedback,
            words: 4 + n, into: &buffer)
        buffer.writeInteger(senderSSRC)
        buffer.writeInteger(UInt32(0))
        buffer.writeInteger(RTCPREMB.identifier)
        buffer.writeInteger(UInt8(n))
        buffer.writeInteger(UInt8(exp << 2) | UInt8(truncatingIfNeeded: mantissa >> 16))
        buffer.writeInteger(UInt16(truncatingIfNeeded: mantissa))
        for s in ssrcs { buffer.writeInteger(s) }
        return buffer.writerIndex - start
    }

    /// Writes the 4-byte common header; `words` is the length field (packet length in 32-bit words minus one).
    private static func writeHeader(count: UInt8, packetType: UInt8, words: Int, into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(UInt8(0x80 | (count & 0x1F)), packetType, UInt16(truncatingIfNeeded: words))
    }

    private static func write(_ b: RTCPReportBlock, into buffer: inout ByteBuffer) {
        let lost = min(max(b.cumulativeLost, RTCPReportBlock.minCumulativeLost), RTCPReportBlock.maxCumulativeLost)
        let lost24 = UInt32(bitPattern: lost) & 0xFF_FFFF
        buffer.writeInteger(b.ssrc)
        buffer.writeInteger(UInt32(b.fractionLost) << 24 | lost24)
        buffer.writeMultipleIntegers(
            b.extendedHighestSequence, b.jitter, b.lastSenderReport, b.delaySinceLastSenderReport)
    }
}
