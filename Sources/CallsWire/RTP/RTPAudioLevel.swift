/// The client-to-mixer audio level header extension (RFC 6464, `urn:ietf:params:rtp-hdrext:ssrc-audio-level`) inside
/// the RFC 8285 extension block of an RTP packet: one byte, `V` (voice activity) and the level in -dBov (0 is the
/// loudest, 127 silence).
///
/// Reading is bounds-checked and never traps: a malformed block or a missing element gives nil.
public struct RTPAudioLevel: Hashable, Sendable {
    public static let uri = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

    /// The level in -dBov, 0...127 (127: silence or no signal).
    public var level: UInt8
    /// The sender's voice-activity flag (only meaningful when the sender sets it; many always leave it clear).
    public var voiceActivity: Bool

    public init(level: UInt8, voiceActivity: Bool) {
        self.level = min(level, 127)
        self.voiceActivity = voiceActivity
    }

    /// The element `id` (1...14 for the one-byte form, 1...255 for the two-byte form) of the packet's extension
    /// block, as an offset and length in `packet`.
    public static func element(id: UInt8, in packet: UnsafeRawBufferPointer, header: RTPHeader) -> (offset: Int, length: Int)? {
        guard id != 0, let profile = header.extensionProfile else { return nil }
        let blockStart = RTPHeader.fixedLength + 4 * header.csrcCount + 4
        let blockEnd = header.headerLength
        guard blockStart <= blockEnd, blockEnd <= packet.count else { return nil }
        var i = blockStart
        if profile == 0xBEDE {
            // RFC 8285 §4.2: ID (4 bits) and length-1 (4 bits); ID 0 is padding, 15 ends the block.
            while i < blockEnd {
                let b = packet[i]
                let elementID = b >> 4
                if elementID == 0 {
                    i += 1
                    continue
                }
                if elementID == 15 { return nil }
                let length = Int(b & 0x0F) + 1
                guard i + 1 + length <= blockEnd else { return nil }
                if elementID == id { return (i + 1, length) }
                i += 1 + length
            }
        } else if profile & 0xFFF0 == 0x1000 {
            // RFC 8285 §4.3: ID byte, length byte, data; ID 0 is padding.
            while i < blockEnd {
                let elementID = packet[i]
                if elementID == 0 {
                    i += 1
                    continue
                }
                guard i + 2 <= blockEnd else { return nil }
                let length = Int(packet[i + 1])
                guard i + 2 + length <= blockEnd else { return nil }
                if elementID == id { return (i + 2, length) }
                i += 2 + length
            }
        }
        return nil
    }

    /// Reads the audio level carried under extension id `id`, if the packet has one.
    public init?(id: UInt8, in packet: UnsafeRawBufferPointer, header: RTPHeader) {
        guard let e = Self.element(id: id, in: packet, header: header), e.length >= 1 else { return nil }
        let b = packet[e.offset]
        self.init(level: b & 0x7F, voiceActivity: b & 0x80 != 0)
    }

    /// The 8-byte one-byte-form extension block (profile 0xBEDE, one word) carrying this level under `id` (1...14):
    /// what a sender puts after the fixed header, with the X bit set.
    public func extensionBlock(id: UInt8) -> [UInt8] {
        [0xBE, 0xDE, 0x00, 0x01, (id & 0x0F) << 4, (voiceActivity ? 0x80 : 0) | (level & 0x7F), 0x00, 0x00]
    }
}

extension RTPRewriter {
    /// Rewrites the header fields an SFU changes when it moves a source onto a stream of its own (SSRC rewriting):
    /// payload type, sequence number, timestamp and SSRC, and sets the marker bit when `marker` is true (the first
    /// packet of a new speaker in a slot starts a talkspurt, RFC 3551 §4.1). The extension and payload are kept.
    @discardableResult
    public static func rewrite(
        _ packet: UnsafeMutableRawBufferPointer, payloadType: UInt8?, sequence: UInt16, timestamp: UInt32, ssrc: UInt32,
        marker: Bool
    ) -> Bool {
        guard packet.count >= RTPHeader.fixedLength, packet[0] >> 6 == 2 else { return false }
        var b1 = packet[1]
        if let payloadType { b1 = (b1 & 0x80) | (payloadType & 0x7F) }
        if marker { b1 |= 0x80 }
        packet[1] = b1
        packet[2] = UInt8(truncatingIfNeeded: sequence >> 8)
        packet[3] = UInt8(truncatingIfNeeded: sequence)
        packet[4] = UInt8(truncatingIfNeeded: timestamp >> 24)
        packet[5] = UInt8(truncatingIfNeeded: timestamp >> 16)
        packet[6] = UInt8(truncatingIfNeeded: timestamp >> 8)
        packet[7] = UInt8(truncatingIfNeeded: timestamp)
        packet[8] = UInt8(truncatingIfNeeded: ssrc >> 24)
        packet[9] = UInt8(truncatingIfNeeded: ssrc >> 16)
        packet[10] = UInt8(truncatingIfNeeded: ssrc >> 8)
        packet[11] = UInt8(truncatingIfNeeded: ssrc)
        return true
    }
}
