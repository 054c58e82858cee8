import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// Per-channel call settings, test mode and their audit log, in one SQLite file.
///
/// The CLI writes while `serve` reads, from separate processes, so production opens a WAL
/// `DatabasePool`; every write is one IMMEDIATE transaction so concurrent writers queue on SQLite's
/// lock (with a busy timeout) instead of failing on a stale snapshot.
public final class SettingsStore: Sendable {
    /// The default file name inside the data directory.
    public static let fileName = "calls.db"

    private let writer: any DatabaseWriter
    /// The file path, or a label for in-memory stores; used in error messages.
    public let path: String

    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    ///
    /// Opening and migrating happen under an exclusive `flock` on `<path>.lock`, so processes
    /// starting together never race to create the schema.
    /// - Throws: ``StoreError`` naming the file and a fix; the file is never replaced or truncated.
    public init(path: String, busyTimeout: TimeInterval = 30) throws(StoreError) {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError(kind: .inaccessible, path: path, detail: "it is a directory, not a file")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError(kind: .inaccessible, path: path, detail: "cannot create folder \(folder): \(error)")
        }
        try Self.checkHeader(path: path)

        let lock = try FileLock(path: path + ".lock", storePath: path)
        defer { lock.unlock() }

        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.label = "CallsStore"
        do {
            let pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
            writer = pool
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    /// A store over any GRDB writer (tests use an in-memory `DatabaseQueue`).
    public init(writer: any DatabaseWriter, label: String = ":memory:") throws {
        self.writer = writer
        self.path = label
        try Self.migrator.migrate(writer)
    }

    // MARK: Reading

    /// Whether test mode is on.
    public func testMode() throws(StoreError) -> Bool {
        try read { db in try Self.readTestMode(db) }
    }

    /// The setting and resulting policy of one channel (a channel never configured is `unset`).
    public func status(of channel: ChannelID) throws(StoreError) -> ChannelStatus {
        try read { db in
            let testMode = try Self.readTestMode(db)
            let row = try Row.fetchOne(
                db, sql: "SELECT setting, updatedAt, updatedBy FROM channelSetting WHERE channelId = ?",
                arguments: [channel.rawValue])
            return Self.status(channel: channel, row: row, testMode: testMode)
        }
    }

    /// Every channel the store has a record of, sorted by id, optionally only those with `setting`.
    public func list(setting filter: ChannelSetting? = nil) throws(StoreError) -> [ChannelStatus] {
        try read { db in
            let testMode = try Self.readTestMode(db)
            var sql = "SELECT channelId, setting, updatedAt, updatedBy FROM channelSetting"
            var arguments: StatementArguments = []
            if let filter {
                sql += " WHERE setting = ?"
                arguments = [filter.rawValue]
            }
            sql += " ORDER BY channelId"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                Self.status(channel: ChannelID(trusted: row["channelId"]), row: row, testMode: testMode)
            }
        }
    }

    /// May a call start in `channel` now? Read fresh on every call, so CLI changes apply at once.
    public func mayStartCall(in channel: ChannelID, isAdmin: Bool) throws(StoreError) -> CallStartDecision {
        let status = try status(of: channel)
        let testMode = try testMode()
        return CallPolicy.decide(setting: status.setting, testMode: testMode, isAdmin: isAdmin, channel: channel)
    }

    /// The audit log, newest first; only entries for `channel` when given.
    public func history(channel: ChannelID? = nil, limit: Int = 1000) throws(StoreError) -> [AuditEntry] {
        try read { db in
            var sql = "SELECT * FROM auditEntry"
            var arguments: StatementArguments = []
            if let channel {
                sql += " WHERE channelId = ?"
                arguments = [channel.rawValue]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let channelID: String? = row["channelId"]
                return AuditEntry(
                    sequence: row["id"],
                    subject: AuditEntry.Subject(rawValue: row["subject"]) ?? .channel,
                    channel: channelID.map(ChannelID.init(trusted:)),
                    oldValue: row["oldValue"], newValue: row["newValue"],
                    changedAt: row["changedAt"], actor: row["actor"])
            }
        }
    }

    // MARK: Writing

