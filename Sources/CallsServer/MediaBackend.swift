import Foundation
import Logging

/// What the API server needs from the media transport. `CallsMedia.MediaServer` conforms (see
/// `MediaServer+MediaBackend.swift`); tests use fakes.
public protocol MediaBackend: AnyObject, Sendable {
    /// Binds the media ports. Throws when a port cannot be bound.
    func start() async throws
    /// Closes every session and the ports.
    func shutdown() async
    /// Answers a client's SDP offer and starts a media session.
    /// - Parameters:
    ///   - offer: the client's SDP offer.
    ///   - label: a short name for logs (`user@channel/signaling-session`).
    /// - Throws: when the offer is malformed or unsupported; the error's description is shown to the client.
    func createSession(offer: String, label: String) async throws -> (sessionID: String, answer: String)
    /// Answers a client's offer for a participant of the call in `channel` (nil: an echo test), whose id
    /// other participants see is `participant`.
    func createSession(offer: String, label: String, channel: String?, participant: String) async throws
        -> (sessionID: String, answer: String)
    /// Answers a call participant's new offer on its existing transport.
    func renegotiate(_ id: String, offer: String) async throws -> String
    /// Mutes (`false`) or unmutes a participant at the server.
    func setAudioForwarding(_ id: String, _ on: Bool) async
    /// Gives or takes the presenter slot (screen share) of a participant.
    func setPresenter(_ id: String, _ on: Bool) async
    /// Ends a media session; unknown ids are ignored.
    func closeSession(_ id: String) async
    /// The session's lifecycle events, ending after `.closed`.
    func backendEvents(_ id: String) -> AsyncStream<MediaBackendEvent>
    /// Counters for `/metrics`.
    var backendMetrics: MediaBackendMetrics { get }
    /// The bound UDP port, nil when not bound (yet).
    var udpPort: Int? { get }
    /// The bound TCP port, nil when not bound (yet) or disabled.
    var tcpPort: Int? { get }
    /// The DTLS certificate fingerprint (`sha-256 AB:CD:...`).
    var fingerprint: String { get }
    /// A round trip through the thread that forwards media: false (or no answer) when it is stuck. systemd's
    /// watchdog pings only after one.
    func heartbeat() async -> Bool
}

/// A media session's progress, as the signaling layer sees it.
public enum MediaBackendEvent: Sendable, Equatable {
    /// ICE checks succeeded; `transport` is `udp` or `tcp`, `remote` the client's address.
    case iceConnected(transport: String, remote: String)
    /// DTLS finished; SRTP keys are in place.
    case dtlsConnected(profile: String)
    /// The tracks the participant should receive changed: it should offer again with at least this many
    /// receive-only audio and video transceivers.
    case renegotiationNeeded(audioSlots: Int, videoSlots: Int)
    /// Who speaks in which of the participant's audio slots (after a change).
    case speakers([SlotSpeaker])
    /// The session ended (consent expired, closed, failed).
    case closed(reason: String)
}

extension MediaBackend {
    /// Backends without calls (test fakes, the placeholder) treat every session as an echo test.
    public func createSession(offer: String, label: String, channel: String?, participant: String) async throws
        -> (sessionID: String, answer: String)
    {
        try await createSession(offer: offer, label: label)
    }
    public func renegotiate(_ id: String, offer: String) async throws -> String { throw MediaUnavailableError() }
    public func setAudioForwarding(_ id: String, _ on: Bool) async {}
    public func setPresenter(_ id: String, _ on: Bool) async {}
    public func heartbeat() async -> Bool { true }
}

/// One audio slot of a participant and who speaks in it: the `speakers` message's slot (docs/protocol.md).
public typealias SlotSpeaker = Signaling.Speakers.Slot

/// The media transport's counters, read for each `/metrics` scrape.
public struct MediaBackendMetrics: Sendable, Equatable {
    public var sessions: Int
    public var packetsIn: UInt64
    public var packetsOut: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var dtlsFailures: UInt64
    public var iceFailures: UInt64
    public var droppedPackets: UInt64
    /// Forwarding between participants (see `MediaMetrics` for the meaning of each).
    public var audioPacketsForwarded: UInt64 = 0
    public var videoPacketsForwarded: UInt64 = 0
    public var bytesForwarded: UInt64 = 0
    public var mutedDropped: UInt64 = 0
    public var sendErrors: UInt64 = 0
    public var sendBufferFull: UInt64 = 0
    /// The media UDP socket's receive buffer as granted (bytes) and the datagrams the kernel dropped there.
    public var udpReceiveBufferBytes: Int = 0
    public var udpReceiveDrops: UInt64 = 0
    public var nacksReceived: UInt64 = 0
    public var packetsRetransmitted: UInt64 = 0
    public var keyFrameRequestsForwarded: UInt64 = 0
    public var keyFrameRequestsLimited: UInt64 = 0
    public var receiverReportsSent: UInt64 = 0
    public var rembSent: UInt64 = 0
    /// Offer sections answered with port 0, by reason (`not_bundled`, `no_opus`, `no_vp8`, `unsupported_media`).
    public var rejectedSections: [String: UInt64] = [:]
    /// Forwarding latency histogram (receive → send): upper bounds in seconds, non-cumulative counts per bound
    /// plus one for +Inf, sum in seconds.
    public var forwardLatencyBounds: [Double] = []
    public var forwardLatencyCounts: [UInt64] = []
    public var forwardLatencySum: Double = 0
    /// Per call: key, participants with media, active speakers, presenters, packets forwarded.
    public var calls: [MediaCallFigures] = []

