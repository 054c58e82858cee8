import CallsConfig
import CallsStore
import Foundation
import Logging
import PostgresNIO

/// Channel settings, test mode and audit history in the cluster's PostgreSQL: the same rules and the same
/// answers as the single-node SQLite ``SettingsStore`` (one conformance suite runs against both).
///
/// Every change is one transaction that takes the settings lock (writers queue, as SQLite's IMMEDIATE
/// transactions do) and sends `NOTIFY callsctl_settings` with the channel (or `testmode`), which every node's
/// listener turns into its cache at once.
public final class ClusterSettingsStore: ChannelSettingsStoring, Sendable {
    let link: PostgresLink
    private let logger: Logger
    public var location: String { link.url.redacted }

    init(link: PostgresLink, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// Connects, migrates the schema, and returns the store.
    /// - Throws: ``StoreError`` (`unreachable` when the database cannot be reached) naming the URL without its password.
    public static func open(url: PostgresURL, password: String?, timeout: Duration = .seconds(10), logger: Logger) async throws(StoreError)
        -> ClusterSettingsStore
    {
        let link = PostgresLink(url: url, password: password, timeout: timeout, logger: logger)
        let store = ClusterSettingsStore(link: link, logger: logger)
        try await store.migrate()
        return store
    }

    func migrate() async throws(StoreError) {
        let logger = self.logger
        // Migrating (once per database) may wait for another node's migration: a longer bound than a query's.
        try await call { try await $0.run(timeout: .seconds(60)) { c in try await ClusterSchema.migrate(c, logger: logger) } }
    }

    /// Closes the store's connections.
    public func close() async { await link.close() }

    // MARK: Reading

    public func testMode() async throws(StoreError) -> Bool {
        let logger = self.logger
        return try await call { link in
            try await link.run { c in try await Self.readTestMode(c, logger: logger) }
        }
    }

    public func status(of channel: ChannelID) async throws(StoreError) -> ChannelStatus {
        let logger = self.logger
        return try await call { link in
            try await link.run { c in
                let testMode = try await Self.readTestMode(c, logger: logger)
                let rows = try await c.query(
                    "SELECT setting, updated_at, updated_by FROM callsctl_channel_settings WHERE channel_id = \(channel.rawValue)",
                    logger: logger
                ).all()
                guard let row = rows.first else {
                    return ChannelStatus.make(channel: channel, setting: nil, updatedAt: nil, updatedBy: nil, testMode: testMode)
                }
                let (setting, at, by) = try row.decode((String, Date, String).self)
                return ChannelStatus.make(
                    channel: channel, setting: ChannelSetting(rawValue: setting), updatedAt: at, updatedBy: by, testMode: testMode)
            }
        }
    }

    public func list(setting filter: ChannelSetting?) async throws(StoreError) -> [ChannelStatus] {
        let logger = self.logger
        return try await call { link in
            try await link.run { c in
                let testMode = try await Self.readTestMode(c, logger: logger)
                let query: PostgresQuery =
                    if let filter {
                        "SELECT channel_id, setting, updated_at, updated_by FROM callsctl_channel_settings WHERE setting = \(filter.rawValue) ORDER BY channel_id"
                    } else {
                        "SELECT channel_id, setting, updated_at, updated_by FROM callsctl_channel_settings ORDER BY channel_id"
                    }
                var out: [ChannelStatus] = []
                for try await (id, setting, at, by) in try await c.query(query, logger: logger).decode((String, String, Date, String).self) {
                    // A row that is not a channel id (written by hand) is left out rather than trusted.
                    guard let channel = try? ChannelID(validating: id) else { continue }
                    out.append(
                        ChannelStatus.make(
                            channel: channel, setting: ChannelSetting(rawValue: setting), updatedAt: at, updatedBy: by,
                            testMode: testMode))
                }
                return out
            }
        }
    }

    public func mayStartCall(in channel: ChannelID, isAdmin: Bool) async throws(StoreError) -> CallStartDecision {
        let status = try await status(of: channel)
        let testMode = try await testMode()
        return CallPolicy.decide(setting: status.setting, testMode: testMode, isAdmin: isAdmin, channel: channel)
    }

    public func history(channel: ChannelID?, limit: Int) async throws(StoreError) -> [AuditEntry] {
        let logger = self.logger
        return try await call { link in
            try await link.run { c in
                let query: PostgresQuery =
                    if let channel {
                        "SELECT id, subject, channel_id, old_value, new_value, changed_at, actor FROM callsctl_audit WHERE channel_id = \(channel.rawValue) ORDER BY id DESC LIMIT \(limit)"
                    } else {
                        "SELECT id, subject, channel_id, old_value, new_value, changed_at, actor FROM callsctl_audit ORDER BY id DESC LIMIT \(limit)"
                    }
                var out: [AuditEntry] = []
                for try await (id, subject, channelID, old, new, at, actor) in try await c.query(query, logger: logger).decode(
                    (Int64, String, String?, String, String, Date, String).self)
                {
                    out.append(
                        AuditEntry(
                            sequence: id, subject: AuditEntry.Subject(rawValue: subject) ?? .channel,
                            channel: channelID.flatMap { try? ChannelID(validating: $0) }, oldValue: old, newValue: new, changedAt: at, actor: actor))
                }
                return out
            }
        }
    }

    // MARK: Writing

    @discardableResult
    public func set(_ setting: ChannelSetting, for channels: [ChannelID], actor: String, at date: Date) async throws(StoreError)
        -> [SettingChange]
    {
        var seen = Set<ChannelID>()
        let unique = channels.filter { seen.insert($0).inserted }
        let logger = self.logger
        return try await call { link in
            try await link.run { c in
                try await Self.transaction(c, logger: logger) {
                    var changes: [SettingChange] = []
                    for channel in unique {
                        let rows = try await c.query(
                            "SELECT setting FROM callsctl_channel_settings WHERE channel_id = \(channel.rawValue)", logger: logger
                        ).all()
                        let old = try rows.first.flatMap { ChannelSetting(rawValue: try $0.decode(String.self)) } ?? .unset
                        let change = SettingChange(channel: channel, oldSetting: old, newSetting: setting)
                        changes.append(change)
                        guard change.changed else { continue }
                        try await c.query(
                            """
                            INSERT INTO callsctl_channel_settings (channel_id, setting, updated_at, updated_by)
                            VALUES (\(channel.rawValue), \(setting.rawValue), \(date), \(actor))
                            ON CONFLICT (channel_id) DO UPDATE SET setting = EXCLUDED.setting, updated_at = EXCLUDED.updated_at,
                                updated_by = EXCLUDED.updated_by
                            """, logger: logger)
                        try await c.query(
                            """
                            INSERT INTO callsctl_audit (subject, channel_id, old_value, new_value, changed_at, actor)
                            VALUES ('channel', \(channel.rawValue), \(old.rawValue), \(setting.rawValue), \(date), \(actor))
                            """, logger: logger)
                        try await c.query("SELECT pg_notify(\(ClusterSchema.settingsChannel), \(channel.rawValue))", logger: logger)
                    }
                    return changes
                }
            }
        }
    }

    @discardableResult
    public func setTestMode(_ on: Bool, actor: String, at date: Date) async throws(StoreError) -> Bool {
        let logger = self.logger
        return try await call { link in
            try await link.run { c in
                try await Self.transaction(c, logger: logger) {
                    let old = try await Self.readTestMode(c, logger: logger)
                    guard old != on else { return old }
                    try await c.query(
                        """
                        INSERT INTO callsctl_store_settings (key, value, updated_at, updated_by) VALUES ('testMode', \(on ? "on" : "off"), \(date), \(actor))
                        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
                        """, logger: logger)
                    try await c.query(
                        """
                        INSERT INTO callsctl_audit (subject, channel_id, old_value, new_value, changed_at, actor)
                        VALUES ('testMode', NULL, \(old ? "on" : "off"), \(on ? "on" : "off"), \(date), \(actor))
                        """, logger: logger)
                    try await c.query("SELECT pg_notify(\(ClusterSchema.settingsChannel), 'testmode')", logger: logger)
                    return old
                }
            }
        }
    }

    // MARK: Cache support (the node's listener)

    /// Every explicit setting and the test mode, read in one go.
    func snapshot() async throws(ClusterDatabaseError) -> (testMode: Bool, settings: [String: ChannelSetting]) {
        let logger = self.logger
        return try await link.run { c in
            let testMode = try await Self.readTestMode(c, logger: logger)
            var settings: [String: ChannelSetting] = [:]
            for try await (id, setting) in try await c.query("SELECT channel_id, setting FROM callsctl_channel_settings", logger: logger)
                .decode((String, String).self)
            {
                settings[id] = ChannelSetting(rawValue: setting) ?? .unset
            }
            return (testMode, settings)
        }
    }

    // MARK: Internals

    static func readTestMode(_ c: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await c.query("SELECT value FROM callsctl_store_settings WHERE key = 'testMode'", logger: logger).all()
        return try rows.first?.decode(String.self) == "on"
    }

    /// BEGIN, the settings lock, `body`, COMMIT (ROLLBACK on error).
    static func transaction<T: Sendable>(_ c: PostgresConnection, logger: Logger, _ body: () async throws -> T) async throws -> T {
        try await c.query("BEGIN", logger: logger)
        do {
            try await c.query("SELECT pg_advisory_xact_lock(\(ClusterSchema.settingsLock))", logger: logger)
            let value = try await body()
            try await c.query("COMMIT", logger: logger)
            return value
        } catch {
            if !c.isClosed { _ = try? await c.query("ROLLBACK", logger: logger) }
            throw error
        }
    }

    private func call<T>(_ body: (PostgresLink) async throws -> T) async throws(StoreError) -> T {
        do {
            return try await body(link)
        } catch {
            let error = ClusterDatabaseError.from(error)
            let kind: StoreError.Kind =
                switch error.kind {
                case .unreachable: .unreachable
                case .tooNew: .tooNew
                case .failed: .other
                }
            throw StoreError(kind: kind, path: link.url.redacted, detail: error.detail)
        }
    }
}