    /// Sets every channel in `channels` to `setting` in one transaction, auditing each real change.
    /// - Returns: one ``SettingChange`` per channel, in the order given (duplicates collapsed).
    @discardableResult
    public func set(_ setting: ChannelSetting, for channels: [ChannelID], actor: String, at date: Date = Date())
        throws(StoreError) -> [SettingChange]
    {
        var seen = Set<ChannelID>()
        let unique = channels.filter { seen.insert($0).inserted }
        return try write { db in
            var changes: [SettingChange] = []
            for channel in unique {
                let old =
                    try String.fetchOne(
                        db, sql: "SELECT setting FROM channelSetting WHERE channelId = ?",
                        arguments: [channel.rawValue]
                    ).flatMap(ChannelSetting.init(rawValue:)) ?? .unset
                let change = SettingChange(channel: channel, oldSetting: old, newSetting: setting)
                changes.append(change)
                guard change.changed else { continue }
                try db.execute(
                    sql: """
                        INSERT INTO channelSetting (channelId, setting, updatedAt, updatedBy) VALUES (?, ?, ?, ?)
                        ON CONFLICT(channelId) DO UPDATE SET setting = excluded.setting,
                            updatedAt = excluded.updatedAt, updatedBy = excluded.updatedBy
                        """, arguments: [channel.rawValue, setting.rawValue, date, actor])
                try db.execute(
                    sql: """
                        INSERT INTO auditEntry (subject, channelId, oldValue, newValue, changedAt, actor)
                        VALUES ('channel', ?, ?, ?, ?, ?)
                        """, arguments: [channel.rawValue, old.rawValue, setting.rawValue, date, actor])
            }
            return changes
        }
    }

    /// Turns test mode on or off. Returns the previous value.
    @discardableResult
    public func setTestMode(_ on: Bool, actor: String, at date: Date = Date()) throws(StoreError) -> Bool {
        try write { db in
            let old = try Self.readTestMode(db)
            guard old != on else { return old }
            try db.execute(
                sql: """
                    INSERT INTO storeSetting (key, value, updatedAt, updatedBy) VALUES ('testMode', ?, ?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value, updatedAt = excluded.updatedAt,
                        updatedBy = excluded.updatedBy
                    """, arguments: [on ? "on" : "off", date, actor])
            try db.execute(
                sql: """
                    INSERT INTO auditEntry (subject, channelId, oldValue, newValue, changedAt, actor)
                    VALUES ('testMode', NULL, ?, ?, ?, ?)
                    """, arguments: [old ? "on" : "off", on ? "on" : "off", date, actor])
            return old
        }
    }