    public init(
        sessions: Int = 0, packetsIn: UInt64 = 0, packetsOut: UInt64 = 0, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0,
        dtlsFailures: UInt64 = 0, iceFailures: UInt64 = 0, droppedPackets: UInt64 = 0
    ) {
        self.sessions = sessions
        self.packetsIn = packetsIn
        self.packetsOut = packetsOut
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.dtlsFailures = dtlsFailures
        self.iceFailures = iceFailures
        self.droppedPackets = droppedPackets
    }
}

/// One call's media figures.
public struct MediaCallFigures: Sendable, Equatable {
    public var key: String
    public var participants: Int
    public var speakers: Int
    public var presenters: Int
    public var packetsForwarded: UInt64
    /// Audio packets its listeners reported lost on their slots (RTCP).
    public var listenerReportedLost: Int64 = 0

    public init(key: String, participants: Int, speakers: Int, presenters: Int, packetsForwarded: UInt64) {
        self.key = key
        self.participants = participants
        self.speakers = speakers
        self.presenters = presenters
        self.packetsForwarded = packetsForwarded
    }
}

/// The settings `serve` gives the media transport; mirrors `CallsMedia.MediaServerConfiguration`, so the
/// API side builds without depending on the transport's types.
public struct MediaBackendConfiguration: Sendable, Equatable {
    /// `HOST:PORT` for UDP.
    public var udpListen: String = "0.0.0.0:8443"
    /// `HOST:PORT` for ICE-TCP (passive); nil disables TCP.
    public var tcpListen: String? = "0.0.0.0:8443"
    /// Addresses written into the host candidates.
    public var advertisedAddresses: [String] = []
    /// Diagnostic: leave UDP (or TCP) candidates out of answers.
    public var offerUDPCandidates = true
    public var offerTCPCandidates = true
    /// How long a session lives without consent checks (RFC 7675).
    public var consentTimeout: Duration = .seconds(30)
    /// Audio receive slots per call participant (1...16).
    public var audioSlots: Int = 3
    /// Fan-out helper threads (nil: the media server's default for this machine).
    public var fanoutThreads: Int?
    /// SCHED_RR priority of the media threads; 0 keeps normal scheduling.
    public var realtimePriority: Int = 0

    public init() {}
}

/// Thrown by ``PlaceholderMediaBackend`` for every offer.
public struct MediaUnavailableError: Error, Sendable, CustomStringConvertible {
    public var description: String {
        "this build of callsctl has no media transport yet, so calls cannot connect (signaling and tokens work)"
    }
}

/// Stands in for the media transport while `CallsMedia.MediaServer` is not wired in: it binds the
/// RTC ports (so readiness and port conflicts behave as they will) and refuses every offer with
/// ``MediaUnavailableError``.
public final class PlaceholderMediaBackend: MediaBackend {
    private let configuration: MediaBackendConfiguration
    private let sockets = SocketBox()

    public init(configuration: MediaBackendConfiguration) {
        self.configuration = configuration
    }

    public func start() async throws {
        let udp = try BoundSocket(listen: configuration.udpListen, proto: .udp)
        let tcp = try configuration.tcpListen.map { try BoundSocket(listen: $0, proto: .tcp) }
        sockets.set(udp: udp, tcp: tcp)
    }

    public func shutdown() async {
        sockets.closeAll()
    }

    public func createSession(offer: String, label: String) async throws -> (sessionID: String, answer: String) {
        throw MediaUnavailableError()
    }
    public func closeSession(_ id: String) async {}
    public func backendEvents(_ id: String) -> AsyncStream<MediaBackendEvent> { AsyncStream { $0.finish() } }
    public var backendMetrics: MediaBackendMetrics { MediaBackendMetrics() }
    public var udpPort: Int? { sockets.ports.udp }
    public var tcpPort: Int? { sockets.ports.tcp }
    public var fingerprint: String { "" }
}

private final class SocketBox: @unchecked Sendable {
    // @unchecked: the sockets are only touched with `lock` held.
    private let lock = NSLock()
    private var udp: BoundSocket?
    private var tcp: BoundSocket?

    func set(udp: BoundSocket, tcp: BoundSocket?) {
        lock.withLock {
            self.udp = udp
            self.tcp = tcp
        }
    }

    var ports: (udp: Int?, tcp: Int?) { lock.withLock { (udp?.port, tcp?.port) } }

    func closeAll() {
        lock.withLock {
            udp?.close()
            tcp?.close()
            udp = nil
            tcp = nil
        }
    }
}
