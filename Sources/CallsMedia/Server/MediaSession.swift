import CallsWire
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

/// One client's WebRTC transport on the server: ICE-lite state, the DTLS server endpoint, SRTP once keyed, and what
/// the answer negotiated. Confined to the media event loop (the `MediaCore`'s loop); a router sees sessions only
/// there, so a later SFU can fan packets from one session out to others without locks.
final class MediaSession {
    let id: String
    let label: String
    let localUfrag: String
    let localKey: STUNKey
    let remoteUfrag: String
    let audioPayloadType: UInt8
    /// True when the answer lets the server send audio to this client.
    let sendsAudio: Bool
    /// The SSRC of the audio the server sends to this client.
    let audioSSRC: UInt32
    let dtls: DTLSEndpoint
    let hub: SessionEventHub
    let created: NIODeadline

    var srtp: SRTPSession?
    /// Paths validated by a connectivity check with correct credentials (peer-reflexive candidates).
    var paths: [MediaPath] = []
    /// Where media goes: the nominated path (USE-CANDIDATE), or the first validated one until then.
    var selected: MediaPath?
    var nominated = false
    var lastConsent: NIODeadline
    var dtlsTimer: Scheduled<Void>?
    var dtlsStarted: NIODeadline?
    var isClosed = false

    /// Maximum validated paths per session: a browser has a handful of local candidates.
    static let maximumPaths = 16

    init(
        id: String, label: String, localUfrag: String, localPassword: String, remoteUfrag: String,
        audioPayloadType: UInt8, sendsAudio: Bool, audioSSRC: UInt32, dtls: DTLSEndpoint, hub: SessionEventHub,
        now: NIODeadline
    ) {
        self.id = id
        self.label = label
        self.localUfrag = localUfrag
        self.localKey = .shortTerm(password: localPassword)
        self.remoteUfrag = remoteUfrag
        self.audioPayloadType = audioPayloadType
        self.sendsAudio = sendsAudio
        self.audioSSRC = audioSSRC
        self.dtls = dtls
        self.hub = hub
        self.created = now
        self.lastConsent = now
    }
}

/// Decides where a session's decrypted media goes. Called on the media event loop.
///
/// `.echo` sends audio back to its sender; the SFU will route between sessions of one call through the same hooks.
protocol MediaRouter: AnyObject {
    /// A plain RTP packet (after SRTP unprotect) from `session`. `packet` has spare capacity for SRTP's trailer.
    func route(rtp packet: inout ByteBuffer, header: RTPHeader, from session: MediaSession, core: MediaCore)
    /// `session` is closing; forget it.
    func sessionClosed(_ session: MediaSession)
}

/// `.echo`: each audio packet returns to its sender under the server's SSRC; sequence numbers and timestamps are
/// kept (one outgoing stream per incoming one, so they stay consistent).
final class EchoRouter: MediaRouter {
    func route(rtp packet: inout ByteBuffer, header: RTPHeader, from session: MediaSession, core: MediaCore) {
        guard header.payloadType == session.audioPayloadType, session.sendsAudio else {
            core.countDropped()
            return
        }
        core.sendRTP(&packet, ssrc: session.audioSSRC, to: session)
    }

    func sessionClosed(_ session: MediaSession) {}
}
