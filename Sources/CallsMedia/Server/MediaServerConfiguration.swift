import CallsWire
import Foundation
import NIOCore

/// Settings of the media transport (`callsctl serve`'s UDP/TCP 8443).
public struct MediaServerConfiguration: Sendable {
    /// `host:port` of the UDP socket; port 0 = ephemeral. IPv6 as `[::]:8443`.
    public var udpListen: String = "0.0.0.0:8443"
    /// `host:port` of the ICE-TCP listener (RFC 6544 passive, RFC 4571 framing); nil = no ICE-TCP.
    public var tcpListen: String? = "0.0.0.0:8443"
    /// IPs put in the answer's candidates; empty = the listen address if specific, else local interface addresses.
    public var advertisedAddresses: [String] = []
    /// Put UDP host candidates in answers.
    public var offerUDPCandidates = true
    /// Put passive TCP host candidates in answers (needs `tcpListen`).
    public var offerTCPCandidates = true
    /// RFC 7675: a session whose connectivity checks stop for this long (or that never completes ICE in this time)
    /// is closed. Browsers check every 5 s or so; 30 s is RFC 7675's value.
    public var consentTimeout: Duration = .seconds(30)
    /// Unauthenticated Binding requests (probes) and 401 answers allowed per source IP and second (token bucket,
    /// burst of the same size); the rest are dropped.
    public var unauthenticatedBindingRate: Int = 20
    /// DTLS settings (MTU, SRTP profiles, first retransmit timeout).
    public var dtls = DTLSConfiguration()
    /// The largest RFC 4571 frame accepted on ICE-TCP; a longer one closes the connection.
    public var maximumTCPFrameSize: Int = 8192
    /// An ICE-TCP connection that sends no valid check within this time is closed.
    public var tcpHandshakeTimeout: Duration = .seconds(10)
    /// Upper bound on live sessions; `createSession` fails beyond it.
    public var maximumSessions: Int = 10_000
    /// Write, rewrite and protect forwarded SRTP in place in the UDP sender's preallocated arena (no allocation per
    /// packet). False builds each packet in its own `ByteBuffer` first (the older path; kept for benchmarks that
    /// compare the two). Either way every UDP datagram leaves through the sender's `sendmmsg`.
    public var batchUDPSends = true
    /// Which library protects and unprotects RTP (see `SRTPSession.RTPProtectBackend`; `.libsrtp` only for
    /// benchmarks that compare the two).
    public var rtpProtectBackend: SRTPSession.RTPProtectBackend = .automatic
    /// Audio receive slots per call participant: the call's current speakers are forwarded into at most this many
    /// streams per listener, whatever the size of the call (1...``maximumAudioSlots``).
    public var audioSlots: Int = 3
    public static let maximumAudioSlots = 16
    /// Helper threads that share large audio fan-outs (a speaker heard by hundreds) with the media thread, so the
    /// last copy of a packet leaves sooner (`FanoutPool`); 0 keeps every fan-out on the media thread. The default
    /// is one less than the processors this process may use, at most 3.
    public var fanoutThreads: Int = MediaServerConfiguration.defaultFanoutThreads
    public static let maximumFanoutThreads = 16
    /// `SCHED_RR` priority (1...99) of the media event loop's thread and the fan-out helpers, so that a busy machine
    /// does not hold a fan-out back by a scheduler time slice; 0 keeps normal scheduling. Needs root, CAP_SYS_NICE or
    /// RLIMIT_RTPRIO; without them the server logs a warning and runs with normal scheduling (see
    /// `RealtimeScheduling`). With a priority set, the server runs its data plane on an event-loop thread of its own.
    public var realtimePriority: Int = 0
    /// How the fan-out pool cuts its work (tests shrink it; see `FanoutPool.Tuning`).
    var fanoutTuning = FanoutPool.Tuning()
    public static var defaultFanoutThreads: Int {
        min(max(System.coreCount - 1, 0), 3)
    }
    /// A keyed session's DTLS state is freed after this long without DTLS from the client (or at its first SRTP
    /// packet): past the client's first retransmission timeouts (1, 2, 4 s), so its last flight was answered.
    public var dtlsReleaseDelay: Duration = .seconds(10)

    public init() {}

