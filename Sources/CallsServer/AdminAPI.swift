import CallsStore
import Crypto
import Foundation
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// One signaling session as the admin API shows it.
struct SessionRecord: Sendable {
    let id: String
    let user: String
    let channel: String
    let role: String
    let peer: String
    let joinedAt: Date
    /// An echo test: not part of the channel's call (not counted, gets no call events).
    var echo = false
    var mediaSession: String?
    var transport: String?
    var connectedAt: Date?
    var muted = false
    var handRaised = false
    /// Tells the client why and closes its WebSocket (which closes the media session).
    let remove: @Sendable () -> Void
    /// Sends a signaling message to this participant.
    var notify: @Sendable (String) -> Void = { _ in }
}

/// Calls as the signaling side counts them.
struct ControlCallFigures: Sendable, Equatable {
    /// Joined participants per channel (echo tests excluded).
    var participants: [String: Int] = [:]
    var presenters = 0
    /// Participants receiving a screen share (everyone in a presenting call but the presenter).
    var presenterViewers = 0
}

/// The signaling sessions that have joined, for calls (membership, presenter, events), the admin API and draining.
final class SessionRegistry: @unchecked Sendable {
    // @unchecked: every stored property is accessed only with `lock` held (`onCallEnded` is set once in init).
    private let lock = NSLock()
    /// Told (outside the lock) when the last participant of a channel's call leaves or the call is ended.
    private let onCallEnded: (@Sendable (String) -> Void)?

    init(onCallEnded: (@Sendable (String) -> Void)? = nil) {
        self.onCallEnded = onCallEnded
    }
    private var records: [String: SessionRecord] = [:]
    /// The presenting session of each channel's call.
    private var presenters: [String: String] = [:]

    enum JoinOutcome: Equatable {
        case full
        /// `startedCall`: the first participant of the channel, so the call starts now.
        case joined(startedCall: Bool)
    }

    struct Departure {
        var record: SessionRecord
        /// The call of its channel ended with it (nobody is left).
        var endedCall: Bool
        /// It was presenting; the screen is off now.
        var wasPresenting: Bool
    }

    func joined(_ record: SessionRecord) { lock.withLock { records[record.id] = record } }

    /// Adds `record` unless its channel's call already has `limit` participants; atomic, so racing joins
    /// cannot exceed the limit. Echo tests are not counted.
    func join(_ record: SessionRecord, limit: Int?) -> JoinOutcome {
        lock.withLock {
            if record.echo {
                records[record.id] = record
                return .joined(startedCall: false)
            }
            let inCall = records.values.filter { !$0.echo && $0.channel == record.channel }.count
            if let limit, inCall >= limit { return .full }
            records[record.id] = record
            return .joined(startedCall: inCall == 0)
        }
    }

    /// Participants in the call of `channel` (echo tests excluded).
    func count(channel: String) -> Int {
        lock.withLock { records.values.filter { !$0.echo && $0.channel == channel }.count }
    }

    /// The call's participants in join order.
    func members(channel: String) -> [SessionRecord] {
        lock.withLock {
            records.values.filter { !$0.echo && $0.channel == channel }.sorted { ($0.joinedAt, $0.id) < ($1.joinedAt, $1.id) }
        }
    }

    func record(_ id: String) -> SessionRecord? { lock.withLock { records[id] } }

    func update(_ id: String, _ change: (inout SessionRecord) -> Void) {
        lock.withLock {
            guard var r = records[id] else { return }
            change(&r)
            records[id] = r
        }
    }

    /// Makes `id` the presenter of its call; returns the current presenter's record instead when another
    /// participant is presenting.
    func claimPresenter(_ id: String) -> SessionRecord? {
        lock.withLock {
            guard let r = records[id] else { return nil }
            if let current = presenters[r.channel], current != id, let other = records[current] { return other }
            presenters[r.channel] = id
            return nil
        }
    }

    /// Clears the presenter slot if `id` holds it; returns whether it did.
    func releasePresenter(_ id: String) -> Bool {
        lock.withLock {
            guard let r = records[id], presenters[r.channel] == id else { return false }
            presenters.removeValue(forKey: r.channel)
            return true
        }
    }

    func presenter(channel: String) -> String? { lock.withLock { presenters[channel] } }

