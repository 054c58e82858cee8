@testable import CallsCluster
import CallsConfig
import CallsStore
import CallsTestSupport
import Foundation
import Logging
import Testing

/// The two stores behind `callsctl channel` and `serve`: SQLite on one node, the cluster's PostgreSQL on several.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A store of the given kind, empty, for one test (its folder or database is its own).
final class StoreUnderTest: @unchecked Sendable {
    // @unchecked: set once in `make`, then only read.
    let store: any ChannelSettingsStoring
    private let folder: TempDir?
    private let cluster: ClusterSettingsStore?

    private init(store: any ChannelSettingsStoring, folder: TempDir?, cluster: ClusterSettingsStore?) {
        self.store = store
        self.folder = folder
        self.cluster = cluster
    }

    static func make(_ backend: StoreBackend) async throws -> StoreUnderTest {
        switch backend {
        case .sqlite:
            let dir = TempDir()
            return StoreUnderTest(store: try SettingsStore(path: dir.dbPath), folder: dir, cluster: nil)
        case .postgres:
            let server = try PostgresServer.shared.get()
            let url = try PostgresURL(parsing: server.url(database: try server.createDatabase(prefix: "store")))
            let store = try await ClusterSettingsStore.open(
                url: url, password: nil, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            return StoreUnderTest(store: store, folder: nil, cluster: store)
        }
    }

    func close() async { await cluster?.close() }
}

/// One suite, both stores: the channel rules, test mode and audit history must answer the same on one node and in a
/// cluster (issue #18: "the policy rules stay exactly those of the single-node store").
@Suite struct ChannelSettingsConformanceTests {
    let at = Date(timeIntervalSince1970: 1_780_000_000)

    @Test(arguments: StoreBackend.allCases)
    func aChannelNeverConfiguredIsUnsetAndFollowsTestMode(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        let status = try await store.status(of: chanA)
        #expect(status.setting == .unset)
        #expect(status.callsAllowed && status.adminCallsAllowed)
        #expect(status.updatedAt == nil && status.updatedBy == nil)
        #expect(try await store.testMode() == false)
        #expect(try await store.setTestMode(true, actor: "ops", at: at) == false)
        #expect(try await store.setTestMode(true, actor: "ops", at: at) == true, "already on: returns the previous value")
        let underTest = try await store.status(of: chanA)
        #expect(!underTest.callsAllowed && underTest.adminCallsAllowed)
        #expect(try await store.list(setting: nil).isEmpty)
    }