    /// Checks every field; messages name the field, the value and the allowed range.
    public func validate() throws(MediaError) {
        guard (try? ListenAddress(udpListen)) != nil else {
            throw MediaError(.invalidConfiguration, "udpListen \"\(udpListen)\" is not host:port with port 0...65535")
        }
        if let tcpListen, (try? ListenAddress(tcpListen)) == nil {
            throw MediaError(.invalidConfiguration, "tcpListen \"\(tcpListen)\" is not host:port with port 0...65535")
        }
        for a in advertisedAddresses where (try? SocketAddress(ipAddress: a, port: 0)) == nil {
            throw MediaError(.invalidConfiguration, "advertisedAddresses entry \"\(a)\" is not an IPv4 or IPv6 address")
        }
        guard offerUDPCandidates || (offerTCPCandidates && tcpListen != nil) else {
            throw MediaError(
                .invalidConfiguration,
                "no candidates would be offered: enable offerUDPCandidates, or offerTCPCandidates with tcpListen set")
        }
        guard consentTimeout >= .milliseconds(100), consentTimeout <= .seconds(3600) else {
            throw MediaError(.invalidConfiguration, "consentTimeout \(consentTimeout) is outside 0.1 s...3600 s")
        }
        guard (1...10_000).contains(unauthenticatedBindingRate) else {
            throw MediaError(
                .invalidConfiguration, "unauthenticatedBindingRate \(unauthenticatedBindingRate) is outside 1...10000")
        }
        guard (1500...65535).contains(maximumTCPFrameSize) else {
            throw MediaError(.invalidConfiguration, "maximumTCPFrameSize \(maximumTCPFrameSize) is outside 1500...65535")
        }
        guard (1...Self.maximumAudioSlots).contains(audioSlots) else {
            throw MediaError(.invalidConfiguration, "audioSlots \(audioSlots) is outside 1...\(Self.maximumAudioSlots)")
        }
        guard (0...Self.maximumFanoutThreads).contains(fanoutThreads) else {
            throw MediaError(
                .invalidConfiguration, "fanoutThreads \(fanoutThreads) is outside 0...\(Self.maximumFanoutThreads)")
        }
        guard (0...99).contains(realtimePriority) else {
            throw MediaError(.invalidConfiguration, "realtimePriority \(realtimePriority) is outside 0...99 (0: off)")
        }
        guard maximumSessions >= 1 else {
            throw MediaError(.invalidConfiguration, "maximumSessions \(maximumSessions) must be at least 1")
        }
    }
}

/// A parsed `host:port` (`[v6]:port` for IPv6).
struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init(_ text: String) throws(MediaError) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw MediaError(.invalidConfiguration, "\"\(text)\" is not [IPv6]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw MediaError(.invalidConfiguration, "\"\(text)\" has no :port")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw MediaError(.invalidConfiguration, "\"\(text)\": port \"\(portText)\" is not in 0...65535")
        }
        self.host = String(host)
        self.port = port
    }

    var isWildcard: Bool { host == "0.0.0.0" || host == "::" }
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A media-layer failure with a message for users (bad offers, bind failures, unknown sessions).
public struct MediaError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidConfiguration, bindFailed, badOffer, badAnswer, notRunning, tooManySessions, unknownSession,
                connectFailed, timedOut, closed, internalError, relayFailed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A configuration field is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A listener could not bind its address.
        public static let bindFailed = Code(.bindFailed)
        /// The client's SDP offer is malformed or lacks something required; the message says what.
        public static let badOffer = Code(.badOffer)
        /// The server's SDP answer is unusable (client side).
        public static let badAnswer = Code(.badAnswer)
        /// The server is not started (or already shut down).
        public static let notRunning = Code(.notRunning)
        /// `maximumSessions` sessions are live.
        public static let tooManySessions = Code(.tooManySessions)
        public static let unknownSession = Code(.unknownSession)
        /// ICE or DTLS did not complete (client side).
        public static let connectFailed = Code(.connectFailed)
        public static let timedOut = Code(.timedOut)
        public static let closed = Code(.closed)
        public static let internalError = Code(.internalError)
        /// The TURN server refused or did not answer an Allocate, CreatePermission or ChannelBind (client side).
        public static let relayFailed = Code(.relayFailed)

        public var description: String { String(describing: base) }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Something that happened to one session, in order. A subscriber that joins late first gets what already happened.
