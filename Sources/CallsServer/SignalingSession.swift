import Foundation
import Logging

/// Decides whether the holder of valid claims may join now; returns a refusal reason, or nil to admit.
public typealias JoinAdmission = @Sendable (JoinTokenClaims) async -> String?

/// An ICE server handed to clients in `joined` (STUN/TURN URLs with optional credentials).
public struct ICEServerInfo: Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }

    var json: String {
        var fields = ["\"urls\":[" + urls.map(jsonQuote).joined(separator: ",") + "]"]
        if let username { fields.append("\"username\":\(jsonQuote(username))") }
        if let credential { fields.append("\"credential\":\(jsonQuote(credential))") }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// The signaling protocol's error codes (docs/protocol.md §Errors).
public enum SignalingErrorCode: String, Sendable, CaseIterable {
    case badMessage = "bad_message"
    case unsupportedVersion = "unsupported_version"
    case messageTooLarge = "message_too_large"
    case badToken = "bad_token"
    case expiredToken = "expired_token"
    case callNotAllowed = "call_not_allowed"
    case callFull = "call_full"
    case notJoined = "not_joined"
    case alreadyJoined = "already_joined"
    case badOffer = "bad_offer"
    case alreadyOffered = "already_offered"
    case mediaUnavailable = "media_unavailable"
    case serverDraining = "server_draining"
}

/// One WebSocket's signaling state: join → offer/answer → connected → leave.
///
/// Messages are handled one at a time in arrival order (the connection feeds them from a single task).
/// It never throws: every problem becomes an `error` message to the client.
actor SignalingSession {
    static let version = 1

    enum State {
        case awaitingJoin
        case joined(JoinTokenClaims)
        /// An offer is being answered, or was answered.
        case inCall(JoinTokenClaims, mediaSessionID: String?)
        case left
    }

    let id: String
    private let peer: String
    private let backend: any MediaBackend
    private let signer: JoinTokenSigner
    private let admission: JoinAdmission?
    private let iceServers: [ICEServerInfo]
    private let iceServerSettings: ICEServerSettings
    private let registry: SessionRegistry?
    private let metrics: ServerMetrics
    private let isDraining: @Sendable () -> Bool
    private let maxParticipants: Int?
    private let send: @Sendable (String) -> Void
    private let close: @Sendable () -> Void
    private var logger: Logger
    private var state = State.awaitingJoin
    private var eventsTask: Task<Void, Never>?

    init(
        id: String, peer: String, backend: any MediaBackend, signer: JoinTokenSigner, admission: JoinAdmission?,
        iceServers: [ICEServerInfo], iceServerSettings: ICEServerSettings = ICEServerSettings(),
        registry: SessionRegistry? = nil, metrics: ServerMetrics, isDraining: @escaping @Sendable () -> Bool,
        maxParticipants: Int? = nil,
        logger: Logger, send: @escaping @Sendable (String) -> Void, close: @escaping @Sendable () -> Void
    ) {
        self.maxParticipants = maxParticipants
        self.id = id
        self.peer = peer
        self.backend = backend
        self.signer = signer
        self.admission = admission
        self.iceServers = iceServers
        self.iceServerSettings = iceServerSettings
        self.registry = registry
        self.metrics = metrics
        self.isDraining = isDraining
        self.send = send
        self.close = close
        var logger = logger
        logger[metadataKey: "session.id"] = "\(id)"
        logger[metadataKey: "peer.address"] = "\(peer)"
        self.logger = logger
    }

    // MARK: Inbound

    /// A complete text message from the client.
    func handle(text: String) async {
        guard case .object(let message)? = try? JSONLite.parse(text) else {
            sendError(.badMessage, "the message is not a JSON object; send for example {\"v\":1,\"type\":\"join\",\"token\":\"...\"}")
            return
        }
        if let v = message["v"] {
            guard case .number(let n) = v, n == Double(Self.version) else {
                sendError(
                    .unsupportedVersion,
                    "this server speaks signaling protocol version \(Self.version), the message asked for \(v.rendered); send \"v\":\(Self.version)")
                return
            }
        }
        guard case .string(let type)? = message["type"] else {
            sendError(.badMessage, "the message has no \"type\" string; expected one of join, offer, ice, leave, ping")
            return
        }
        switch type {
        case "join": await join(message)
        case "offer": await offer(message)
        case "ice": ice(message)
        case "leave": await leave()
        case "ping": reply(["type": .string("pong")])
        default:
            sendError(.badMessage, "unknown message type \"\(type)\"; expected one of join, offer, ice, leave, ping")
        }
    }

    /// A message larger than the limit was discarded.
    func oversize(bytes: Int, limit: Int) {
        sendError(
            .messageTooLarge,
            "the message of \(bytes) bytes is larger than the limit of \(limit) bytes and was ignored; an SDP offer for an audio call is a few kB, so check what is being sent")
    }

    /// A text frame that is not valid UTF-8, or a binary frame.
    func notText() {
        sendError(.badMessage, "signaling messages are JSON in UTF-8 text frames; binary frames are not used")
    }

    /// The socket closed: end the media session.
    func disconnected() async {
        await endMedia(reason: "signaling connection closed")
        state = .left
        registry?.remove(id)
    }

    // MARK: Messages

    private func join(_ message: [String: JSONLite]) async {
        guard message["v"] != nil else {
            sendError(.badMessage, "join needs the protocol version: send {\"v\":\(Self.version),\"type\":\"join\",\"token\":\"...\"}")
            return
        }
        guard case .awaitingJoin = state else {
            sendError(.alreadyJoined, "this connection has already joined; open a new WebSocket to join again")
            return
        }
        if isDraining() {
            metrics.join(result: "refused")
            logger.info("join refused", metadata: ["reason": "draining"])
            sendError(.serverDraining, "the server is draining (shutting down) and takes no new calls; retry on another server or in a moment")
            return
        }
        guard case .string(let token)? = message["token"], !token.isEmpty else {
            sendError(.badToken, "join needs a \"token\" string; create one with `callsctl token create --channel ID --user NAME`")
            return
        }
        let claims: JoinTokenClaims
        do {
            claims = try signer.verify(token)
        } catch {
            metrics.join(result: "refused")
            logger.info("join refused", metadata: ["reason": "\(error.code.rawValue)"])
            sendError(error.code == .expired ? .expiredToken : .badToken, "the token was refused: \(error.message)")
            return
        }
        // The channel policy is checked when a call starts; joining a running call is not checked
        // again (as in the Calls plugin), so a channel disabled mid-call keeps its call.
        let callRunning = (registry?.count(channel: claims.channel.rawValue) ?? 0) > 0
        if !callRunning, let admission, let reason = await admission(claims) {
            metrics.join(result: "refused")
            logger.info("join refused", metadata: ["reason": "\(reason)", "call.channel": "\(claims.channel)"])
            sendError(.callNotAllowed, reason)
            return
        }
        guard case .awaitingJoin = state else { return }  // the socket closed while admission ran
        let send = self.send
        let close = self.close
        let record = SessionRecord(
            id: id, user: claims.user, channel: claims.channel.rawValue, role: claims.role.rawValue, peer: peer,
            joinedAt: Date(),
            remove: {
                send("{\"v\":\(Self.version),\"type\":\"closed\",\"reason\":\"removed by an administrator\"}")
                close()
            })
        if let registry, !registry.join(record, limit: maxParticipants) {
            metrics.join(result: "refused")
            logger.info("join refused", metadata: ["reason": "call full", "call.channel": "\(claims.channel)"])
            sendError(
                .callFull,
                "the call in channel \(claims.channel) already has \(maxParticipants ?? 0) participants, the limit set by --max-participants; try again when someone leaves")
            return
        }
        state = .joined(claims)
        logger[metadataKey: "call.channel"] = "\(claims.channel)"
        logger[metadataKey: "user"] = "\(claims.user)"
        metrics.join(result: "ok")
        logger.info("joined", metadata: ["role": "\(claims.role.rawValue)"])

        // TURN credentials are made for this join and never logged.
        let servers = iceServers + iceServerSettings.servers(user: claims.user)
        reply([
            "type": .string("joined"), "sessionId": .string(id), "channel": .string(claims.channel.rawValue),
            "user": .string(claims.user), "iceServers": .raw("[" + servers.map(\.json).joined(separator: ",") + "]"),
        ])
    }

    private func offer(_ message: [String: JSONLite]) async {
        let claims: JoinTokenClaims
        switch state {
        case .awaitingJoin:
            sendError(.notJoined, "send join with a token before the offer")
            return
        case .joined(let c): claims = c
        case .inCall:
            sendError(.alreadyOffered, "this connection already has a call; renegotiation is not supported yet, so leave and join again")
            return
        case .left:
            sendError(.notJoined, "this connection has left; open a new WebSocket to join again")
            return
        }
        guard case .string(let sdp)? = message["sdp"], !sdp.isEmpty else {
            sendError(.badOffer, "offer needs an \"sdp\" string holding the SDP from RTCPeerConnection.createOffer()")
            return
        }
        state = .inCall(claims, mediaSessionID: nil)
        let started = ContinuousClock.now
        let label = "\(claims.user)@\(claims.channel)/\(id)"
        let result: (sessionID: String, answer: String)
        do {
            result = try await backend.createSession(offer: sdp, label: label)
        } catch let error as MediaUnavailableError {
            state = .joined(claims)
            sendError(.mediaUnavailable, error.description)
            return
        } catch {
            state = .joined(claims)
            logger.info("offer refused", metadata: ["error": "\(error)"])
            sendError(.badOffer, "the offer was refused: \(error)")
            return
        }
        guard case .inCall = state else {
            // The socket closed while the answer was made.
            await backend.closeSession(result.sessionID)
            return
        }
        state = .inCall(claims, mediaSessionID: result.sessionID)
        let sessionID = id
        registry?.update(sessionID) { $0.mediaSession = result.sessionID }
        let registry = self.registry
        logger[metadataKey: "media.session"] = "\(result.sessionID)"
        logger.info("answered offer")
        reply(["type": .string("answer"), "sdp": .string(result.answer)])
        let events = backend.backendEvents(result.sessionID)
        eventsTask = Task { [weak self] in
            var transport = "unknown"
            for await event in events {
                guard let self else { return }
                switch event {
                case .iceConnected(let t, let remote):
                    transport = t
                    registry?.update(sessionID) { $0.transport = t }
                    await self.log("ICE connected", ["transport": "\(t)", "remote": "\(remote)"])
                case .dtlsConnected(let profile):
                    let seconds = (ContinuousClock.now - started).seconds
                    self.metrics.observeHandshake(seconds: seconds)
                    registry?.update(sessionID) { $0.connectedAt = Date() }
                    await self.log("connected", ["transport": "\(transport)", "srtp.profile": "\(profile)"])
                    await self.reply(["type": .string("connected"), "transport": .string(transport)])
                case .closed(let reason):
                    await self.mediaClosed(reason: reason)
                    return
                }
            }
        }
    }

    private func ice(_ message: [String: JSONLite]) {
        // ICE-lite: the server learns the client's address from its connectivity checks, so trickled
        // candidates are accepted and not needed. Still check the shape so mistakes are visible.
        guard case .awaitingJoin = state else {
            if message["candidate"] == nil {
                sendError(.badMessage, "ice needs a \"candidate\" (an RTCIceCandidate's JSON, or null at the end)")
            }
            return
        }
        sendError(.notJoined, "send join with a token before ICE candidates")
    }

    private func leave() async {
        await endMedia(reason: "left")
        state = .left
        registry?.remove(id)
        reply(["type": .string("left")])
        close()
    }

    // MARK: Helpers

    private func mediaClosed(reason: String) {
        guard case .inCall(let claims, _) = state else { return }
        logger.info("media session closed", metadata: ["reason": "\(reason)"])
        state = .joined(claims)
        eventsTask = nil
        clearMedia()
        reply(["type": .string("closed"), "reason": .string(reason)])
    }

    private func endMedia(reason: String) async {
        eventsTask?.cancel()
        eventsTask = nil
        if case .inCall(let claims, let media) = state {
            if let media {
                await backend.closeSession(media)
                logger.info("media session closed", metadata: ["reason": "\(reason)"])
            }
            state = .joined(claims)
            clearMedia()
        }
    }

    private func clearMedia() {
        registry?.update(id) {
            $0.mediaSession = nil
            $0.transport = nil
            $0.connectedAt = nil
        }
    }

    private func log(_ message: Logger.Message, _ metadata: Logger.Metadata) {
        logger.info(message, metadata: metadata)
    }

    private func reply(_ fields: KeyValuePairs<String, JSONLite>) {
        var parts = ["\"v\":\(Self.version)"]
        for (k, v) in fields { parts.append(jsonQuote(k) + ":" + v.rendered) }
        send("{" + parts.joined(separator: ",") + "}")
    }

    private func sendError(_ code: SignalingErrorCode, _ text: String) {
        logger.debug("signaling error", metadata: ["code": "\(code.rawValue)"])
        reply(["type": .string("error"), "code": .string(code.rawValue), "message": .string(text)])
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
