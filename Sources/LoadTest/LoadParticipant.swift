import CallsMedia
import CallsServer
import CallsWire
import Foundation
import Logging
import NIOCore
import NIOPosix

/// One simulated participant: the project's WebRTC client (ICE, DTLS, SRTP) driven through the server's signaling
/// like a browser: join, offer with the slots `joined` asks for, connect, renegotiate when asked, follow the
/// speaker map, leave.
final class LoadParticipant: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`; `client` and `signaling` are set once before `ready`.
    let index: Int
    let user: String
    let speaks: Bool
    /// Shares a screen: asks for the presenter slot after connecting and publishes a VP8 section.
    let presents: Bool
    private let lock = NSLock()
    private var _presenting = false
    private var _client: MediaClient?
    private var _signaling: SignalingClient?
    private var _error: String?
    private var _joinSeconds: Double?
    private var _renegotiations = 0
    private var _speakers: Set<String> = []
    private var _closedReason: String?
    private var _redirects = 0
    private var _node: String?
    private var _joinedAt: String?

    init(index: Int, user: String, speaks: Bool, presents: Bool = false) {
        self.index = index
        self.user = user
        self.speaks = speaks
        self.presents = presents
    }

    /// True once the server answered the offer that publishes this presenter's screen.
    var presenting: Bool { lock.withLock { _presenting } }

    var client: MediaClient? { lock.withLock { _client } }

    /// Gives the participant a client without joining (tests of the runner's bookkeeping).
    func attach(_ client: MediaClient) { lock.withLock { _client = client } }
    var error: String? { lock.withLock { _error } }
    var joinSeconds: Double? { lock.withLock { _joinSeconds } }
    var renegotiations: Int { lock.withLock { _renegotiations } }
    /// Participants the speaker map ever named in this participant's slots.
    var speakersSeen: Set<String> { lock.withLock { _speakers } }
    var closedReason: String? { lock.withLock { _closedReason } }
    /// Redirects followed to reach the call's node (cluster), that node's id, and the host:port joined at.
    var redirects: Int { lock.withLock { _redirects } }
    var node: String? { lock.withLock { _node } }
    var joinedAt: String? { lock.withLock { _joinedAt } }

    func setError(_ message: String) { fail(message) }

    private func fail(_ message: String) {
        lock.withLock { if _error == nil { _error = message } }
    }

    /// Joins with `token` and connects; returns when connected or failed (see ``error``), then keeps handling the
    /// server's messages in the background until ``leave()``.
    func join(
        host: String, port: Int, token: String, channel: String, configuration: MediaClientConfiguration,
        logger: Logger, timeout: Duration
    ) async {
        let start = ContinuousClock.now
        let deadline = start + timeout
        do {
            // In a cluster the first node asked may send the client to the node of the channel's call (`redirect`):
            // join again there with the same token, at most a few hops.
            var target = (host: host, port: port)
            var signaling: SignalingClient
            var messages: AsyncStream<String>.AsyncIterator
            var joinedText: String
            var hops = 0
            while true {
                signaling = try await SignalingClient(
                    host: target.host, port: target.port, path: "/ws",
                    group: configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton, timeout: timeout)
                lock.withLock { _signaling = signaling }
                messages = signaling.messages.makeAsyncIterator()
                try await signaling.send(Signaling.encode(Signaling.Join(token: token, channel: channel, muted: !speaks)))
                let reply = try await next(.joined, or: .redirect, from: &messages, deadline: deadline)
                guard let redirect = try? Signaling.decode(Signaling.Redirect.self, from: reply), redirect.type == Signaling.ServerType.redirect.rawValue
                else {
                    joinedText = reply
                    break
                }
                await signaling.close()
                hops += 1
                guard hops <= Self.maxRedirects else {
                    throw SignalingClient.Failure(description: "redirected more than \(Self.maxRedirects) times (last to \(redirect.ws)); check each node's cluster.public_url")
                }
                guard let next = Self.hostPort(ofWebSocketURL: redirect.ws) else {
                    throw SignalingClient.Failure(description: "the redirect to \(redirect.ws) is not a ws:// URL this client can follow")
                }
                target = next
                lock.withLock {
                    _redirects += 1
                    _node = redirect.node
                }
            }
            lock.withLock { _joinedAt = "\(target.host):\(target.port)" }
            let joined = try Signaling.decode(Signaling.Joined.self, from: joinedText)
            let audioSlots = joined.call?.audioSlots ?? 3
            let videoSlots = joined.call?.videoSlots ?? 0
            let client = try MediaClient(configuration: configuration, logger: logger)
            lock.withLock { _client = client }
            try await signaling.send(offerMessage(client.callOffer(audioReceiveSlots: audioSlots, videoReceiveSlots: videoSlots)))
            guard let sdp = try? Signaling.decode(Signaling.Answer.self, from: try await next(.answer, from: &messages, deadline: deadline)).sdp
            else { throw SignalingClient.Failure(description: "the answer has no sdp") }
            try await client.connect(answer: sdp)
            lock.withLock { _joinSeconds = Self.seconds(ContinuousClock.now - start) }
            let iterator = messages
            let joinedSignaling = signaling
            Task { await self.follow(iterator, signaling: joinedSignaling, client: client) }
            if presents { try await joinedSignaling.send(Signaling.encode(Signaling.Bare(type: Signaling.ClientType.screenStart.rawValue))) }
        } catch {
            fail("\(error)")
        }
    }

    /// The rest of the conversation: renegotiations and speaker maps.
    private func follow(_ iterator: AsyncStream<String>.AsyncIterator, signaling: SignalingClient, client: MediaClient) async {
        var messages = iterator
        var pendingAnswer = false
        var audioSlots = 3
        var videoSlots = 0
        var screenOffered = false
        while let text = await messages.next() {
            // Roster events are most of the traffic in a large call (one per join and leave, to everyone): they are
            // not parsed, only the messages acted on are.
            guard let type = messageType(text).flatMap({ Signaling.ServerType(rawValue: String($0)) }) else { continue }
            switch type {
            case .renegotiate:
                guard let m = try? Signaling.decode(Signaling.Renegotiate.self, from: text) else { continue }
                lock.withLock { _renegotiations += 1 }
                (audioSlots, videoSlots) = (m.audioSlots, m.videoSlots)
                let offer = client.callOffer(audioReceiveSlots: audioSlots, videoReceiveSlots: videoSlots, publishVideo: screenOffered)
                pendingAnswer = true
                try? await signaling.send(offerMessage(offer))
            case .screenOK:
                // The presenter slot is ours: offer the screen section (kept in every later offer).
                screenOffered = true
                pendingAnswer = true
                let offer = client.callOffer(audioReceiveSlots: audioSlots, videoReceiveSlots: videoSlots, publishVideo: true)
                try? await signaling.send(offerMessage(offer))
            case .answer:
                if pendingAnswer, let m = try? Signaling.decode(Signaling.Answer.self, from: text) {
                    try? client.applyAnswer(m.sdp)
                    // The server took the screen when it answers a video section recvonly (ours: we receive none
                    // of our own).
                    if screenOffered, let d = try? WebRTCDescription(sdp: m.sdp),
                        d.sections.contains(where: { $0.kind == .video && $0.direction == .recvonly && $0.port != 0 })
                    {
                        lock.withLock { _presenting = true }
                    }
                }
                pendingAnswer = false
            case .speakers:
                guard let m = try? Signaling.decode(Signaling.Speakers.self, from: text) else { continue }
                lock.withLock { _speakers.formUnion(m.slots.compactMap(\.participant)) }
            case .closed:
                let reason = (try? Signaling.decode(Signaling.Closed.self, from: text))?.reason
                lock.withLock { _closedReason = reason ?? "closed" }
            default:
                break
            }
        }
    }

    /// Leaves the call and closes the media client.
    func leave() async {
        let (signaling, client) = lock.withLock { (_signaling, _client) }
        try? await signaling?.send(Signaling.encode(Signaling.Bare(type: Signaling.ClientType.leave.rawValue)))
        await signaling?.close()
        await client?.close()
    }

    private func offerMessage(_ sdp: String) -> String {
        Signaling.encode(Signaling.Offer(sdp: sdp))
    }

    /// The text of the next message of `type`; an `error` throws with the server's message.
    private func next(
        _ type: Signaling.ServerType, or other: Signaling.ServerType? = nil, from messages: inout AsyncStream<String>.AsyncIterator,
        deadline: ContinuousClock.Instant
    ) async throws -> String {
        while ContinuousClock.now < deadline {
            guard let text = await messages.next() else {
                throw SignalingClient.Failure(description: "the server closed the signaling connection before \(type)")
            }
            guard let m = try? Signaling.decode(Signaling.Bare.self, from: text) else { continue }
            switch Signaling.ServerType(rawValue: m.type) {
            case type?: return text
            case let t? where t == other: return text
            case .error?:
                let e = try? Signaling.decode(Signaling.ErrorReply.self, from: text)
                throw SignalingClient.Failure(description: "\(e?.code ?? "error"): \(e?.message ?? text)")
            default: continue
            }
        }
        throw SignalingClient.Failure(description: "no \(type) within the join timeout")
    }

    static let maxRedirects = 3

    /// `ws://127.0.0.1:8045/ws` → ("127.0.0.1", 8045); nil for wss:// (this client speaks plain WebSocket) or a path
    /// other than /ws.
    static func hostPort(ofWebSocketURL text: String) -> (host: String, port: Int)? {
        guard let url = URLComponents(string: text), url.scheme?.lowercased() == "ws", let host = url.host, !host.isEmpty,
            url.path == "/ws"
        else { return nil }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (bare, url.port ?? 80)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// The `type` of a signaling message from the server's compact JSON (`"type":"…"`), without parsing the rest (in a
/// call of 1,000 the roster events are most of the traffic and are skipped this way). Values cannot contain the
/// pattern: their quotes are escaped.
func messageType(_ text: String) -> Substring? {
    guard let start = text.range(of: "\"type\":\"") else { return nil }
    let rest = text[start.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return rest[..<end]
}