public enum MediaSessionEvent: Sendable, Hashable {
    /// ICE selected a path: `transport` is `"udp"` or `"tcp"`, `remote` the client's `ip:port`. Reported again if
    /// the client nominates another path.
    case iceConnected(transport: String, remote: String)
    /// DTLS completed and SRTP is keyed; `profile` is e.g. `AEAD_AES_128_GCM`.
    case dtlsConnected(profile: String)
    /// The tracks this session should receive changed (a screen started or stopped, or its offer had fewer audio
    /// slots than the server's setting): the client should make a new offer with at least `audioSlots` receive-only
    /// audio and `videoSlots` receive-only video transceivers.
    case renegotiationNeeded(audioSlots: Int, videoSlots: Int)
    /// Who speaks in which of this session's audio slots now (after a change, and after each answer).
    case speakers([AudioSlotSpeaker])
    /// The session ended (the stream finishes after this).
    case closed(reason: String)

    /// Transient events are not history: only the latest of each kind matters to a late subscriber.
    var isTransient: Bool {
        switch self {
        case .renegotiationNeeded, .speakers: true
        default: false
        }
    }
}

/// One audio slot of a listener and the participant speaking in it.
public struct AudioSlotSpeaker: Sendable, Hashable {
    /// The slot's index, 0..<audioSlots.
    public var slot: Int
    /// The slot's section (`a=mid`) in the listener's last answer; nil when the offer had no section for it.
    public var mid: String?
    /// The slot's SSRC (constant for the session).
    public var ssrc: UInt32
    /// The speaking participant's id, nil while the slot is free.
    public var participant: String?

    public init(slot: Int, mid: String?, ssrc: UInt32, participant: String?) {
        self.slot = slot
        self.mid = mid
        self.ssrc = ssrc
        self.participant = participant
    }
}

/// Where a session's media goes.
public enum SessionRoute: Sendable, Hashable {
    /// A loopback test: the session's own audio comes back to it (no call, nobody else hears it).
    case echo
    /// A participant of the call `key` (a channel id): its audio goes to every other participant of that call, and
    /// it receives theirs.
    case call(String)
}

