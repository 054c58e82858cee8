import CallsWire
import Glibc
import NIOCore

/// One ICE-TCP connection accepted on the TCP listener. Confined to the media event loop.
final class TCPConnection: Hashable {
    let id: Int
    let channel: any Channel
    let remote: SocketAddress?
    /// Set by the first valid connectivity check; a connection serves exactly one session.
    var session: MediaSession?
    var idleTimer: Scheduled<Void>?

    init(id: Int, channel: any Channel) {
        self.id = id
        self.channel = channel
        self.remote = channel.remoteAddress
    }

    static func == (lhs: TCPConnection, rhs: TCPConnection) -> Bool { lhs === rhs }
    func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// Where a session's packets come from and go to: a remote address on the shared UDP socket, or one ICE-TCP
/// connection (its own 5-tuple).
enum MediaPath: Hashable {
    case udp(SocketAddress)
    case tcp(TCPConnection)

    var transportName: String {
        switch self {
        case .udp: "udp"
        case .tcp: "tcp"
        }
    }

    var remoteAddress: SocketAddress? {
        switch self {
        case .udp(let a): a
        case .tcp(let c): c.remote
        }
    }

    var remoteDescription: String { remoteAddress?.endpointDescription ?? "?" }
}

/// One client's WebRTC transport on the server: ICE-lite state, the DTLS server endpoint, SRTP once keyed, what
/// the last answer negotiated, and its place in a call. Confined to the media event loop (the `MediaCore`'s loop); the
/// router sees sessions only there, so it fans packets from one session out to others without locks.
final class MediaSession {
    let id: String
    let label: String
    let localUfrag: String
    let localPassword: String
    let localKey: STUNKey
    let remoteUfrag: String
    let remoteFingerprint: DTLSFingerprint
    /// Echo test or call participant.
    let route: SessionRoute
    /// The participant id other clients see in `a=msid` (the signaling session id).
    let participant: String
    let cname: String
    let sdpSessionID: UInt64
    /// The `o=` version of the last answer.
    var answerVersion = 2
    /// Echo sessions: the payload type of Opus, and whether the answer lets the server send audio back.
    let audioPayloadType: UInt8
    let sendsAudio: Bool
    /// The server's own SSRC toward this client: echoed audio, and the sender SSRC of its RTCP (RR, PLI, REMB).
    let audioSSRC: UInt32
    /// The DTLS server endpoint; released (nil) once the client's first authenticated SRTP packet shows that it
    /// finished the handshake, or after `MediaServerConfiguration.dtlsReleaseDelay` without DTLS from it once keyed (a listener
    /// that sends nothing): the keys live on in `srtp`, and an idle OpenSSL DTLS state costs about 80 KiB per
    /// session. After that DTLS records from the client are dropped and a closing session sends no close_notify.
    var dtls: DTLSEndpoint?
    /// When the last DTLS datagram from the client arrived (or the handshake completed).
    var lastDTLSInput: NIODeadline?
    let hub: SessionEventHub
    let created: NIODeadline

    var srtp: SRTPSession?
    /// Paths validated by a connectivity check with correct credentials (peer-reflexive candidates).
    var paths: [MediaPath] = []
    /// Where media goes: the nominated path (USE-CANDIDATE), or the first validated one until then.
    var selected: MediaPath? {
        didSet { selectedUDPName = selected.flatMap(UDPDestination.init) }
    }
    /// The selected path's address as the `sendmmsg` name, when it is UDP: the fan-out copies it per packet
    /// instead of unpacking a `SocketAddress` (an enum holding a string) for every receiver.
    private(set) var selectedUDPName: UDPDestination?
    var nominated = false
    var lastConsent: NIODeadline
    var dtlsTimer: Scheduled<Void>?
    var dtlsStarted: NIODeadline?
    var isClosed = false

    // MARK: Call state (route .call)