    /// Runs SQLite's integrity check; returns the problems found (empty when healthy).
    public func integrityProblems() throws(StoreError) -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
        }
    }

    // MARK: Internals

    private func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    private func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    private static func readTestMode(_ db: Database) throws -> Bool {
        try String.fetchOne(db, sql: "SELECT value FROM storeSetting WHERE key = 'testMode'") == "on"
    }

    private static func status(channel: ChannelID, row: Row?, testMode: Bool) -> ChannelStatus {
        let setting = row.flatMap { ChannelSetting(rawValue: $0["setting"]) } ?? .unset
        return ChannelStatus(
            id: channel, setting: setting,
            callsAllowed: CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: false, channel: channel)
                .isAllowed,
            adminCallsAllowed: CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: true, channel: channel)
                .isAllowed,
            updatedAt: row?["updatedAt"], updatedBy: row?["updatedBy"])
    }

    /// SQLite's first 16 bytes are fixed; checking them before SQLite opens the file turns "some
    /// other file" into a clear error without SQLite ever touching it.
    private static func checkHeader(path: String) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError(kind: .inaccessible, path: path, detail: "the file cannot be read")
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        if head.isEmpty { return }  // an empty file is a valid, empty SQLite database
        if head != Data("SQLite format 3\0".utf8) {
            throw StoreError(kind: .corrupt, path: path, detail: "the file does not start with the SQLite header")
        }
    }

    /// Any error of an open, read or write as a ``StoreError`` naming `path`.
    static func storeError(_ error: any Error, path: String) -> StoreError {
        switch error {
        case let error as StoreError: return error
        case let error as DatabaseError: return translate(error, path: path)
        default: return StoreError(kind: .other, path: path, detail: "\(error)")
        }
    }

    static func translate(_ error: DatabaseError, path: String) -> StoreError {
        let message = error.message ?? "\(error.resultCode)"
        // SQLite says "disk I/O error" when a write meets ENOSPC; the file system says whether it is full.
        if error.resultCode == .SQLITE_FULL || (error.resultCode == .SQLITE_IOERR && Self.fileSystemIsFull(path)) {
            return StoreError(kind: .diskFull, path: path, detail: "SQLite: \(message)")
        }
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return StoreError(kind: .corrupt, path: path, detail: message)
        case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
            return StoreError(kind: .inaccessible, path: path, detail: message)
        default:
            return StoreError(kind: .other, path: path, detail: message)
        }
    }

    /// Whether the file system holding `path` has no block left for this user.
    static func fileSystemIsFull(_ path: String) -> Bool {
        var info = statvfs()
        let folder = (path as NSString).deletingLastPathComponent
        guard statvfs(folder.isEmpty ? "." : folder, &info) == 0 else { return false }
        return info.f_bavail == 0
    }

    /// Opens an existing store for reading only: no lock file, no migration, nothing written. For read commands
    /// when the data directory or its file system is read-only (``init(path:busyTimeout:)`` needs to write the
    /// lock file, and may migrate).
    /// - Throws: ``StoreError``; `.inaccessible` when the file is missing or cannot be read, `.tooNew`/`.other` when
    ///   its schema is not the one this callsctl reads without migrating.
    public init(readingOnly path: String) throws(StoreError) {
        self.path = path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw StoreError(kind: .inaccessible, path: path, detail: "the file is missing or not readable")
        }
        try Self.checkHeader(path: path)
        var config = Configuration()
        config.readonly = true
        config.label = "CallsStore (read-only)"
        do {
            // `immutable`: the file is read as it is, with no lock and no WAL index (which a read-only directory or
            // file system could not hold); nobody can be writing it there.
            let uri = "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1"
            let queue = try DatabaseQueue(path: uri, configuration: config)
            let complete = try queue.read { db in try Self.migrator.hasCompletedMigrations(db) }
            guard complete else {
                let known = try queue.read { db in try Self.migrator.hasBeenSuperseded(db) }
                throw StoreError(
                    kind: known ? .tooNew : .other, path: path,
                    detail: known
                        ? "its schema is newer than this callsctl's"
                        : "its schema needs an upgrade, which a read-only open cannot do; run any callsctl channel command once with write access")
            }
            writer = queue
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    /// Frozen once shipped: add new migrations, never edit these.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-channel-settings") { db in
            try db.execute(
                sql: """
                    CREATE TABLE channelSetting (
                        channelId TEXT PRIMARY KEY NOT NULL,
                        setting TEXT NOT NULL CHECK (setting IN ('enabled', 'disabled', 'unset')),
                        updatedAt DATETIME NOT NULL,
                        updatedBy TEXT NOT NULL
                    );
                    CREATE TABLE storeSetting (
                        key TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL,
                        updatedAt DATETIME NOT NULL,
                        updatedBy TEXT NOT NULL
                    );
                    CREATE TABLE auditEntry (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        subject TEXT NOT NULL CHECK (subject IN ('channel', 'testMode')),
                        channelId TEXT,
                        oldValue TEXT NOT NULL,
                        newValue TEXT NOT NULL,
                        changedAt DATETIME NOT NULL,
                        actor TEXT NOT NULL
                    );
                    CREATE INDEX auditEntry_channel ON auditEntry (channelId, id);
                    """)
        }
        return migrator
    }
}

/// An exclusive advisory lock on a side file, held while the store is opened and migrated.
private struct FileLock {
    let fd: Int32

    init(path: String, storePath: String) throws(StoreError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 {
            throw StoreError(
                kind: .inaccessible, path: storePath,
                detail: "cannot create lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StoreError(kind: .inaccessible, path: storePath, detail: "cannot lock \(path): \(reason)")
        }
    }

    func unlock() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