    /// Sends `text` to every participant of `channel`'s call (except `excluding`).
    func broadcast(channel: String, _ text: String, excluding: String? = nil) {
        let targets = lock.withLock {
            records.values.filter { !$0.echo && $0.channel == channel && $0.id != excluding }.map(\.notify)
        }
        for notify in targets { notify(text) }
    }

    /// Removes `id`; nil when it was not registered (already removed).
    func leave(_ id: String) -> Departure? {
        let departure = removeRecord(id)
        if let departure, departure.endedCall, !departure.record.echo { onCallEnded?(departure.record.channel) }
        return departure
    }

    private func removeRecord(_ id: String) -> Departure? {
        lock.withLock {
            guard let r = records.removeValue(forKey: id) else { return nil }
            var wasPresenting = false
            if presenters[r.channel] == id {
                presenters.removeValue(forKey: r.channel)
                wasPresenting = true
            }
            let left = r.echo ? 1 : records.values.filter { !$0.echo && $0.channel == r.channel }.count
            return Departure(record: r, endedCall: left == 0, wasPresenting: wasPresenting)
        }
    }

    func remove(_ id: String) { _ = leave(id) }

    func take(_ id: String) -> SessionRecord? { leave(id)?.record }

    /// Removes and returns every session in `channel` (ending that call).
    func takeAll(channel: String) -> [SessionRecord] {
        let taken = lock.withLock {
            let ids = records.values.filter { !$0.echo && $0.channel == channel }.map(\.id)
            presenters.removeValue(forKey: channel)
            return ids.compactMap { records.removeValue(forKey: $0) }
        }
        if !taken.isEmpty { onCallEnded?(channel) }
        return taken
    }

    /// Participants per channel with a call, and presenters, for metrics.
    func callFigures() -> ControlCallFigures {
        lock.withLock {
            var participants: [String: Int] = [:]
            for r in records.values where !r.echo { participants[r.channel, default: 0] += 1 }
            let viewers = presenters.keys.reduce(0) { $0 + max((participants[$1] ?? 0) - 1, 0) }
            return ControlCallFigures(participants: participants, presenters: presenters.count, presenterViewers: viewers)
        }
    }

    var all: [SessionRecord] { lock.withLock { Array(records.values) } }
    var count: Int { lock.withLock { records.count } }
}

/// The bearer key of the admin API (`/api/v1/`): a file holding one line of text.
///
/// The default file is `admin-key` in the data directory, generated on first start (32 random bytes in
/// base64url, mode 0600) and never overwritten.
public struct AdminKey: Sendable {
    public static let defaultFileName = "admin-key"
    public static let minimumLength = 16

    /// The key as clients send it after `Bearer `.
    public let key: String
    public let path: String
    public let created: Bool
    public let warnings: [String]

    static let naming = PrivateFile.Naming(what: "admin key", flag: "--admin-key-file", exposure: "list and end calls")