    /// What the client publishes, from its last offer.
    var publishedAudio: SFUAnswer.Published?
    var publishedVideo: SFUAnswer.Published?
    /// False while muted: the router drops its audio instead of forwarding it.
    var audioForwarding = true
    /// True while it holds the call's presenter slot (set by the control plane before the offer with the screen).
    var mayPublishVideo = false
    /// Receive slots of the last answer, and the SSRCs it announced (only those are forwarded to this client).
    var slots: [SFUAnswer.Slot] = []
    var announcedSSRCs: Set<UInt32> = []
    /// The call it belongs to while open (nil for echo sessions and after close).
    var callRoute: CallRoute?
    /// The track set last asked for with `.renegotiationNeeded`, so a request is not repeated.
    var requestedSSRCs: Set<UInt32>?
    /// When its audio was last forwarded (an active speaker sends within the last two seconds).
    var lastAudio: NIODeadline?
    /// The slot counts last asked for with `.renegotiationNeeded`, so a request is not repeated.
    var requestedSlots: (audio: Int, video: Int)?
    /// Payload types this client expects on its receive slots.
    var slotAudioPayloadType: UInt8?
    var slotVideoPayloadType: UInt8?
    /// Receive statistics per published SSRC (for receiver reports), and the retransmission buffer of its screen.
    var receiveStats: [UInt32: RTPReceiveStatistics] = [:]
    var retransmissions: RetransmissionBuffer?
    /// PLI/FIR toward this publisher, at most one per source per interval.
    var keyFrameRequests = KeyFrameRequestLimiter()
    /// A key-frame request held back by the limit is sent when the interval ends (one at a time).
    var keyFrameRequestPending = false
    /// The latest REMB bitrate this client reported as a receiver, in bit/s.
    var receiverEstimate: UInt64?

    // MARK: Audio slots (route .call)

    /// This listener's fixed audio receive slots (the server's `audioSlots` setting), each one stream whoever speaks.
    var audioSlots: [AudioSlot] = []
    /// As a speaker in its call's ranking: the listeners and slot indexes its audio goes to.
    var audioFanout: [(listener: MediaSession, slot: Int)] = []
    /// Smoothed loudness (127 - RFC 6464 level; a fixed value for packets without a level), for ranking speakers.
    var speechScore: Double = 0
    /// When it last sent a packet that counts as speech (uptime nanoseconds), and whether it sends audio levels.
    var lastSpeechNanos: UInt64 = 0
    var sendsAudioLevel = false
    /// Its place in its call's speaker ranking: when it entered (uptime nanoseconds), nil while not ranked.
    var rankedSinceNanos: UInt64?
    /// In its call's `recentSpeakers` list.
    var isRecentSpeaker = false
    /// The speaker map last sent to this listener (slot -> participant), to send only changes.
    var announcedSpeakers: [String?] = []

    /// Maximum validated paths per session: a browser has a handful of local candidates.
    static let maximumPaths = 16

    init(
        id: String, label: String, localUfrag: String, localPassword: String, remoteUfrag: String,
        remoteFingerprint: DTLSFingerprint, route: SessionRoute, participant: String, cname: String,
        sdpSessionID: UInt64, audioPayloadType: UInt8, sendsAudio: Bool, audioSSRC: UInt32, dtls: DTLSEndpoint,
        hub: SessionEventHub, now: NIODeadline
    ) {
        self.id = id
        self.label = label
        self.localUfrag = localUfrag
        self.localPassword = localPassword
        self.localKey = .shortTerm(password: localPassword)
        self.remoteUfrag = remoteUfrag
        self.remoteFingerprint = remoteFingerprint
        self.route = route
        self.participant = participant
        self.cname = cname
        self.sdpSessionID = sdpSessionID
        self.audioPayloadType = audioPayloadType
        self.sendsAudio = sendsAudio
        self.audioSSRC = audioSSRC
        self.dtls = dtls
        self.hub = hub
        self.created = now
        self.lastConsent = now
    }

