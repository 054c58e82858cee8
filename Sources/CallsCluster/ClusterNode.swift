import CallsConfig
import CallsServer
import CallsStore
import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// What a node needs to join a cluster.
public struct ClusterNodeSettings: Sendable {
    public var url: PostgresURL
    public var password: String?
    public var nodeID: String
    /// The URL clients reach this node's API at (the target of redirects).
    public var publicURL: String
    public var version: String
    /// A node silent for this long counts as gone; its calls may start elsewhere.
    public var heartbeatTimeout: Duration
    /// Bounds every database round trip.
    public var queryTimeout: Duration = .seconds(5)
    /// The secrets every node must share, compared by keyed fingerprint only.
    public var tokenSecret: [UInt8]
    public var turnSecret: [UInt8]?

    public init(
        url: PostgresURL, password: String?, nodeID: String, publicURL: String, version: String, heartbeatTimeout: Duration,
        tokenSecret: [UInt8], turnSecret: [UInt8]?
    ) {
        self.url = url
        self.password = password
        self.nodeID = nodeID
        self.publicURL = publicURL
        self.version = version
        self.heartbeatTimeout = heartbeatTimeout
        self.tokenSecret = tokenSecret
        self.turnSecret = turnSecret
    }

    /// How often a node reports: five times per timeout, at most once per 2 s, at least every 0.2 s.
    var heartbeatInterval: Duration {
        let fifth = heartbeatTimeout / 5
        return min(max(fifth, .milliseconds(200)), .seconds(2))
    }

    var timeoutSeconds: Double { heartbeatTimeout.secondsValue }
}

/// Why a node cannot join its cluster.
public struct ClusterStartError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The database cannot be reached (exit 3).
        case unreachable
        /// The node's settings conflict with the cluster (secrets, node id) (exit 2).
        case conflict
    }

    public let kind: Kind
    public let description: String
}

/// One node in the registry, as last read.
public struct ClusterNodeInfo: Sendable, Equatable {
    public var id: String
    public var publicURL: String
    public var version: String
    public var participants: Int
    public var calls: Int
    public var draining: Bool
    /// Seconds since its last heartbeat (database clock).
    public var age: Double
}

extension ClusterNodeInfo {
    /// The registry, every node with the age of its last heartbeat by the database's clock.
    static func readAll(_ c: PostgresConnection, logger: Logger) async throws -> [ClusterNodeInfo] {
        var nodes: [ClusterNodeInfo] = []
        for try await (id, url, version, participants, calls, draining, age) in try await c.query(
            """
            SELECT node_id, public_url, version, participants, calls, draining, extract(epoch from now() - heartbeat_at)::float8
            FROM callsctl_nodes ORDER BY node_id
            """, logger: logger
        ).decode((String, String, String, Int64, Int64, Bool, Double).self) {
            nodes.append(
                ClusterNodeInfo(
                    id: id, publicURL: url, version: version, participants: Int(participants), calls: Int(calls), draining: draining,
                    age: age))
        }
        return nodes
    }
}

/// The state of this node's link to the cluster, for /readyz, logs and the doctor.
public struct ClusterHealth: Sendable, Equatable {
    public var databaseReachable: Bool
    public var lastError: String?
    public var lastHeartbeat: Date?
    public var nodes: [ClusterNodeInfo]
}

