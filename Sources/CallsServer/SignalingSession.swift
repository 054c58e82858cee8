import CallsStore
import Foundation
import Logging

/// Decides whether the holder of valid claims may join now; returns a refusal reason, or nil to admit.
public typealias JoinAdmission = @Sendable (JoinTokenClaims) async -> String?

/// An ICE server handed to clients in `joined` (STUN/TURN URLs with optional credentials).
public typealias ICEServerInfo = Signaling.ICEServer

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
    case screenBusy = "screen_busy"
    case notInCall = "not_in_call"
    case clusterUnavailable = "cluster_unavailable"
}

/// Call events sent to every participant of a call (docs/protocol.md §event).
enum CallEvent {
    /// The event's JSON, encoded once for the whole call.
    static func json(
        _ name: Signaling.Event.Name, participant: String?, user: String?, muted: Bool? = nil, emoji: String? = nil
    ) -> String {
        Signaling.encode(Signaling.Event(name, participant: participant, user: user, muted: muted, emoji: emoji))
    }

    /// Tells the rest of the call that a participant left (and that its screen went off).
    static func announce(_ d: SessionRegistry.Departure, registry: SessionRegistry) {
        let r = d.record
        guard !r.echo else { return }
        if d.wasPresenting {
            registry.broadcast(channel: r.channel, json(.screenOff, participant: r.id, user: r.user))
        }
        registry.broadcast(channel: r.channel, json(.left, participant: r.id, user: r.user))
    }
}