    /// Whether media can be sent to it now.
    var isReady: Bool { srtp != nil && selected != nil && !isClosed }
}


/// One audio receive slot of a listener: a constant SSRC of the server's, the speaker currently assigned to it, and
/// the rewriting that keeps the slot one continuous RTP stream across speaker changes (sequence numbers and
/// timestamps continue where the previous speaker stopped, so the receiver's jitter buffer and SRTP replay window see
/// no jump).
struct AudioSlot {
    let ssrc: UInt32
    /// The slot's section in the last answer (nil while the offer has no section for it).
    var mid: String? {
        didSet { negotiated = mid != nil }
    }
    /// `mid != nil`, read per forwarded packet without touching the string.
    private(set) var negotiated = false
    /// Who speaks in it now.
    var source: MediaSession?
    /// The source and SSRC the offsets below were computed for.
    var boundSource: ObjectIdentifier?
    var boundSSRC: UInt32 = 0
    var sequenceOffset: UInt16 = 0
    var timestampOffset: UInt32 = 0
    /// The newest sequence number and timestamp sent on the slot, and when (uptime nanoseconds).
    var lastSequence: UInt16 = 0
    var lastTimestamp: UInt32 = 0
    var lastSentNanos: UInt64 = 0
    var hasSent = false
    /// Latest receiver report about the slot from the listener: cumulative packets lost.
    var reportedLost: Int32 = 0

    init(ssrc: UInt32) {
        self.ssrc = ssrc
    }

    /// The header fields for a packet of `source` (its `header`) sent at `nowNanos`: rebinding the offsets when the
    /// speaker (or its SSRC) changed, so the slot's sequence numbers go on by one and its timestamp by the time that
    /// passed (48 kHz).
    /// `rewrite` as the fields to write into the packet, or nil while the slot has no section in the answer (one
    /// access to the slot per forwarded copy).
    mutating func forwarding(_ header: RTPHeader, from source: MediaSession, nowNanos: UInt64) -> RTPSlotRewrite? {
        guard negotiated else { return nil }
        let h = rewrite(header, from: source, nowNanos: nowNanos)
        return RTPSlotRewrite(sequence: h.sequence, timestamp: h.timestamp, ssrc: ssrc, marker: h.marker)
    }

    mutating func rewrite(_ header: RTPHeader, from source: MediaSession, nowNanos: UInt64)
        -> (sequence: UInt16, timestamp: UInt32, marker: Bool)
    {
        var marker = false
        let id = ObjectIdentifier(source)
        if boundSource != id || boundSSRC != header.ssrc {
            if hasSent {
                let elapsed = nowNanos &- lastSentNanos
                // Samples at 48 kHz since the last packet sent on the slot (at least one 20 ms frame, at most 60 s).
                let samples = UInt32(min(max(elapsed / 1_000_000 * 48, 960), 60 * 48_000))
                sequenceOffset = (lastSequence &+ 1) &- header.sequenceNumber
                timestampOffset = (lastTimestamp &+ samples) &- header.timestamp
            } else {
                sequenceOffset = 0
                timestampOffset = 0
            }
            boundSource = id
            boundSSRC = header.ssrc
            marker = true
        }
        let sequence = header.sequenceNumber &+ sequenceOffset
        let timestamp = header.timestamp &+ timestampOffset
        if !hasSent || Int16(bitPattern: sequence &- lastSequence) > 0 {
            lastSequence = sequence
            lastTimestamp = timestamp
            lastSentNanos = nowNanos
            hasSent = true
        }
        return (sequence, timestamp, marker)
    }
}

/// A UDP destination as the kernel takes it: a `sockaddr_in` or `sockaddr_in6` in IPv6-sized storage, and its length.
struct UDPDestination {
    var storage = sockaddr_in6()
    var length: socklen_t = 0

    init?(_ path: MediaPath) {
        guard case .udp(let address) = path else { return nil }
        switch address {
        case .v4(let a):
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: a.address, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let a):
            storage = a.address
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        default:
            return nil
        }
    }
}
