import NIOCore

/// What a packet arriving on a multiplexed media port is, judged by its first byte (RFC 7983 §7,
/// updating RFC 5764 §5.1.2). One UDP port (and each ICE-TCP stream) carries STUN, DTLS and SRTP.
///
/// RFC 9443 later gives 64–127 to QUIC as well; this product runs no QUIC, so 64–79 are TURN channels
/// and 80–127 are unknown.
public enum PacketClass: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// 0–3: STUN (ICE connectivity checks, TURN control).
    case stun
    /// 16–19: ZRTP.
    case zrtp
    /// 20–63: DTLS records.
    case dtls
    /// 64–79: TURN ChannelData.
    case turnChannel
    /// 128–191: RTP or RTCP (see ``isRTCP(secondByte:)``).
    case rtpOrRTCP
    /// Anything else, including empty input.
    case unknown

    /// Classifies by the first byte alone.
    @inlinable
    public init(firstByte b: UInt8) {
        switch b {
        case 0...3: self = .stun
        case 16...19: self = .zrtp
        case 20...63: self = .dtls
        case 64...79: self = .turnChannel
        case 128...191: self = .rtpOrRTCP
        default: self = .unknown
        }
    }

    /// Classifies a packet; empty input is ``unknown``.
    @inlinable
    public static func classify(_ bytes: some Collection<UInt8>) -> PacketClass {
        guard let b = bytes.first else { return .unknown }
        return PacketClass(firstByte: b)
    }

    /// Classifies the readable bytes of a buffer.
    @inlinable
    public static func classify(_ buffer: ByteBuffer) -> PacketClass {
        guard let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .unknown }
        return PacketClass(firstByte: b)
    }

    /// For an ``rtpOrRTCP`` packet: RTCP when the second byte (marker bit + payload type in RTP) is
    /// 192–223, the RTCP packet types (RFC 5761 §4: RTP payload types 64–95 must not be used when muxing).
    @inlinable
    public static func isRTCP(secondByte: UInt8) -> Bool { (192...223).contains(secondByte) }

    public var description: String {
        switch self {
        case .stun: "STUN"
        case .zrtp: "ZRTP"
        case .dtls: "DTLS"
        case .turnChannel: "TURN ChannelData"
        case .rtpOrRTCP: "RTP/RTCP"
        case .unknown: "unknown"
        }
    }
}
