import Logging
import PostgresNIO

/// The cluster's tables in the shared PostgreSQL, all named `callsctl_*` so they sit beside Mattermost's own.
///
/// Migrations run in one transaction under an advisory lock, so nodes starting together never race; once shipped
/// a migration is frozen (add a new one).
enum ClusterSchema {
    /// `pg_advisory_xact_lock` keys: the schema, and the writers of channel settings.
    static let schemaLock: Int64 = 0x63616c6c_73000001
    static let settingsLock: Int64 = 0x63616c6c_73000002
    static let secretsLock: Int64 = 0x63616c6c_73000003
    /// The NOTIFY channel of settings changes; the payload is a channel id or `testmode`.
    static let settingsChannel = "callsctl_settings"

    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (
            1, "cluster-v1",
            [
                """
                CREATE TABLE callsctl_channel_settings (
                    channel_id varchar(26) PRIMARY KEY,
                    setting text NOT NULL CHECK (setting IN ('enabled', 'disabled', 'unset')),
                    updated_at timestamptz NOT NULL,
                    updated_by text NOT NULL)
                """,
                """
                CREATE TABLE callsctl_store_settings (
                    key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL, updated_by text NOT NULL)
                """,
                """
                CREATE TABLE callsctl_audit (
                    id bigserial PRIMARY KEY,
                    subject text NOT NULL,
                    channel_id varchar(26),
                    old_value text NOT NULL,
                    new_value text NOT NULL,
                    changed_at timestamptz NOT NULL,
                    actor text NOT NULL)
                """,
                "CREATE INDEX callsctl_audit_channel ON callsctl_audit (channel_id, id)",
                """
                CREATE TABLE callsctl_nodes (
                    node_id text PRIMARY KEY,
                    public_url text NOT NULL,
                    version text NOT NULL,
                    participants bigint NOT NULL DEFAULT 0,
                    calls bigint NOT NULL DEFAULT 0,
                    draining boolean NOT NULL DEFAULT false,
                    started_at timestamptz NOT NULL,
                    heartbeat_at timestamptz NOT NULL)
                """,
                """
                CREATE TABLE callsctl_calls (
                    channel_id varchar(26) PRIMARY KEY,
                    node_id text NOT NULL,
                    claimed_at timestamptz NOT NULL,
                    participants bigint NOT NULL DEFAULT 0)
                """,
                "CREATE INDEX callsctl_calls_node ON callsctl_calls (node_id)",
                """
                CREATE TABLE callsctl_cluster (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())
                """,
            ]
        )
    ]

    static var latest: Int { migrations.map(\.version).max() ?? 0 }

    /// Applies the migrations this database lacks; refuses a schema newer than this callsctl knows.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(schemaLock))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS callsctl_schema (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM callsctl_schema", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > latest {
                throw ClusterDatabaseError(
                    .tooNew,
                    "its callsctl tables are at schema version \(newest), and this callsctl knows up to \(latest); upgrade callsctl on this node")
            }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO callsctl_schema (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                logger.info("applied cluster schema migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
            throw error
        }
    }
}