    /// Every setting × test mode × role through the store, against the pure rules.
    @Test(arguments: StoreBackend.allCases)
    func mayStartCallIsThePolicyForEverySettingModeAndRole(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        for testMode in [false, true] {
            try await store.setTestMode(testMode, actor: "t", at: at)
            for setting in ChannelSetting.allCases {
                try await store.set(setting, for: [chanA], actor: "t", at: at)
                for admin in [false, true] {
                    let got = try await store.mayStartCall(in: chanA, isAdmin: admin)
                    let want = CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: admin, channel: chanA)
                    #expect(got == want, "\(setting) testMode=\(testMode) admin=\(admin)")
                }
                let status = try await store.status(of: chanA)
                #expect(status.setting == setting)
                #expect(status.callsAllowed == CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: false, channel: chanA).isAllowed)
            }
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func setReportsEachChangeAuditsOnlyRealOnesAndCollapsesDuplicates(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        let first = try await store.set(.disabled, for: [chanA, chanB, chanA], actor: "alice", at: at)
        #expect(first.map(\.channel) == [chanA, chanB])
        #expect(first.allSatisfy { $0.oldSetting == .unset && $0.newSetting == .disabled && $0.changed })
        let again = try await store.set(.disabled, for: [chanA], actor: "bob", at: at.addingTimeInterval(60))
        #expect(again == [SettingChange(channel: chanA, oldSetting: .disabled, newSetting: .disabled)])
        #expect(!again[0].changed)
        try await store.set(.enabled, for: [chanA], actor: "carol", at: at.addingTimeInterval(120))
        let status = try await store.status(of: chanA)
        #expect(status.setting == .enabled && status.updatedBy == "carol")
        #expect(status.updatedAt.map { abs($0.timeIntervalSince(at.addingTimeInterval(120))) < 0.001 } == true)

        let history = try await store.history(channel: nil, limit: 100)
        #expect(history.map(\.actor) == ["carol", "alice", "alice"], "newest first; the no-op by bob is not audited")
        #expect(history.map(\.newValue) == ["enabled", "disabled", "disabled"])
        #expect(history[0].oldValue == "disabled" && history[0].channel == chanA && history[0].subject == .channel)
        #expect(history.map(\.sequence) == history.map(\.sequence).sorted(by: >))
        #expect(try await store.history(channel: chanB, limit: 100).map(\.channel) == [chanB])
        #expect(try await store.history(channel: nil, limit: 1).count == 1)
    }

    @Test(arguments: StoreBackend.allCases)
    func testModeChangesAreAuditedWithoutAChannel(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        try await store.setTestMode(true, actor: "ops", at: at)
        try await store.setTestMode(true, actor: "ops", at: at)
        try await store.setTestMode(false, actor: "dev", at: at)
        let history = try await store.history(channel: nil, limit: 10)
        #expect(history.map(\.subject) == [.testMode, .testMode])
        #expect(history.map { "\($0.oldValue)>\($0.newValue) \($0.actor)" } == ["on>off dev", "off>on ops"])
        #expect(history.allSatisfy { $0.channel == nil })
    }

    @Test(arguments: StoreBackend.allCases)
    func listIsSortedAndFiltersBySettingIncludingReset(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        let c = cid("cccccccccccccccccccccccccc")
        try await store.set(.enabled, for: [c, chanA], actor: "a", at: at)
        try await store.set(.disabled, for: [chanB], actor: "a", at: at)
        try await store.set(.unset, for: [c], actor: "a", at: at)
        #expect(try await store.list(setting: nil).map(\.id) == [chanA, chanB, c])
        #expect(try await store.list(setting: .enabled).map(\.id) == [chanA])
        #expect(try await store.list(setting: .disabled).map(\.id) == [chanB])
        #expect(try await store.list(setting: .unset).map(\.id) == [c], "a reset channel keeps its row (and its history)")
    }

    /// Writers from several processes (CLI, nodes) queue: concurrent changes all land, each audited once.
    @Test(arguments: StoreBackend.allCases)
    func concurrentWritersAllLand(_ backend: StoreBackend) async throws {
        let s = try await StoreUnderTest.make(backend)
        defer { Task { await s.close() } }
        let store = s.store
        let channels = (0..<12).map { cid(String(format: "w%025d", $0)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, channel) in channels.enumerated() {
                group.addTask {
                    try await store.set(i % 2 == 0 ? .enabled : .disabled, for: [channel], actor: "w\(i)", at: Date())
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.list(setting: nil).count == channels.count)
        #expect(try await store.history(channel: nil, limit: 100).count == channels.count)
    }
}

/// PostgreSQL-only: what the cluster store adds (errors naming the URL without the password, migrations twice).
@Suite struct ClusterSettingsStoreTests {
    @Test func anUnreachableDatabaseIsAClearErrorWithoutThePassword() async throws {
        let url = try PostgresURL(parsing: "postgres://callsctl:hunter2-secret@127.0.0.1:\(try closedPort())/calls?sslmode=disable")
        do {
            _ = try await ClusterSettingsStore.open(
                url: url, password: nil, timeout: .seconds(5), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            Issue.record("opened a store on a closed port")
        } catch {
            #expect(error.kind == .unreachable)
            #expect(error.description.contains("postgres://callsctl@127.0.0.1:"), "\(error)")
            #expect(!error.description.contains("hunter2"), "\(error)")
        }
    }

    @Test func aWrongPasswordIsUnreachableAndSaysWhy() async throws {
        let server = try PostgresServer.shared.get()
        let db = try server.createDatabase(prefix: "pw")
        let url = try PostgresURL(parsing: "postgres://callsctl:wrong-password@127.0.0.1:\(server.port)/\(db)?sslmode=disable")
        do {
            _ = try await ClusterSettingsStore.open(url: url, password: nil, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            Issue.record("a wrong password was accepted")
        } catch {
            #expect(error.kind == .unreachable)
            #expect(error.description.contains("password authentication failed"), "\(error)")
            #expect(!error.description.contains("wrong-password"))
        }
    }

    /// Nodes starting together migrate once: the schema lock serialises them and the second finds nothing to do.
    @Test func concurrentOpensMigrateOnce() async throws {
        let server = try PostgresServer.shared.get()
        let db = try server.createDatabase(prefix: "mig")
        let url = try PostgresURL(parsing: server.url(database: db))
        let logger = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let store = try await ClusterSettingsStore.open(url: url, password: nil, logger: logger)
                    await store.close()
                }
            }
            try await group.waitForAll()
        }
        #expect(try server.psql(db, "SELECT count(*) FROM callsctl_schema") == "1")
        #expect(try server.psql(db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'callsctl_%'")
            == "callsctl_audit,callsctl_calls,callsctl_channel_settings,callsctl_cluster,callsctl_nodes,callsctl_schema,callsctl_store_settings")
    }

    @Test func aSchemaFromANewerCallsctlIsRefused() async throws {
        let server = try PostgresServer.shared.get()
        let db = try server.createDatabase(prefix: "new")
        let url = try PostgresURL(parsing: server.url(database: db))
        let logger = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        await (try ClusterSettingsStore.open(url: url, password: nil, logger: logger)).close()
        try server.psql(db, "INSERT INTO callsctl_schema (version, name) VALUES (99, 'future')")
        do {
            _ = try await ClusterSettingsStore.open(url: url, password: nil, logger: logger)
            Issue.record("a newer schema was accepted")
        } catch {
            #expect(error.kind == .tooNew)
            #expect(error.description.contains("schema version 99"), "\(error)")
        }
    }
}

/// A TCP port on 127.0.0.1 nothing listens on.
func closedPort() throws -> UInt16 { try freePort(tcpAndUDP: false) }

/// A node's view of the channel settings: a cache loaded when LISTEN is active and changed by NOTIFY, so a change
/// made by the CLI (another process, another connection) reaches the node without it asking the database.
@Suite struct ClusterSettingsCacheTests {
    @Test func aChangeReachesTheNodesCacheThroughNotify() async throws {
        let server = try PostgresServer.shared.get()
        let url = try PostgresURL(parsing: server.url(database: try server.createDatabase(prefix: "notify")))
        let logger = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        let settings = ClusterNodeSettings(
            url: url, password: nil, nodeID: "n1", publicURL: "http://127.0.0.1:1", version: "test", heartbeatTimeout: .seconds(5),
            tokenSecret: Array("token-secret-0123456789".utf8), turnSecret: nil)
        let node = try await ClusterNode.connect(settings: settings, logger: logger)
        try await node.start(localCalls: { [:] }, draining: { false })
        defer { Task { await node.stop() } }
        func cached(_ want: (Bool, ChannelSetting)) async throws -> Bool {
            for _ in 0..<100 {
                if let c = node.cachedSetting(chanA), c.testMode == want.0, c.setting == want.1 { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        #expect(try await cached((false, .unset)), "the cache was never loaded")
        let cli = try await ClusterSettingsStore.open(url: url, password: nil, logger: logger)
        defer { Task { await cli.close() } }
        try await cli.set(.disabled, for: [chanA], actor: "ops", at: Date())
        #expect(try await cached((false, .disabled)), "NOTIFY did not reach the cache: \(String(describing: node.cachedSetting(chanA)))")
        #expect(await node.admission(channel: chanA, isAdmin: true)?.contains("disabled") == true)
        try await cli.setTestMode(true, actor: "ops", at: Date())
        try await cli.set(.unset, for: [chanA], actor: "ops", at: Date())
        #expect(try await cached((true, .unset)))
        #expect(await node.admission(channel: chanA, isAdmin: false) != nil, "test mode on: an unset channel is refused to users")
        #expect(await node.admission(channel: chanA, isAdmin: true) == nil, "and allowed to admins")
    }
}

/// A query that overruns its bound answers the caller at the bound, whatever the work does next.
@Suite struct PostgresLinkTimeoutTests {
    /// The work's error handling queries the connection that the timeout closed (as a ROLLBACK after a failed
    /// migration step does). PostgresNIO never answers a query written to a closed connection, and the caller used to
    /// wait for the work: the suite hung (a CI run stopped for good in the store tests on a busy machine).
    @Test func aTimedOutQueryAnswersTheCallerEvenIfTheWorkHangs() async throws {
        let server = try PostgresServer.shared.get()
        let url = try PostgresURL(parsing: server.url(database: try server.createDatabase(prefix: "slow")))
        let link = PostgresLink(url: url, password: nil, timeout: .milliseconds(500), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        let answered = ManagedAnswer()
        let caller = Task {
            do {
                _ = try await link.run { c in
                    do {
                        try await c.query("SELECT pg_sleep(30)", logger: Logger(label: "t"))
                    } catch {
                        // What a careless error path does: another query on the (now closed) connection.
                        try await c.query("SELECT 1", logger: Logger(label: "t"))
                    }
                    return 0
                }
                answered.set("no error")
            } catch {
                answered.set("\(error)")
            }
        }
        for _ in 0..<200 where answered.get() == nil { try await Task.sleep(for: .milliseconds(50)) }
        caller.cancel()
        #expect(answered.get()?.contains("no answer within") == true, "\(answered.get() ?? "the caller was not answered within 10 s")")
        await link.close()
    }
}

final class ManagedAnswer: @unchecked Sendable {
    // @unchecked: `value` is accessed only with `lock` held.
    private let lock = NSLock()
    private var value: String?
    func set(_ v: String) { lock.withLock { value = v } }
    func get() -> String? { lock.withLock { value } }
}