    /// Reads `path`; when `create` is true and the file does not exist, generates it first.
    public static func load(path: String, create: Bool) throws(TokenSecretError) -> AdminKey {
        var created = false
        if create && !FileManager.default.fileExists(atPath: path) {
            created = try PrivateFile.create(path: path, text: base64URL(PrivateFile.randomBytes(32)) + "\n", naming: naming)
        }
        let (text, warnings) = try PrivateFile.read(path: path, naming: naming)
        guard text.count >= minimumLength, !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw TokenSecretError(
                "the admin key \(path) must hold one line of at least \(minimumLength) characters without spaces (generate one with `head -c 32 /dev/urandom | base64`)."
            )
        }
        return AdminKey(key: text, path: path, created: created, warnings: warnings)
    }

    /// The default file in `dataDir`, generated on first use.
    public static func loadDefault(dataDir: String) throws(TokenSecretError) -> AdminKey {
        try PrivateFile.ensureDirectory(dataDir)
        return try load(path: (dataDir as NSString).appendingPathComponent(defaultFileName), create: true)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// The `/api/v1/` endpoints.
struct AdminAPI: Sendable {
    let key: String?
    let registry: SessionRegistry
    /// In a cluster: this node's id and the calls on the other nodes.
    var placement: (any CallPlacement)? = nil
    /// Signs the tokens of `POST /api/v1/tokens` (nil: the endpoint answers 404).
    var signer: JoinTokenSigner? = nil
    let closeMedia: @Sendable (String) -> Void

    static let prefix = "/api/v1/"

    static func isAdminPath(_ path: String) -> Bool { path == "/api/v1" || path.hasPrefix(prefix) }

    /// True when `authorization` is `Bearer <key>`; the comparison takes the same time whatever the input.
    static func authorized(_ authorization: String?, key: String?) -> Bool {
        guard let key, let authorization else { return false }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let given = SHA256.hash(data: Array(parts[1].trimmingCharacters(in: .whitespaces).utf8))
        let wanted = SHA256.hash(data: Array(key.utf8))
        var diff: UInt8 = 0
        for (a, b) in zip(given, wanted) { diff |= a ^ b }
        return diff == 0
    }

    func respond(method: HTTPMethod, path: String, query: String = "", authorization: String?) -> HTTPResponseData {
        guard Self.authorized(authorization, key: key) else {
            var r = HTTPRouter.error(
                .unauthorized, "unauthorized",
                "the admin API needs the header \"Authorization: Bearer KEY\"; the key is in the file `callsctl serve` names at start (admin-key in the data directory, or --admin-key-file)")
            r.extraHeaders.append(("WWW-Authenticate", "Bearer realm=\"callsctl\""))
            return r
        }
        let segments = path.dropFirst(Self.prefix.count).split(separator: "/").map(String.init)
        switch (segments.first, segments.count) {
        case ("calls", 1):
            guard method == .GET || method == .HEAD else { return Self.notAllowed(path, "GET, HEAD") }
            return HTTPResponseData(status: .ok, contentType: HTTPRouter.json, body: listCalls() + "\n")
        case ("calls", 2):
            guard method == .DELETE else { return Self.notAllowed(path, "DELETE") }
            let channel = segments[1]
            let ended = registry.takeAll(channel: channel)
            if ended.isEmpty, let remote = placement?.remoteCalls().first(where: { $0.channel == channel }) {
                return HTTPRouter.error(
                    .conflict, "call_on_other_node",
                    "the call in channel \(channel) runs on node \(remote.node); send this request to that node's admin API (its public URL is \(remote.nodeURL))")
            }
            guard !ended.isEmpty else {
                return HTTPRouter.error(
                    .notFound, "call_not_found",
                    "no call in channel \(channel); list the current ones with GET /api/v1/calls")
            }
            let event = CallEvent.json(.callEnded, participant: nil, user: nil)
            for record in ended {
                record.notify(event)
                if let media = record.mediaSession { closeMedia(media) }
                record.remove()
            }
            return HTTPResponseData(
                status: .ok, contentType: HTTPRouter.json,
                body: "{\"ended\":\(jsonQuote(channel)),\"participants\":\(ended.count)}\n")
        case ("tokens", 1) where signer != nil:
            guard method == .POST else { return Self.notAllowed(path, "POST") }
            return mintToken(query: query)
        case ("sessions", 2):
            guard method == .DELETE else { return Self.notAllowed(path, "DELETE") }
            let id = segments[1]
            guard let departure = registry.leave(id) else {
                return HTTPRouter.error(
                    .notFound, "session_not_found",
                    "no session \(id); list the current ones with GET /api/v1/calls")
            }
            let record = departure.record
            CallEvent.announce(departure, registry: registry)
            if let media = record.mediaSession { closeMedia(media) }
            record.remove()
            return HTTPResponseData(
                status: .ok, contentType: HTTPRouter.json,
                body: "{\"removed\":\(jsonQuote(id)),\"channel\":\(jsonQuote(record.channel)),\"user\":\(jsonQuote(record.user))}\n")
        default:
            return HTTPRouter.error(
                .notFound, "not_found",
                "no such admin endpoint: \(path). Endpoints: GET /api/v1/calls, DELETE /api/v1/calls/{channel}, DELETE /api/v1/sessions/{id}, POST /api/v1/tokens?channel=ID&user=NAME[&role=user|admin][&ttl=SECONDS]")
        }
    }

    /// `POST /api/v1/tokens?channel=ID&user=NAME&role=user|admin&ttl=SECONDS`: a join token, as `callsctl token create`
    /// makes on the media host, for tools that hold the admin key but not the token secret (the doctor's join test).
    func mintToken(query: String) -> HTTPResponseData {
        guard let signer else { return HTTPRouter.error(.notFound, "not_found", "no token endpoint") }
        var params: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ") : ""
            params[String(kv[0])] = value.removingPercentEncoding ?? value
        }
        func bad(_ message: String) -> HTTPResponseData { HTTPRouter.error(.badRequest, "bad_request", message) }
        guard let channelText = params["channel"], let channel = try? ChannelID(validating: channelText) else {
            return bad("channel: give a 26-character channel id, e.g. ?channel=4xp9fdt3pbdp7nrw7xjmrd8kkc&user=alice")
        }
        guard let user = params["user"], !user.isEmpty, user.count <= 64 else {
            return bad("user: give a user name of 1 to 64 characters, e.g. &user=alice")
        }
        guard let role = JoinTokenClaims.Role(rawValue: params["role"] ?? "user") else {
            return bad("role: user or admin, not \"\(params["role"] ?? "")\"")
        }
        guard let ttl = Int64(params["ttl"] ?? "3600"), (1...604_800).contains(ttl) else {
            return bad("ttl: seconds from 1 to 604800 (7 days), not \"\(params["ttl"] ?? "")\"")
        }
        let claims = JoinTokenClaims(channel: channel, user: user, role: role, ttl: ttl)
        let body =
            "{\"token\":\(jsonQuote(signer.sign(claims))),\"channel\":\(jsonQuote(channel.rawValue)),\"user\":\(jsonQuote(user)),"
            + "\"role\":\(jsonQuote(role.rawValue)),\"expiresAt\":\(claims.expiresAt)}\n"
        return HTTPResponseData(status: .created, contentType: HTTPRouter.json, body: body)
    }

    private static func notAllowed(_ path: String, _ allow: String) -> HTTPResponseData {
        var r = HTTPRouter.error(.methodNotAllowed, "method_not_allowed", "\(path) answers \(allow) only")
        r.extraHeaders.append(("Allow", allow))
        return r
    }

    /// `{"calls":[{"channel":...,"participants":[...]}]}`, channels and participants in a stable order.
    func listCalls() -> String {
        let byChannel = Dictionary(grouping: registry.all, by: \.channel)
        let calls = byChannel.keys.sorted().map { channel -> String in
            let participants = byChannel[channel]!.sorted { ($0.joinedAt, $0.id) < ($1.joinedAt, $1.id) }.map { r in
                let state = r.connectedAt != nil ? "connected" : (r.mediaSession != nil ? "connecting" : "joined")
                return "{\"id\":\(jsonQuote(r.id)),\"user\":\(jsonQuote(r.user)),\"role\":\(jsonQuote(r.role)),"
                    + "\"label\":\(jsonQuote("\(r.user)@\(r.channel)/\(r.id)")),\"peer\":\(jsonQuote(r.peer)),"
                    + "\"state\":\(jsonQuote(state)),\"mediaSession\":\(r.mediaSession.map(jsonQuote) ?? "null"),"
                    + "\"transport\":\(r.transport.map(jsonQuote) ?? "null"),\"joinedAt\":\(jsonQuote(Self.iso(r.joinedAt))),"
                    + "\"connectedSince\":\(r.connectedAt.map { jsonQuote(Self.iso($0)) } ?? "null"),"
                    + "\"echo\":\(r.echo),\"muted\":\(r.muted),\"handRaised\":\(r.handRaised),"
                    + "\"presenting\":\(registry.presenter(channel: r.channel) == r.id)}"
            }
            let inCall = byChannel[channel]!.filter { !$0.echo }.count
            let node = placement.map { ",\"node\":\(jsonQuote($0.nodeID))" } ?? ""
            return "{\"channel\":\(jsonQuote(channel))\(node),\"participantCount\":\(inCall),\"participants\":["
                + participants.joined(separator: ",") + "]}"
        }
        // The other nodes' calls: their size and node, not their participants (those are on that node's API).
        let local = Set(byChannel.keys)
        let remote = (placement?.remoteCalls() ?? []).filter { !local.contains($0.channel) }.sorted { $0.channel < $1.channel }.map {
            "{\"channel\":\(jsonQuote($0.channel)),\"node\":\(jsonQuote($0.node)),\"nodeUrl\":\(jsonQuote($0.nodeURL)),"
                + "\"participantCount\":\($0.participants),\"since\":\(jsonQuote(Self.iso($0.since))),\"participants\":[]}"
        }
        let nodeField = placement.map { ",\"node\":\(jsonQuote($0.nodeID))" } ?? ""
        return "{\"calls\":[" + (calls + remote).joined(separator: ",") + "]\(nodeField)}"
    }

    static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
