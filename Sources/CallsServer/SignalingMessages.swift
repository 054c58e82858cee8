import Foundation

/// The signaling protocol (docs/protocol.md) as types: one `Codable` type per client and server message, encoded
/// and decoded with Foundation's JSON. The server and its Swift clients (`callsctl doctor`, `callsctl loadtest`)
/// use these; a test derives the examples of docs/protocol.md from them.
///
/// What comes from outside passes `JSONLite` first (`SignalingSession.handle`): the size limit of the WebSocket
/// layer, strict UTF-8, nesting depth, duplicate keys and number range are checked there, so the decoder below only
/// ever sees a small, well-formed object. Unknown fields are ignored (a newer client may send more).
public enum Signaling {
    /// The current protocol version, and the oldest still served.
    public static let version = 2
    public static let oldestVersion = 1

    /// Client message types, in the order the documentation lists them.
    public enum ClientType: String, CaseIterable, Sendable {
        case join, offer, ice, leave, mute, unmute
        case screenStart = "screen_start", screenStop = "screen_stop"
        case raiseHand = "raise_hand", lowerHand = "lower_hand", reaction, ping
    }

    /// Server message types.
    public enum ServerType: String, CaseIterable, Sendable {
        case joined, renegotiate, speakers
        case screenOK = "screen_ok"
        case event, answer, connected, closed, left, pong, error, redirect
    }

    // MARK: JSON