/// A snapshot of the media server's counters since start.
public struct MediaMetrics: Sendable, Hashable {
    /// Live sessions.
    public var sessions: Int = 0
    /// Datagrams/frames received on the media ports (all kinds), and their bytes.
    public var packetsIn: UInt64 = 0
    public var bytesIn: UInt64 = 0
    /// Datagrams/frames sent (STUN, DTLS, SRTP), and their bytes (without RFC 4571 prefixes).
    public var packetsOut: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// SRTP packets sent by the router: echoed, or forwarded to another participant (one per receiver).
    public var mediaPacketsForwarded: UInt64 = 0
    /// Forwarded packets by kind, and their bytes after SRTP.
    public var audioPacketsForwarded: UInt64 = 0
    public var videoPacketsForwarded: UInt64 = 0
    public var bytesForwarded: UInt64 = 0
    /// Audio packets of muted participants, dropped at the server.
    public var mutedDropped: UInt64 = 0
    /// `renegotiationNeeded` requests sent to call participants (a screen starting or stopping, or an offer with
    /// too few audio slots; joins and leaves send none).
    public var renegotiationsRequested: UInt64 = 0
    /// Offer sections the server answered with port 0, by reason (`SFUAnswer.RejectionReason` raw values).
    public var rejectedSections: [String: UInt64] = [:]
    /// Sessions whose DTLS state was freed after the handshake (on the client's first SRTP packet).
    public var dtlsReleased: UInt64 = 0
    /// UDP datagrams the kernel refused (EPERM from a firewall, ENETUNREACH, ...), and datagrams dropped because the
    /// socket's send buffer was full; both are also in `droppedPackets`.
    public var sendErrors: UInt64 = 0
    public var sendBufferFull: UInt64 = 0
    /// The media UDP socket's receive buffer as the kernel granted it (bytes, as `SO_RCVBUF` reports), and the
    /// datagrams the kernel dropped there with the buffer full (read when the metrics are read).
    public var udpReceiveBufferBytes: Int = 0
    public var udpReceiveDrops: UInt64 = 0
    /// Generic NACKs received from receivers, packets resent from the retransmission buffer, and NACKed packets
    /// no longer (or never) in it.
    public var nacksReceived: UInt64 = 0
    public var packetsRetransmitted: UInt64 = 0
    public var retransmissionMisses: UInt64 = 0
    /// PLI/FIR from viewers passed on to the presenter, and those held back by the rate limit.
    public var keyFrameRequestsForwarded: UInt64 = 0
    public var keyFrameRequestsLimited: UInt64 = 0
    /// RTCP the server generates toward publishers: receiver reports and REMB bandwidth estimates.
    public var receiverReportsSent: UInt64 = 0
    public var rembSent: UInt64 = 0
    /// Per call, refreshed once a second.
    public var calls: [CallMediaSnapshot] = []
    /// DTLS handshakes that failed (bad fingerprint, no SRTP profile, retransmission limit, ...).
    public var dtlsFailures: UInt64 = 0
    /// Connectivity checks rejected (unknown ufrag, bad MESSAGE-INTEGRITY) plus sessions that never completed ICE.
    public var iceFailures: UInt64 = 0
    /// Packets dropped: unknown 5-tuple, malformed, failed SRTP authentication/replay, rate-limited, ...
    public var droppedPackets: UInt64 = 0
    /// Unauthenticated Binding requests or 401s dropped by the per-IP rate limit (also counted in droppedPackets).
    public var rateLimited: UInt64 = 0
    /// Sessions closed because consent expired (RFC 7675).
    public var consentExpirations: UInt64 = 0
    /// Raw DTLS handshake durations in seconds (first DTLS datagram to keys), the most recent 256, oldest first.
    public var handshakeSeconds: [Double] = []
    /// Forwarding latency of SRTP packets the router sent (forwarded or echoed): from the moment the server handled
    /// the received datagram (`MediaCore.tickTime`) to the moment the `sendmmsg` that took the outgoing datagram
    /// returned (after each fan-out chunk, or at the end of the read burst). Counts are **per bucket, not
    /// cumulative**: `forwardLatencyBuckets[i]` counts packets that took more than `forwardLatencyBucketBounds[i - 1]`
    /// (0 for i = 0) and at most `forwardLatencyBucketBounds[i]` seconds; the last element (one more than the bounds)
    /// is the `+Inf` bucket. They add up to `forwardLatencyCount`. (Prometheus `le` buckets are their running sums.)
    public var forwardLatencyBuckets: [UInt64] = Array(repeating: 0, count: ForwardLatencyHistogram.bucketCount)
    /// Upper bounds of the buckets in seconds: 10, 25, 50, 100, 250, 500 µs, 1, 2, 3, 4, 5, 6, 8, 10, 20 ms (then +Inf).
    public var forwardLatencyBucketBounds: [Double] = ForwardLatencyHistogram.boundsSeconds
    /// Sum of all forwarding latencies, in seconds.
    public var forwardLatencySum: Double = 0
    /// Packets in the histogram.
    public var forwardLatencyCount: UInt64 = 0

    public init() {}
}

/// One call as the media layer sees it.
public struct CallMediaSnapshot: Sendable, Hashable {
    /// The call key (channel id).
    public var key: String
    /// Media sessions in the call.
    public var participants: Int
    /// Unmuted participants whose audio was forwarded in the last two seconds.
    public var speakers: Int
    /// Participants publishing a screen.
    public var presenters: Int
    /// Packets forwarded to members of this call since it started.
    public var packetsForwarded: UInt64
    /// Audio packets the listeners reported lost on their slots (the sum of each slot's latest RTCP cumulative loss).
    public var listenerReportedLost: Int64 = 0
    /// Speakers in the call's ranking (at most audio slots + 1).
    public var rankedSpeakers: Int = 0

    public init(key: String, participants: Int, speakers: Int, presenters: Int, packetsForwarded: UInt64) {
        self.key = key
        self.participants = participants
        self.speakers = speakers
        self.presenters = presenters
        self.packetsForwarded = packetsForwarded
    }
}

/// A lock-protected value, for the few pieces of state read outside the media event loop (and the server's
/// settings that a reload changes).
// Sendable because every access to `value` goes through `lock`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) {
        self.value = value
    }

    /// The value now (a copy).
    public var current: Value { withLock { $0 } }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