/// A `serve` node of a cluster: registers itself, heartbeats, keeps the cluster's channel settings in a cache that
/// LISTEN/NOTIFY keeps current, and places calls (one node per channel, claimed atomically in PostgreSQL).
public final class ClusterNode: CallPlacement, Sendable {
    public let settings: ClusterNodeSettings
    public var nodeID: String { settings.nodeID }
    public let store: ClusterSettingsStore
    private let link: PostgresLink
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var nodes: [ClusterNodeInfo] = []
        var remoteCalls: [ClusterCall] = []
        var healthy = true
        var lastError: String?
        var lastHeartbeat: Date?
        /// The settings cache; nil while the listener is not connected (then the database is asked).
        var cache: (testMode: Bool, settings: [String: ChannelSetting])?
        var heartbeat: Task<Void, Never>?
        var listener: Task<Void, Never>?
        var listenConnection: PostgresConnection?
        var localCalls: @Sendable () -> [String: Int] = { [:] }
        var draining: @Sendable () -> Bool = { false }
        var stopped = false
    }

    private init(settings: ClusterNodeSettings, link: PostgresLink, logger: Logger) {
        self.settings = settings
        self.link = link
        self.logger = logger
        store = ClusterSettingsStore(link: link, logger: logger)
    }

    /// Connects, migrates the schema and checks that this node may join: its secrets match the cluster's and its
    /// id is not held by another live node. Nothing is registered yet (see ``start(localCalls:draining:)``).
    public static func connect(settings: ClusterNodeSettings, logger: Logger) async throws(ClusterStartError) -> ClusterNode {
        let link = PostgresLink(url: settings.url, password: settings.password, timeout: settings.queryTimeout, logger: logger)
        let node = ClusterNode(settings: settings, link: link, logger: logger)
        do {
            try await node.store.migrate()
        } catch {
            throw ClusterStartError(
                kind: .unreachable,
                description: "cannot use the cluster database \(settings.url.redacted): \(error.detail)")
        }
        try await node.checkSecrets()
        try await node.checkNodeID()
        return node
    }

    // MARK: Start and stop

    /// Registers the node, then heartbeats and listens for settings changes until ``stop()``.
    public func start(localCalls: @escaping @Sendable () -> [String: Int], draining: @escaping @Sendable () -> Bool) async
        throws(ClusterStartError)
    {
        state.withLockedValue {
            $0.localCalls = localCalls
            $0.draining = draining
        }
        let id = nodeID
        do {
            // Claims left by an earlier life of this node (killed) are not calls any more.
            try await link.run { [logger] c in
                try await c.query("DELETE FROM callsctl_calls WHERE node_id = \(id)", logger: logger)
            }
            try await heartbeatOnce()
        } catch {
            throw ClusterStartError(
                kind: .unreachable, description: "cannot register in the cluster database \(settings.url.redacted): \(error)")
        }
        logger.info(
            "joined the cluster",
            metadata: [
                "node": "\(nodeID)", "public.url": "\(settings.publicURL)", "database": "\(settings.url.redacted)",
                "nodes.live": "\(liveNodes().count)",
            ])
        let heartbeat = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                try? await Task.sleep(for: self.settings.heartbeatInterval)
                if Task.isCancelled { return }
                await self.beat()
            }
        }
        let listener = Task { [weak self] in
            guard let self else { return }
            await self.listen()
        }
        state.withLockedValue {
            $0.heartbeat = heartbeat
            $0.listener = listener
        }
    }

    /// Leaves the cluster: the node and its claims are removed, so its channels start elsewhere at once.
    public func stop() async {
        let (heartbeat, listener, connection) = state.withLockedValue {
            $0.stopped = true
            return ($0.heartbeat, $0.listener, $0.listenConnection)
        }
        heartbeat?.cancel()
        listener?.cancel()
        try? await connection?.close()
        let id = nodeID
        do {
            try await link.run { [logger] c in
                try await c.query("DELETE FROM callsctl_calls WHERE node_id = \(id)", logger: logger)
                try await c.query("DELETE FROM callsctl_nodes WHERE node_id = \(id)", logger: logger)
            }
            logger.info("left the cluster", metadata: ["node": "\(nodeID)"])
        } catch {
            logger.warning(
                "could not remove this node from the cluster database; the others drop it after the heartbeat timeout",
                metadata: ["error": "\(error)"])
        }
        await link.close()
    }

    // MARK: Placement

    public func place(channel: String, draining: Bool) async -> PlacementDecision {
        let id = nodeID
        do {
            if draining {
                guard let target = leastLoadedNode() else {
                    return .refused(
                        code: .serverDraining,
                        message: "this node is draining (shutting down) and no other live node takes new calls; retry in a moment")
                }
                // A claim of ours left from before the drain is dropped first; then the call goes to the target.
                try await link.run { [logger] c in
                    try await c.query("DELETE FROM callsctl_calls WHERE channel_id = \(channel) AND node_id = \(id)", logger: logger)
                }
                let owner = try await claim(channel: channel, for: target.id)
                return .redirect(node: owner.node, url: owner.url)
            }
            let owner = try await claim(channel: channel, for: id)
            return owner.node == id ? .local : .redirect(node: owner.node, url: owner.url)
        } catch {
            markUnhealthy(error)
            return .refused(
                code: .clusterUnavailable,
                message:
                    "the cluster database \(settings.url.redacted) cannot be reached (\(error.detail)), so no new call can start now; calls already running go on; retry in a moment")
        }
    }

    /// Claims `channel` for `node` unless a live node holds it already; returns the owner and its URL.
    /// One round trip: an INSERT ... ON CONFLICT that takes over only a claim whose node is gone.
    func claim(channel: String, for node: String) async throws(ClusterDatabaseError) -> (node: String, url: String) {
        let timeout = settings.timeoutSeconds
        for _ in 0..<3 {
            let row: (String, String)? = try await link.run { [logger] c in
                let rows = try await c.query(
                    """
                    WITH claim AS (
                        INSERT INTO callsctl_calls AS c (channel_id, node_id, claimed_at, participants)
                        VALUES (\(channel), \(node), now(), 0)
                        ON CONFLICT (channel_id) DO UPDATE SET node_id = EXCLUDED.node_id, claimed_at = now(), participants = 0
                        WHERE c.node_id = EXCLUDED.node_id OR NOT EXISTS (
                            SELECT 1 FROM callsctl_nodes n
                            WHERE n.node_id = c.node_id AND n.heartbeat_at > now() - make_interval(secs => \(timeout)))
                        RETURNING node_id
                    ), owner AS (
                        SELECT node_id FROM claim
                        UNION ALL
                        SELECT node_id FROM callsctl_calls WHERE channel_id = \(channel) AND NOT EXISTS (SELECT 1 FROM claim)
                    )
                    SELECT o.node_id, coalesce(n.public_url, '') FROM owner o LEFT JOIN callsctl_nodes n ON n.node_id = o.node_id
                    """, logger: logger
                ).all()
                return try rows.first?.decode((String, String).self)
            }
            // Empty only when another node's claim committed during this statement: ask again.
            if let row { return (row.0, row.1) }
        }
        throw ClusterDatabaseError(.failed, "the claim of channel \(channel) found no owner three times")
    }

    public func released(channel: String) {
        let id = nodeID
        Task { [weak self, link, logger] in
            do {
                try await link.run { c in
                    try await c.query("DELETE FROM callsctl_calls WHERE channel_id = \(channel) AND node_id = \(id)", logger: logger)
                }
            } catch {
                logger.debug("could not release a call claim; the next heartbeat does", metadata: ["error": "\(error)"])
            }
            // A join that started the call again meanwhile keeps its claim: taken again now, not at the next beat.
            if let self, (self.state.withLockedValue { $0.localCalls })()[channel] != nil {
                _ = try? await self.claim(channel: channel, for: id)
            }
        }
    }

    public func remoteCalls() -> [ClusterCall] { state.withLockedValue { $0.remoteCalls } }

    /// The live nodes as last read (this one included).
    public func liveNodes() -> [ClusterNodeInfo] {
        let timeout = settings.timeoutSeconds
        return state.withLockedValue { $0.nodes.filter { $0.age < timeout } }
    }

    /// The cached setting of `channel` (nil: no cache now, the database is asked), for tests of LISTEN/NOTIFY.
    func cachedSetting(_ channel: ChannelID) -> (testMode: Bool, setting: ChannelSetting)? {
        state.withLockedValue { s in s.cache.map { ($0.testMode, $0.settings[channel.rawValue] ?? .unset) } }
    }

    public var health: ClusterHealth {
        state.withLockedValue {
            ClusterHealth(databaseReachable: $0.healthy, lastError: $0.lastError, lastHeartbeat: $0.lastHeartbeat, nodes: $0.nodes)
        }
    }

    func leastLoadedNode() -> ClusterNodeInfo? {
        liveNodes().filter { $0.id != nodeID && !$0.draining }.min { ($0.participants, $0.calls, $0.id) < ($1.participants, $1.calls, $1.id) }
    }

    // MARK: Channel policy

    /// The channel policy for a call starting here: from the cache LISTEN/NOTIFY keeps current, else from the
    /// database. Returns a refusal reason, or nil to admit.
    public func admission(channel: ChannelID, isAdmin: Bool) async -> String? {
        if let cache = state.withLockedValue({ $0.cache }) {
            let setting = cache.settings[channel.rawValue] ?? .unset
            if case .refused(let reason) = CallPolicy.decide(setting: setting, testMode: cache.testMode, isAdmin: isAdmin, channel: channel) {
                return reason
            }
            return nil
        }
        do {
            if case .refused(let reason) = try await store.mayStartCall(in: channel, isAdmin: isAdmin) { return reason }
            return nil
        } catch {
            return "cannot read the channel settings from the cluster database \(settings.url.redacted) (\(error.detail)); retry in a moment"
        }
    }

    // MARK: Heartbeat

    private func beat() async {
        do {
            try await heartbeatOnce()
            let recovered = state.withLockedValue { s -> Bool in
                defer {
                    s.healthy = true
                    s.lastError = nil
                }
                return !s.healthy
            }
            if recovered { logger.notice("the cluster database is reachable again", metadata: ["database": "\(settings.url.redacted)"]) }
        } catch {
            markUnhealthy(error)
        }
    }

    private func markUnhealthy(_ error: ClusterDatabaseError) {
        let first = state.withLockedValue { s -> Bool in
            defer {
                s.healthy = false
                s.lastError = error.detail
            }
            return s.healthy
        }
        if first {
            logger.error(
                "the cluster database cannot be reached: running calls go on, new calls are refused until it is back",
                metadata: ["database": "\(settings.url.redacted)", "error": "\(error.detail)"])
        }
    }

    /// One heartbeat: this node's row, its calls' claims (kept, taken back, or dropped), and the cluster's view.
    func heartbeatOnce() async throws(ClusterDatabaseError) {
        let (localCalls, draining) = state.withLockedValue { ($0.localCalls, $0.draining) }
        let calls = localCalls()
        let channels = calls.keys.sorted()
        let counts = channels.map { Int64(calls[$0] ?? 0) }
        let participants = Int64(counts.reduce(0, +))
        let s = settings
        let timeout = s.timeoutSeconds
        let isDraining = draining()
        let started = startedAt
        let (nodes, remote, lost): ([ClusterNodeInfo], [ClusterCall], [String]) = try await link.run { [logger] c in
            try await c.query(
                """
                INSERT INTO callsctl_nodes (node_id, public_url, version, participants, calls, draining, started_at, heartbeat_at)
                VALUES (\(s.nodeID), \(s.publicURL), \(s.version), \(participants), \(Int64(channels.count)), \(isDraining), \(started), now())
                ON CONFLICT (node_id) DO UPDATE SET public_url = EXCLUDED.public_url, version = EXCLUDED.version,
                    participants = EXCLUDED.participants, calls = EXCLUDED.calls, draining = EXCLUDED.draining,
                    started_at = EXCLUDED.started_at, heartbeat_at = now()
                """, logger: logger)
            var kept = Set<String>()
            if !channels.isEmpty {
                for try await channel in try await c.query(
                    """
                    INSERT INTO callsctl_calls AS c (channel_id, node_id, claimed_at, participants)
                    SELECT ch, \(s.nodeID), now(), p FROM unnest(\(channels)::text[], \(counts)::bigint[]) AS t(ch, p)
                    ON CONFLICT (channel_id) DO UPDATE SET participants = EXCLUDED.participants, node_id = EXCLUDED.node_id,
                        claimed_at = CASE WHEN c.node_id = EXCLUDED.node_id THEN c.claimed_at ELSE now() END
                    WHERE c.node_id = EXCLUDED.node_id OR NOT EXISTS (
                        SELECT 1 FROM callsctl_nodes n
                        WHERE n.node_id = c.node_id AND n.heartbeat_at > now() - make_interval(secs => \(timeout)))
                    RETURNING channel_id
                    """, logger: logger
                ).decode(String.self) {
                    kept.insert(channel)
                }
            }
            // Claims made for joins that never became calls here are dropped after a grace period.
            try await c.query(
                """
                DELETE FROM callsctl_calls WHERE node_id = \(s.nodeID) AND NOT (channel_id = ANY(\(channels)::text[]))
                    AND claimed_at < now() - interval '10 seconds'
                """, logger: logger)
            let nodes = try await ClusterNodeInfo.readAll(c, logger: logger)
            var remote: [ClusterCall] = []
            for try await (channel, node, url, participants, since) in try await c.query(
                """
                SELECT c.channel_id, c.node_id, n.public_url, c.participants, c.claimed_at
                FROM callsctl_calls c JOIN callsctl_nodes n ON n.node_id = c.node_id
                WHERE c.node_id <> \(s.nodeID) AND n.heartbeat_at > now() - make_interval(secs => \(timeout))
                ORDER BY c.channel_id
                """, logger: logger
            ).decode((String, String, String, Int64, Date).self) {
                remote.append(ClusterCall(channel: channel, node: node, nodeURL: url, participants: Int(participants), since: since))
            }
            return (nodes, remote, channels.filter { !kept.contains($0) })
        }
        for channel in lost {
            let owner = remote.first { $0.channel == channel }
            logger.warning(
                "a call of this channel runs on another node too; new joins go to that node",
                metadata: ["call.channel": "\(channel)", "other.node": "\(owner?.node ?? "?")"])
        }
        state.withLockedValue {
            $0.nodes = nodes
            $0.remoteCalls = remote
            $0.lastHeartbeat = Date()
        }
    }

    private let startedAt = Date()

    // MARK: Settings listener

    /// LISTEN on the settings channel; the cache is loaded after LISTEN is active (so no change falls between) and
    /// dropped whenever the connection is lost, until it is back.
    private func listen() async {
        while !Task.isCancelled, !(state.withLockedValue { $0.stopped }) {
            do {
                let connection = try await link.connect()
                state.withLockedValue { $0.listenConnection = connection }
                do {
                    try await connection.listen(on: ClusterSchema.settingsChannel) { notifications in
                        let snapshot = try await store.snapshot()
                        state.withLockedValue { $0.cache = snapshot }
                        logger.debug("channel settings cached", metadata: ["channels": "\(snapshot.settings.count)"])
                        for try await notification in notifications {
                            await self.apply(notification.payload)
                        }
                    }
                } catch {
                    logger.debug("settings listener lost", metadata: ["error": "\(ClusterDatabaseError.from(error))"])
                }
                try? await connection.close()
            } catch {
                logger.debug("settings listener cannot connect", metadata: ["error": "\(error)"])
            }
            state.withLockedValue {
                $0.cache = nil
                $0.listenConnection = nil
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// A change announced by NOTIFY: the one channel (or the test mode) is read again.
    private func apply(_ payload: String) async {
        do {
            if payload == "testmode" {
                let on = try await store.testMode()
                state.withLockedValue { $0.cache?.testMode = on }
            } else if let channel = try? ChannelID(validating: payload) {
                let status = try await store.status(of: channel)
                state.withLockedValue { $0.cache?.settings[channel.rawValue] = status.setting }
            }
            logger.debug("channel settings changed", metadata: ["change": "\(payload)"])
        } catch {
            // Unknown state: the database is asked directly until the listener reconnects.
            state.withLockedValue { $0.cache = nil }
            try? await state.withLockedValue { $0.listenConnection }?.close()
        }
    }

    // MARK: Start-up checks

    /// The token and TURN secrets must be the cluster's: compared by HMAC fingerprints under a random salt kept in
    /// the database (never the secrets). The first node of a cluster with no live node sets them.
    private func checkSecrets() async throws(ClusterStartError) {
        let s = settings
        let timeout = s.timeoutSeconds
        let outcome: Result<String?, ClusterStartError>
        do {
            outcome = try await link.run(timeout: .seconds(60)) { [logger] c in
                try await c.query("BEGIN", logger: logger)
                do {
                    try await c.query("SELECT pg_advisory_xact_lock(\(ClusterSchema.secretsLock))", logger: logger)
                    var stored: [String: String] = [:]
                    for try await (key, value) in try await c.query(
                        "SELECT key, value FROM callsctl_cluster WHERE key LIKE 'secrets.%'", logger: logger
                    ).decode((String, String).self) {
                        stored[key] = value
                    }
                    var liveOthers = 0
                    for try await n in try await c.query(
                        """
                        SELECT count(*) FROM callsctl_nodes
                        WHERE node_id <> \(s.nodeID) AND heartbeat_at > now() - make_interval(secs => \(timeout))
                        """, logger: logger
                    ).decode(Int64.self) {
                        liveOthers = Int(n)
                    }
                    let salt = stored["secrets.salt"] ?? Self.hex((0..<16).map { _ in UInt8.random(in: 0...255) })
                    let token = Self.fingerprint(s.tokenSecret, kind: "token", salt: salt)
                    let turn = s.turnSecret.map { Self.fingerprint($0, kind: "turn", salt: salt) } ?? "none"
                    var problem: Result<String?, ClusterStartError> = .success(nil)
                    if let storedToken = stored["secrets.token"], liveOthers > 0 {
                        var differ: [String] = []
                        if storedToken != token { differ.append("the token secret (api.security.token_secret_file)") }
                        if (stored["secrets.turn"] ?? "none") != turn { differ.append("the TURN secret (rtc.turn.static_auth_secret_file)") }
                        if !differ.isEmpty {
                            problem = .failure(
                                ClusterStartError(
                                    kind: .conflict,
                                    description:
                                        "\(differ.joined(separator: " and ")) of this node differ\(differ.count == 1 ? "s" : "") from the cluster's (set by node \(stored["secrets.set_by"] ?? "?"); \(liveOthers) live node\(liveOthers == 1 ? "" : "s")); every node must use the same secrets, or tokens and TURN credentials made by one node fail on another. Copy the secret files from a running node; the fingerprints compared are keyed HMACs, never the secrets"
                                ))
                        }
                    } else {
                        for (key, value) in [
                            ("secrets.salt", salt), ("secrets.token", token), ("secrets.turn", turn), ("secrets.set_by", s.nodeID),
                        ] {
                            try await c.query(
                                """
                                INSERT INTO callsctl_cluster (key, value) VALUES (\(key), \(value))
                                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                                """, logger: logger)
                        }
                        problem = .success(stored["secrets.token"] == nil ? "set" : (stored["secrets.token"] == token ? nil : "replaced"))
                    }
                    try await c.query("COMMIT", logger: logger)
                    return problem
                } catch {
                    if !c.isClosed { _ = try? await c.query("ROLLBACK", logger: logger) }
                    throw error
                }
            }
        } catch {
            throw ClusterStartError(kind: .unreachable, description: "cannot use the cluster database \(s.url.redacted): \(error.detail)")
        }
        switch outcome {
        case .failure(let e): throw e
        case .success("set"): logger.info("this node set the cluster's secret fingerprints (first node)")
        case .success("replaced"):
            logger.warning("no other node is live: this node's secrets are now the cluster's (the earlier fingerprints were replaced)")
        case .success: break
        }
    }

    /// Another live node with this id but another URL is a configuration mistake; the same URL is this node
    /// restarting (its old heartbeat may not have expired yet).
    private func checkNodeID() async throws(ClusterStartError) {
        let s = settings
        let timeout = s.timeoutSeconds
        let holder: (String, Double)?
        do {
            holder = try await link.run { [logger] c in
                try await c.query(
                    "SELECT public_url, extract(epoch from now() - heartbeat_at)::float8 FROM callsctl_nodes WHERE node_id = \(s.nodeID)",
                    logger: logger
                ).all().first?.decode((String, Double).self)
            }
        } catch {
            throw ClusterStartError(kind: .unreachable, description: "cannot use the cluster database \(s.url.redacted): \(error.detail)")
        }
        if let (url, age) = holder, age < timeout, url != s.publicURL {
            throw ClusterStartError(
                kind: .conflict,
                description:
                    "the node id \(s.nodeID) is in use by a live node at \(url) (last heartbeat \(String(format: "%.1f", age)) s ago); give every node its own cluster.node_id (--cluster-node-id)"
            )
        }
    }

    static func fingerprint(_ secret: [UInt8], kind: String, salt: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("callsctl cluster \(kind) secret v1".utf8) + [0] + secret, using: SymmetricKey(data: Array(salt.utf8)))
        return hex(Array(mac).prefix(16))
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

extension Duration {
    var secondsValue: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

/// What the cluster database says about the cluster, read only (the doctor's view; nothing is written or migrated).
public struct ClusterView: Sendable {
    /// The schema version of the callsctl tables; nil when no node has created them yet.
    public var schemaVersion: Int?
    public var nodes: [ClusterNodeInfo]
    public var calls: Int

    /// Connects and reads the registry.
    public static func read(url: PostgresURL, password: String?, timeout: Duration, logger: Logger) async throws(ClusterDatabaseError)
        -> ClusterView
    {
        let link = PostgresLink(url: url, password: password, timeout: timeout, logger: logger)
        do {
            let view = try await link.run { c in
                let exists = try await c.query("SELECT to_regclass('callsctl_nodes') IS NOT NULL", logger: logger).all().first?.decode(Bool.self)
                guard exists == true else { return ClusterView(schemaVersion: nil, nodes: [], calls: 0) }
                let version = try await c.query("SELECT max(version) FROM callsctl_schema", logger: logger).all().first?.decode(Int?.self)
                let nodes = try await ClusterNodeInfo.readAll(c, logger: logger)
                let calls = try await c.query("SELECT count(*) FROM callsctl_calls", logger: logger).all().first?.decode(Int64.self) ?? 0
                return ClusterView(schemaVersion: version, nodes: nodes, calls: Int(calls))
            }
            await link.close()
            return view
        } catch {
            await link.close()
            throw error
        }
    }
}