    /// The server's JSON: keys sorted (Foundation's encoder has no other stable order), `/` not escaped (SDP is
    /// full of them).
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every field is a string, number, bool, array or object of those: encoding cannot fail.
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Decodes one message; `DecodingError`'s coding path names the field that was wrong.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// The field a decoding error is about (`"token"`, `"candidate"`, ...), if any.
    public static func field(of error: any Error) -> String? {
        guard let error = error as? DecodingError else { return nil }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return c.codingPath.first?.stringValue
        case .keyNotFound(let key, let c):
            return c.codingPath.first?.stringValue ?? key.stringValue
        @unknown default:
            return nil
        }
    }

    // MARK: Client messages

    /// `join`: the first message on a connection.
    public struct Join: Codable, Equatable, Sendable {
        public var v: Int?
        public var type = ClientType.join.rawValue
        public var token: String
        /// The channel the client means to join; a token for another channel is refused.
        public var channel: String?
        public var muted: Bool?
        public var echo: Bool?

        public init(v: Int? = Signaling.version, token: String, channel: String? = nil, muted: Bool? = nil, echo: Bool? = nil) {
            self.v = v
            self.token = token
            self.channel = channel
            self.muted = muted
            self.echo = echo
        }
    }

    /// `offer`: the client's SDP offer.
    public struct Offer: Codable, Equatable, Sendable {
        public var v: Int?
        public var type = ClientType.offer.rawValue
        public var sdp: String

        public init(v: Int? = Signaling.version, sdp: String) {
            self.v = v
            self.sdp = sdp
        }
    }

    /// `ice`: a trickled candidate (accepted and ignored: the server is ICE-lite).
    public struct ICE: Codable, Equatable, Sendable {
        /// `RTCIceCandidate.toJSON()`.
        public struct Candidate: Codable, Equatable, Sendable {
            public var candidate: String
            public var sdpMid: String?
            public var sdpMLineIndex: Int?
            public var usernameFragment: String?

            public init(candidate: String, sdpMid: String? = nil, sdpMLineIndex: Int? = nil, usernameFragment: String? = nil) {
                self.candidate = candidate
                self.sdpMid = sdpMid
                self.sdpMLineIndex = sdpMLineIndex
                self.usernameFragment = usernameFragment
            }
        }

        public var v: Int?
        public var type = ClientType.ice.rawValue
        /// Null at the end of candidates; the field itself is required.
        public var candidate: Candidate?

        public init(v: Int? = Signaling.version, candidate: Candidate?) {
            self.v = v
            self.candidate = candidate
        }

        enum CodingKeys: String, CodingKey { case v, type, candidate }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            v = try c.decodeIfPresent(Int.self, forKey: .v)
            type = try c.decode(String.self, forKey: .type)
            guard c.contains(.candidate) else {
                throw DecodingError.keyNotFound(
                    CodingKeys.candidate, .init(codingPath: [], debugDescription: "ice needs a candidate (or null)"))
            }
            candidate = try c.decodeIfPresent(Candidate.self, forKey: .candidate)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(v, forKey: .v)
            try c.encode(type, forKey: .type)
            try c.encode(candidate, forKey: .candidate)  // null at the end of candidates
        }
    }

    /// `reaction`: an emoji broadcast to the call.
    public struct Reaction: Codable, Equatable, Sendable {
        public var v: Int?
        public var type = ClientType.reaction.rawValue
        public var emoji: String

        public init(v: Int? = Signaling.version, emoji: String) {
            self.v = v
            self.emoji = emoji
        }
    }

    /// A message that is only its type: from the client `leave`, `mute`, `unmute`, `screen_start`, `screen_stop`,
    /// `raise_hand`, `lower_hand`, `ping`; from the server `screen_ok`, `left`, `pong`.
    public struct Bare: Codable, Equatable, Sendable {
        public var v: Int?
        public var type: String

        public init(v: Int? = Signaling.version, type: String) {
            self.v = v
            self.type = type
        }
    }

    // MARK: Server messages

    /// An ICE server for `new RTCPeerConnection({iceServers})`.
    public struct ICEServer: Codable, Equatable, Sendable {
        public var urls: [String]
        public var username: String?
        public var credential: String?

        public init(urls: [String], username: String? = nil, credential: String? = nil) {
            self.urls = urls
            self.username = username
            self.credential = credential
        }
    }

    /// A roster entry of `joined`.
    public struct Participant: Codable, Equatable, Sendable {
        public var id: String
        public var user: String
        public var muted: Bool
        public var handRaised: Bool
        public var presenting: Bool

        public init(id: String, user: String, muted: Bool, handRaised: Bool, presenting: Bool) {
            self.id = id
            self.user = user
            self.muted = muted
            self.handRaised = handRaised
            self.presenting = presenting
        }
    }

    /// `joined`: the join was accepted. The call fields (`participants`, `presenter`, `audioSlots`, `videoSlots`)
    /// are present in a call and absent in an echo test; `presenter` is null while nobody presents.
    public struct Joined: Codable, Equatable, Sendable {
        public struct Call: Equatable, Sendable {
            public var participants: [Participant]
            public var presenter: String?
            public var audioSlots: Int
            public var videoSlots: Int

            public init(participants: [Participant], presenter: String?, audioSlots: Int, videoSlots: Int) {
                self.participants = participants
                self.presenter = presenter
                self.audioSlots = audioSlots
                self.videoSlots = videoSlots
            }
        }

        public var v: Int
        public var type = ServerType.joined.rawValue
        public var sessionId: String
        public var channel: String
        public var user: String
        public var iceServers: [ICEServer]
        public var echo: Bool
        public var call: Call?

        public init(
            v: Int = Signaling.version, sessionId: String, channel: String, user: String, iceServers: [ICEServer],
            echo: Bool, call: Call?
        ) {
            self.v = v
            self.sessionId = sessionId
            self.channel = channel
            self.user = user
            self.iceServers = iceServers
            self.echo = echo
            self.call = call
        }

        enum CodingKeys: String, CodingKey {
            case v, type, sessionId, channel, user, iceServers, echo, participants, presenter, audioSlots, videoSlots
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            v = try c.decode(Int.self, forKey: .v)
            type = try c.decode(String.self, forKey: .type)
            sessionId = try c.decode(String.self, forKey: .sessionId)
            channel = try c.decode(String.self, forKey: .channel)
            user = try c.decode(String.self, forKey: .user)
            iceServers = try c.decode([ICEServer].self, forKey: .iceServers)
            echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? false
            if let participants = try c.decodeIfPresent([Participant].self, forKey: .participants) {
                call = Call(
                    participants: participants, presenter: try c.decodeIfPresent(String.self, forKey: .presenter),
                    audioSlots: try c.decodeIfPresent(Int.self, forKey: .audioSlots) ?? 0,
                    videoSlots: try c.decodeIfPresent(Int.self, forKey: .videoSlots) ?? 0)
            } else {
                call = nil
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(v, forKey: .v)
            try c.encode(type, forKey: .type)
            try c.encode(sessionId, forKey: .sessionId)
            try c.encode(channel, forKey: .channel)
            try c.encode(user, forKey: .user)
            try c.encode(iceServers, forKey: .iceServers)
            try c.encode(echo, forKey: .echo)
            if let call {
                try c.encode(call.participants, forKey: .participants)
                try c.encode(call.presenter, forKey: .presenter)  // null while nobody presents
                try c.encode(call.audioSlots, forKey: .audioSlots)
                try c.encode(call.videoSlots, forKey: .videoSlots)
            }
        }
    }

    /// `answer`: the server's SDP answer.
    public struct Answer: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.answer.rawValue
        public var sdp: String

        public init(v: Int = Signaling.version, sdp: String) {
            self.v = v
            self.sdp = sdp
        }
    }

    /// `renegotiate`: offer again with at least this many receive-only transceivers of each kind.
    public struct Renegotiate: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.renegotiate.rawValue
        public var audioSlots: Int
        public var videoSlots: Int

        public init(v: Int = Signaling.version, audioSlots: Int, videoSlots: Int) {
            self.v = v
            self.audioSlots = audioSlots
            self.videoSlots = videoSlots
        }
    }

    /// `speakers`: who speaks in each of the listener's audio slots.
    public struct Speakers: Codable, Equatable, Sendable {
        public struct Slot: Codable, Equatable, Sendable {
            public var slot: Int
            /// The slot's section in the last answer; null when the offer had none for it.
            public var mid: String?
            public var ssrc: UInt32
            /// The participant in the slot; null while it is free.
            public var participant: String?

            public init(slot: Int, mid: String?, ssrc: UInt32, participant: String?) {
                self.slot = slot
                self.mid = mid
                self.ssrc = ssrc
                self.participant = participant
            }

            enum CodingKeys: String, CodingKey { case slot, mid, ssrc, participant }

            public func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(slot, forKey: .slot)
                try c.encode(mid, forKey: .mid)
                try c.encode(ssrc, forKey: .ssrc)
                try c.encode(participant, forKey: .participant)
            }
        }

        public var v: Int
        public var type = ServerType.speakers.rawValue
        public var slots: [Slot]

        public init(v: Int = Signaling.version, slots: [Slot]) {
            self.v = v
            self.slots = slots
        }
    }

    /// `connected`: ICE and DTLS completed; `transport` is `udp` or `tcp`.
    public struct Connected: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.connected.rawValue
        public var transport: String

        public init(v: Int = Signaling.version, transport: String) {
            self.v = v
            self.transport = transport
        }
    }

    /// `closed`: the media session ended without `leave`.
    public struct Closed: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.closed.rawValue
        public var reason: String

        public init(v: Int = Signaling.version, reason: String) {
            self.v = v
            self.reason = reason
        }
    }

    /// `redirect`: the channel's call runs on another node of the cluster; the client joins again at `ws` with the
    /// same token (the server closes this connection).
    public struct Redirect: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.redirect.rawValue
        /// The node's public base URL (`cluster.public_url`).
        public var url: String
        /// Its signaling WebSocket: `url` with ws(s):// and `/ws`.
        public var ws: String
        public var node: String
        public var channel: String
        public var reason: String

        public init(v: Int = Signaling.version, url: String, ws: String, node: String, channel: String, reason: String) {
            self.v = v
            self.url = url
            self.ws = ws
            self.node = node
            self.channel = channel
            self.reason = reason
        }

        /// `https://calls-2.example.com/base` → `wss://calls-2.example.com/base/ws`.
        public static func webSocketURL(_ base: String) -> String {
            var text = base
            if text.lowercased().hasPrefix("https://") {
                text = "wss://" + text.dropFirst(8)
            } else if text.lowercased().hasPrefix("http://") {
                text = "ws://" + text.dropFirst(7)
            }
            while text.hasSuffix("/") { text.removeLast() }
            return text + "/ws"
        }
    }

    /// `error`: `code` is for programs (docs/protocol.md lists them), `message` for people.
    public struct ErrorReply: Codable, Equatable, Sendable {
        public var v: Int
        public var type = ServerType.error.rawValue
        public var code: String
        public var message: String

        public init(v: Int = Signaling.version, code: String, message: String) {
            self.v = v
            self.code = code
            self.message = message
        }
    }

    /// `event`: something happened in the call (sent to everyone in it, always as version 2).
    public struct Event: Codable, Equatable, Sendable {
        public enum Name: String, CaseIterable, Sendable {
            case callStarted = "call_started", joined, left, muted, unmuted
            case screenOn = "screen_on", screenOff = "screen_off"
            case handRaised = "hand_raised", handLowered = "hand_lowered", reaction
            case callEnded = "call_ended"
        }

        public var v = Signaling.version
        public var type = ServerType.event.rawValue
        public var event: String
        public var participant: String?
        public var user: String?
        /// `joined` only.
        public var muted: Bool?
        /// `reaction` only.
        public var emoji: String?
        /// The server's time, RFC 3339 UTC with milliseconds.
        public var at: String

        public init(
            _ event: Name, participant: String?, user: String?, muted: Bool? = nil, emoji: String? = nil, at: Date = Date()
        ) {
            self.event = event.rawValue
            self.participant = participant
            self.user = user
            self.muted = muted
            self.emoji = emoji
            self.at = Self.timestamp(at)
        }

        static func timestamp(_ date: Date) -> String {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return f.string(from: date)
        }
    }
}