/// One WebSocket's signaling state: join → offer/answer → connected → leave.
///
/// Messages are handled one at a time in arrival order (the connection feeds them from a single task).
/// It never throws: every problem becomes an `error` message to the client.
actor SignalingSession {
    /// The current protocol version, and the oldest still served. Version 1 clients are served the same calls (fixed
    /// audio slots; `a=msid` no longer names the speaker) without the `speakers` message they do not know.
    static let version = Signaling.version
    static let oldestVersion = Signaling.oldestVersion
    static let messageTypes = Signaling.ClientType.allCases.map(\.rawValue).joined(separator: ", ")

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
    private let placement: (any CallPlacement)?
    private let iceServers: [ICEServerInfo]
    private let iceServerSettings: ICEServerSettings
    private let registry: SessionRegistry?
    private let metrics: ServerMetrics
    private let isDraining: @Sendable () -> Bool
    private let maxParticipants: Int?
    private let audioSlots: Int
    /// The version the client joined with (replies carry it).
    private var clientVersion = SignalingSession.version
    private let send: @Sendable (String) -> Void
    /// Call events from others (the registry's broadcasts): may be flushed a little later than replies.
    private let sendEvent: @Sendable (String) -> Void
    private let close: @Sendable () -> Void
    private var logger: Logger
    private var state = State.awaitingJoin
    /// Set at join: an echo test, muted, presenting (holds the call's screen-share slot).
    private var echo = false
    private var muted = false
    private var presenting = false
    private var eventsTask: Task<Void, Never>?
    private let control: ControlExecutor

    init(
        id: String, peer: String, backend: any MediaBackend, signer: JoinTokenSigner, admission: JoinAdmission?,
        iceServers: [ICEServerInfo], iceServerSettings: ICEServerSettings = ICEServerSettings(),
        registry: SessionRegistry? = nil, metrics: ServerMetrics, isDraining: @escaping @Sendable () -> Bool,
        maxParticipants: Int? = nil, audioSlots: Int = 3, control: ControlExecutor = .shared,
        placement: (any CallPlacement)? = nil, logger: Logger, send: @escaping @Sendable (String) -> Void, sendEvent: (@Sendable (String) -> Void)? = nil,
        close: @escaping @Sendable () -> Void
    ) {
        self.sendEvent = sendEvent ?? send
        self.maxParticipants = maxParticipants
        self.audioSlots = audioSlots
        self.control = control
        self.id = id
        self.peer = peer
        self.backend = backend
        self.signer = signer
        self.admission = admission
        self.placement = placement
        self.iceServers = iceServers
        self.iceServerSettings = iceServerSettings
        self.registry = registry
        self.metrics = metrics
        self.isDraining = isDraining
        self.send = send
        self.close = close
        var logger = logger
        logger[metadataKey: "session.id"] = "\(id)"
        logger[metadataKey: "peer.address"] = .untrusted(peer)
        self.logger = logger
    }

    // MARK: Inbound

    /// A complete text message from the client.
    func handle(text: String) async {
        let example = "send for example {\"v\":\(Self.version),\"type\":\"join\",\"token\":\"...\"}"
        // JSONLite is the gate: strict UTF-8, depth, duplicate keys and number range, before Foundation's decoder
        // reads the typed message (each handler decodes its own type from `text`).
        let message: [String: JSONLite]
        do {
            guard case .object(let fields) = try JSONLite.parse(text) else {
                sendError(.badMessage, "the message is not a JSON object; \(example)")
                return
            }
            message = fields
        } catch {
            sendError(.badMessage, "the message is not valid JSON: \(error); \(example)")
            return
        }
        let isJoin = message["type"] == .string("join")
        if let v = message["v"] {
            // integer(in:) refuses fractions, non-numbers and anything out of range (1e400 never parses) without
            // converting first, so no value can trap here.
            guard let n = v.integer(in: Int64(Self.oldestVersion)...Int64(Self.version)) else {
                let text =
                    "this server speaks signaling protocol version \(Self.version) (and still \(Self.oldestVersion)), the message asked for \(String(v.rendered.prefix(40))); send \"v\":\(Self.version)"
                if isJoin, case .awaitingJoin = state {
                    refuseJoin(.unsupportedVersion, reason: "unsupported protocol version", text)
                } else {
                    sendError(.unsupportedVersion, text)
                }
                return
            }
            if case .awaitingJoin = state, isJoin { clientVersion = Int(n) }
        }
        guard case .string(let type)? = message["type"] else {
            sendError(.badMessage, "the message has no \"type\" string; expected one of \(Self.messageTypes)")
            return
        }
        guard let known = Signaling.ClientType(rawValue: type) else {
            sendError(.badMessage, "unknown message type \"\(UntrustedText.forLog(type, limit: 40))\"; expected one of \(Self.messageTypes)")
            return
        }
        metrics.webSocketMessage(direction: "in", type: known.rawValue)
        switch known {
        case .join: await join(text, hasVersion: message["v"] != nil)
        case .offer: await offer(text)
        case .ice: ice(text)
        case .leave: await leave()
        case .ping: reply(Signaling.Bare(v: clientVersion, type: Signaling.ServerType.pong.rawValue))
        case .mute: await setMuted(true)
        case .unmute: await setMuted(false)
        case .screenStart: await screen(on: true)
        case .screenStop: await screen(on: false)
        case .raiseHand: hand(raised: true)
        case .lowerHand: hand(raised: false)
        case .reaction: reaction(text)
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
        departed()
    }

    // MARK: Messages

    private func join(_ text: String, hasVersion: Bool) async {
        guard hasVersion else {
            refuseJoin(
                .badMessage, reason: "no protocol version",
                "join needs the protocol version: send {\"v\":\(Self.version),\"type\":\"join\",\"token\":\"...\"}")
            return
        }
        guard case .awaitingJoin = state else {
            refuseJoin(.alreadyJoined, reason: "already joined", "this connection has already joined; open a new WebSocket to join again")
            return
        }
        // A draining cluster node still answers joins: it sends new calls to a live node and keeps its own.
        if isDraining() && placement == nil {
            refuseJoin(
                .serverDraining, reason: "draining",
                "the server is draining (shutting down) and takes no new calls; retry on another server or in a moment")
            return
        }
        let message: Signaling.Join
        do {
            message = try Signaling.decode(Signaling.Join.self, from: text)
        } catch {
            switch Signaling.field(of: error) {
            case "token":
                refuseJoin(
                    .badToken, reason: "token missing or not a string",
                    "join needs a \"token\" string; create one with `callsctl token create --channel ID --user NAME`")
            case "channel":
                refuseJoin(.badMessage, reason: "channel not a string", "join's \"channel\" must be a channel id string")
            case "echo":
                refuseJoin(
                    .badMessage, reason: "echo not a boolean",
                    "join's \"echo\" must be true (an echo test) or false (join the channel's call)")
            case "muted":
                refuseJoin(.badMessage, reason: "muted not a boolean", "join's \"muted\" must be true or false")
            default:
                refuseJoin(
                    .badMessage, reason: "malformed join",
                    "join must look like {\"v\":\(Self.version),\"type\":\"join\",\"token\":\"...\"}; \(Self.describe(error))")
            }
            return
        }
        let token = message.token
        guard !token.isEmpty else {
            refuseJoin(
                .badToken, reason: "token not a non-empty string",
                "join's \"token\" must be a non-empty string; create one with `callsctl token create --channel ID --user NAME`")
            return
        }
        let claims: JoinTokenClaims
        do {
            claims = try signer.verify(token)
        } catch {
            refuseJoin(
                error.code == .expired ? .expiredToken : .badToken, reason: error.code.rawValue,
                details: ["error": .untrusted(error.message)], "the token was refused: \(error.message)")
            return
        }
        // A client may name the channel it means to join; the token must be for that channel.
        switch message.channel {
        case nil: break
        case let wanted? where wanted == claims.channel.rawValue: break
        case let wanted?:
            let details: Logger.Metadata = [
                "call.channel": .untrusted(claims.channel.rawValue), "wanted.channel": .untrusted(wanted),
            ]
            if (try? ChannelID(validating: wanted)) != nil {
                refuseJoin(
                    .badToken, reason: "token for another channel", details: details,
                    "the token is for channel \(claims.channel), not \(wanted); create one for \(wanted) with `callsctl token create --channel \(wanted) --user NAME`")
            } else {
                refuseJoin(
                    .badToken, reason: "token for another channel", details: details,
                    "the token is for channel \(claims.channel), not \(jsonQuote(UntrustedText.forLog(wanted, limit: 64))), which is not a channel id (26 characters of a-z and 0-9); send the channel id, or leave \"channel\" out")
            }
            return
        }
        let echo = message.echo ?? false
        let startMuted = message.muted ?? false
        // The channel policy is checked when a call starts; joining a running call is not checked
        // again (as in the Calls plugin), so a channel disabled mid-call keeps its call. An echo test
        // starts no call and reaches nobody, so it is not checked.
        let callRunning = (registry?.count(channel: claims.channel.rawValue) ?? 0) > 0
        if isDraining(), placement != nil, echo {
            refuseJoin(
                .serverDraining, reason: "draining",
                "the server is draining (shutting down) and takes no new calls; retry on another server or in a moment")
            return
        }
        // In a cluster the call of a channel runs on one node: claim it here, or send the client to its node.
        var claimedHere = false
        if !echo, !callRunning, let placement {
            switch await placement.place(channel: claims.channel.rawValue, draining: isDraining()) {
            case .local:
                claimedHere = true
            case .redirect(let node, let url):
                redirect(to: url, node: node, channel: claims.channel.rawValue)
                return
            case .refused(let code, let text):
                refuseJoin(code, reason: code.rawValue, details: ["call.channel": .untrusted(claims.channel.rawValue)], text)
                return
            }
        }
        if !echo, !callRunning, let admission, let reason = await admission(claims) {
            releaseClaim(claimedHere, channel: claims.channel.rawValue)
            refuseJoin(
                .callNotAllowed, reason: reason, details: ["call.channel": .untrusted(claims.channel.rawValue)], reason)
            return
        }
        guard case .awaitingJoin = state else {
            // The socket closed while admission ran: nobody to answer, but the join is still counted and logged.
            releaseClaim(claimedHere, channel: claims.channel.rawValue)
            metrics.join(result: "refused")
            logger.info("join refused", metadata: ["reason": "connection closed during admission"])
            return
        }
        let send = self.send
        let close = self.close
        let version = clientVersion
        var record = SessionRecord(
            id: id, user: claims.user, channel: claims.channel.rawValue, role: claims.role.rawValue, peer: peer,
            joinedAt: Date(), echo: echo, muted: startMuted,
            remove: {
                send(Signaling.encode(Signaling.Closed(v: version, reason: "removed by an administrator")))
                close()
            })
        record.notify = sendEvent
        var startedCall = false
        if let registry {
            switch registry.join(record, limit: maxParticipants) {
            case .full:
                releaseClaim(claimedHere, channel: claims.channel.rawValue)
                refuseJoin(
                    .callFull, reason: "call full", details: ["call.channel": .untrusted(claims.channel.rawValue)],
                    "the call in channel \(claims.channel) already has \(maxParticipants ?? 0) participants, the limit set by --max-participants; try again when someone leaves")
                return
            case .joined(let started):
                startedCall = started
            }
        }
        state = .joined(claims)
        self.echo = echo
        self.muted = startMuted
        logger[metadataKey: "call.channel"] = .untrusted(claims.channel.rawValue)
        logger[metadataKey: "user"] = .untrusted(claims.user)
        metrics.join(result: "ok")
        logger.info("joined", metadata: ["role": "\(claims.role.rawValue)", "echo": "\(echo)"])

        // TURN credentials are made for this join and never logged.
        let servers = iceServers + iceServerSettings.servers(user: claims.user)
        var call: Signaling.Joined.Call?
        if !echo, let registry {
            let members = registry.members(channel: claims.channel.rawValue)
            let presenter = registry.presenter(channel: claims.channel.rawValue)
            // Receive transceivers the first offer should carry: the server's fixed audio slots (whatever the size of
            // the call), and video while someone presents.
            call = Signaling.Joined.Call(
                participants: members.map {
                    Signaling.Participant(id: $0.id, user: $0.user, muted: $0.muted, handRaised: $0.handRaised, presenting: $0.id == presenter)
                },
                presenter: presenter, audioSlots: audioSlots, videoSlots: presenter != nil && presenter != id ? 1 : 0)
        }
        reply(
            Signaling.Joined(
                v: clientVersion, sessionId: id, channel: claims.channel.rawValue, user: claims.user, iceServers: servers,
                echo: echo, call: call))
        if !echo, let registry {
            let channel = claims.channel.rawValue
            if startedCall {
                registry.broadcast(channel: channel, CallEvent.json(.callStarted, participant: id, user: claims.user))
            }
            registry.broadcast(
                channel: channel, CallEvent.json(.joined, participant: id, user: claims.user, muted: startMuted))
        }
    }

    private func offer(_ text: String) async {
        let claims: JoinTokenClaims
        switch state {
        case .awaitingJoin:
            sendError(.notJoined, "send join with a token before the offer")
            return
        case .joined(let c): claims = c
        case .inCall(_, let media):
            guard let media else {
                sendError(.alreadyOffered, "the previous offer is still being answered; wait for its answer, then offer again")
                return
            }
            await renegotiate(text, media: media)
            return
        case .left:
            sendError(.notJoined, "this connection has left; open a new WebSocket to join again")
            return
        }
        guard let sdp = offerSDP(text) else { return }
        state = .inCall(claims, mediaSessionID: nil)
        let started = ContinuousClock.now
        // The label is only for the media server's logs.
        let label = UntrustedText.forLog("\(claims.user)@\(claims.channel)/\(id)")
        let result: (sessionID: String, answer: String)
        do {
            result = try await backend.createSession(
                offer: sdp, label: label, channel: echo ? nil : claims.channel.rawValue, participant: id)
        } catch let error as MediaUnavailableError {
            state = .joined(claims)
            logger.info("offer refused", metadata: ["reason": "media unavailable", "error": .untrusted(describing: error)])
            sendError(.mediaUnavailable, error.description)
            return
        } catch {
            state = .joined(claims)
            logger.info("offer refused", metadata: ["error": .untrusted(describing: error)])
            sendError(.badOffer, "the offer was refused: \(error)")
            return
        }
        guard case .inCall = state else {
            // The socket closed while the answer was made.
            await backend.closeSession(result.sessionID)
            return
        }
        state = .inCall(claims, mediaSessionID: result.sessionID)
        if muted { await backend.setAudioForwarding(result.sessionID, false) }
        if presenting { await backend.setPresenter(result.sessionID, true) }
        let sessionID = id
        registry?.update(sessionID) { $0.mediaSession = result.sessionID }
        let registry = self.registry
        logger[metadataKey: "media.session"] = .untrusted(result.sessionID)
        logger.info("answered offer")
        reply(Signaling.Answer(v: clientVersion, sdp: result.answer))
        let events = backend.backendEvents(result.sessionID)
        eventsTask = control.task { [weak self] in
            var transport = "unknown"
            for await event in events {
                guard let self else { return }
                switch event {
                case .iceConnected(let t, let remote):
                    transport = t
                    registry?.update(sessionID) { $0.transport = t }
                    await self.log("ICE connected", ["transport": .untrusted(t), "remote": .untrusted(remote)])
                case .dtlsConnected(let profile):
                    let seconds = (ContinuousClock.now - started).seconds
                    self.metrics.observeHandshake(seconds: seconds)
                    registry?.update(sessionID) { $0.connectedAt = Date() }
                    await self.log("connected", ["transport": .untrusted(transport), "srtp.profile": .untrusted(profile)])
                    await self.connected(transport: transport)
                case .renegotiationNeeded(let audio, let video):
                    await self.renegotiationNeeded(audioSlots: audio, videoSlots: video)
                case .speakers(let slots):
                    await self.speakers(slots)
                case .closed(let reason):
                    await self.mediaClosed(reason: reason)
                    return
                }
            }
        }
    }

    private func ice(_ text: String) {
        // ICE-lite: the server learns the client's address from its connectivity checks, so trickled
        // candidates are accepted and not needed. Still check the shape so mistakes are visible.
        guard case .awaitingJoin = state else {
            if (try? Signaling.decode(Signaling.ICE.self, from: text)) == nil {
                sendError(
                    .badMessage,
                    "ice needs a \"candidate\": an RTCIceCandidate's JSON ({\"candidate\":\"candidate:...\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}), or null at the end")
            }
            return
        }
        sendError(.notJoined, "send join with a token before ICE candidates")
    }

    private func leave() async {
        await endMedia(reason: "left")
        state = .left
        if let d = departed(), d.endedCall, !d.record.echo {
            send(CallEvent.json(.callEnded, participant: id, user: d.record.user))
        }
        reply(Signaling.Bare(v: clientVersion, type: Signaling.ServerType.left.rawValue))
        close()
    }

    /// Leaves the registry and tells the rest of the call.
    @discardableResult
    private func departed() -> SessionRegistry.Departure? {
        guard let registry, let d = registry.leave(id) else { return nil }
        CallEvent.announce(d, registry: registry)
        return d
    }

    private func renegotiate(_ text: String, media: String) async {
        guard !echo else {
            sendError(.alreadyOffered, "an echo test takes one offer; leave and join again to change it")
            return
        }
        guard let sdp = offerSDP(text) else { return }
        do {
            let answer = try await backend.renegotiate(media, offer: sdp)
            logger.debug("answered renegotiation")
            reply(Signaling.Answer(v: clientVersion, sdp: answer))
        } catch {
            logger.info("renegotiation refused", metadata: ["error": .untrusted(describing: error)])
            sendError(.badOffer, "the new offer was refused: \(error)")
        }
    }

    /// The call's channel and media session, or an error to the client when this connection is not in a call.
    private func callContext(for action: String) -> (claims: JoinTokenClaims, media: String?)? {
        let claims: JoinTokenClaims
        let media: String?
        switch state {
        case .joined(let c):
            claims = c
            media = nil
        case .inCall(let c, let m):
            claims = c
            media = m
        case .awaitingJoin, .left:
            sendError(.notJoined, "send join with a token before \(action)")
            return nil
        }
        guard !echo else {
            sendError(.notInCall, "this connection is an echo test, not in a call, so \(action) does not apply")
            return nil
        }
        return (claims, media)
    }

    private func setMuted(_ on: Bool) async {
        guard let (claims, media) = callContext(for: on ? "mute" : "unmute") else { return }
        guard muted != on else { return }
        muted = on
        registry?.update(id) { $0.muted = on }
        if let media { await backend.setAudioForwarding(media, !on) }
        logger.info(on ? "muted" : "unmuted")
        registry?.broadcast(
            channel: claims.channel.rawValue, CallEvent.json(on ? .muted : .unmuted, participant: id, user: claims.user))
    }

    private func screen(on: Bool) async {
        guard let (claims, media) = callContext(for: on ? "screen_start" : "screen_stop"), let registry else { return }
        let channel = claims.channel.rawValue
        if on {
            if let other = registry.claimPresenter(id) {
                sendError(
                    .screenBusy,
                    "\(other.user) is already sharing a screen in this call and a call has one presenter at a time; ask them to stop, or wait for screen_off")
                return
            }
            guard !presenting else { return }
            presenting = true
            if let media { await backend.setPresenter(media, true) }
            logger.info("screen share started")
            reply(Signaling.Bare(v: clientVersion, type: Signaling.ServerType.screenOK.rawValue))
            registry.broadcast(channel: channel, CallEvent.json(.screenOn, participant: id, user: claims.user))
        } else {
            guard registry.releasePresenter(id) else { return }
            presenting = false
            if let media { await backend.setPresenter(media, false) }
            logger.info("screen share stopped")
            registry.broadcast(channel: channel, CallEvent.json(.screenOff, participant: id, user: claims.user))
        }
    }

    private func hand(raised: Bool) {
        guard let (claims, _) = callContext(for: raised ? "raise_hand" : "lower_hand") else { return }
        registry?.update(id) { $0.handRaised = raised }
        registry?.broadcast(
            channel: claims.channel.rawValue,
            CallEvent.json(raised ? .handRaised : .handLowered, participant: id, user: claims.user))
    }

    private func reaction(_ text: String) {
        guard let (claims, _) = callContext(for: "reaction") else { return }
        guard let emoji = try? Signaling.decode(Signaling.Reaction.self, from: text).emoji, !emoji.isEmpty, emoji.count <= 8, emoji.utf8.count <= 64,
            !emoji.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            sendError(.badMessage, "reaction needs an \"emoji\" string of 1 to 8 characters, for example {\"type\":\"reaction\",\"emoji\":\"👍\"}")
            return
        }
        registry?.broadcast(
            channel: claims.channel.rawValue,
            CallEvent.json(.reaction, participant: id, user: claims.user, emoji: emoji))
    }

    // MARK: Helpers

    private func mediaClosed(reason: String) {
        guard case .inCall(let claims, _) = state else { return }
        logger.info("media session closed", metadata: ["reason": .untrusted(reason)])
        metrics.mediaSessionClosed()
        state = .joined(claims)
        eventsTask = nil
        clearMedia()
        reply(Signaling.Closed(v: clientVersion, reason: reason))
    }

    private func endMedia(reason: String) async {
        eventsTask?.cancel()
        eventsTask = nil
        if case .inCall(let claims, let media) = state {
            if let media {
                await backend.closeSession(media)
                logger.info("media session closed", metadata: ["reason": .untrusted(reason)])
                metrics.mediaSessionClosed()
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

    private func reply<T: Encodable>(_ message: T) {
        metrics.webSocketMessage(direction: "out", type: "reply")
        send(Signaling.encode(message))
    }

    private func connected(transport: String) {
        reply(Signaling.Connected(v: clientVersion, transport: transport))
    }

    private func renegotiationNeeded(audioSlots: Int, videoSlots: Int) {
        reply(Signaling.Renegotiate(v: clientVersion, audioSlots: audioSlots, videoSlots: videoSlots))
    }

    /// The SDP of an `offer`, or nil after telling the client what is wrong.
    private func offerSDP(_ text: String) -> String? {
        guard let sdp = try? Signaling.decode(Signaling.Offer.self, from: text).sdp, !sdp.isEmpty else {
            sendError(.badOffer, "offer needs an \"sdp\" string holding the SDP from RTCPeerConnection.createOffer()")
            return nil
        }
        return sdp
    }

    /// A decoding error in words (the field and what was expected), without quoting the client's values.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "it is not a valid message" }
        switch error {
        case .keyNotFound(let key, _): return "\"\(key.stringValue)\" is missing"
        case .typeMismatch(let type, let c): return "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" must be \(type)"
        case .valueNotFound(let type, let c): return "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" must be \(type), not null"
        case .dataCorrupted(let c): return "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" is malformed"
        @unknown default: return "it is not a valid message"
        }
    }

    /// Tells a version 2 client who speaks in which of its audio slots (version 1 clients do not know the message).
    private func speakers(_ slots: [SlotSpeaker]) {
        guard clientVersion >= 2 else { return }
        reply(Signaling.Speakers(v: clientVersion, slots: slots))
    }

    /// Refuses a join: counted in callsctl_joins_total{result="refused"}, logged once with `reason` and `details`
    /// (escaped, as they may quote the client), and answered with an error.
    /// A claim made for a join that did not join: released unless a call of the channel runs here after all.
    private func releaseClaim(_ claimed: Bool, channel: String) {
        guard claimed, let placement, (registry?.count(channel: channel) ?? 0) == 0 else { return }
        placement.released(channel: channel)
    }

    /// The call runs on another node of the cluster: tell the client where, and close.
    private func redirect(to url: String, node: String, channel: String) {
        metrics.join(result: "redirected")
        logger.info("join redirected", metadata: ["call.channel": .untrusted(channel), "node": .untrusted(node), "url": .untrusted(url)])
        reply(
            Signaling.Redirect(
                v: clientVersion, url: url, ws: Signaling.Redirect.webSocketURL(url), node: node, channel: channel,
                reason: "the call in channel \(channel) runs on node \(node); join again at \(Signaling.Redirect.webSocketURL(url))"))
        state = .left
        close()
    }

    private func refuseJoin(
        _ code: SignalingErrorCode, reason: String, details: Logger.Metadata = [:], _ text: String
    ) {
        metrics.join(result: "refused")
        var metadata = details
        metadata["reason"] = .untrusted(reason)
        metadata["code"] = .string(code.rawValue)
        logger.info("join refused", metadata: metadata)
        sendError(code, text)
    }

    private func sendError(_ code: SignalingErrorCode, _ text: String) {
        logger.debug("signaling error", metadata: ["code": "\(code.rawValue)"])
        metrics.signalingError()
        reply(Signaling.ErrorReply(v: clientVersion, code: code.rawValue, message: text))
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
