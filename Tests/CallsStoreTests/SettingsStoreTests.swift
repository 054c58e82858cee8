import CallsStore
import Foundation
import Testing

/// A fresh folder per test, removed afterwards.
final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("callsstore-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var dbPath: String { url.appendingPathComponent("calls.db").path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

func cid(_ s: String) -> ChannelID { try! ChannelID(validating: s) }
let chanA = cid("aaaaaaaaaaaaaaaaaaaaaaaaaa")
let chanB = cid("bbbbbbbbbbbbbbbbbbbbbbbbb1")

@Suite struct ChannelIDTests {
    @Test(arguments: ["4xp9fdt3pbdp7nrw7xjmrd8kkc", "00000000000000000000000000", "abcdefghijklmnopqrstuvwxyz"])
    func acceptsMattermostIDs(_ id: String) throws {
        #expect(try ChannelID(validating: id).rawValue == id)
    }

    @Test(arguments: [
        ("", "0 characters"), ("abc", "3 characters"), ("4xp9fdt3pbdp7nrw7xjmrd8kkcz", "27 characters"),
        ("4XP9FDT3PBDP7NRW7XJMRD8KKC", "\"X\" at position 2"), ("4xp9fdt3pbdp7nrw7xjmrd8kk-", "\"-\" at position 26"),
        ("4xp9fdt3pbdp7nrw7xjmrd8kk é", "27 characters"), ("4xp9fdt3pbdp7nrw7xjmrd8k é", "\" \" at position 25"),
    ])
    func rejectsOthersNamingTheProblem(_ id: String, _ problem: String) {
        #expect {
            try ChannelID(validating: id)
        } throws: { error in
            let text = (error as? InvalidChannelID)?.description ?? ""
            return text.contains("\"\(id)\"") && text.contains(problem)
        }
    }
}

@Suite struct PolicyTests {
    /// Every setting × test mode × role, from DESIGN.md §5 and the Calls plugin's rules.
    @Test(arguments: [
        (ChannelSetting.enabled, false, false, true), (.enabled, false, true, true),
        (.enabled, true, false, true), (.enabled, true, true, true),
        (.disabled, false, false, false), (.disabled, false, true, false),
        (.disabled, true, false, false), (.disabled, true, true, false),
        (.unset, false, false, true), (.unset, false, true, true),
        (.unset, true, false, false), (.unset, true, true, true),
    ])
    func decide(setting: ChannelSetting, testMode: Bool, admin: Bool, allowed: Bool) {
        let decision = CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: admin, channel: chanA)
        #expect(decision.isAllowed == allowed)
        if case .refused(let reason) = decision {
            #expect(reason.contains(chanA.rawValue))
            #expect(reason.contains("callsctl channel enable \(chanA.rawValue)"))
        }
    }

    @Test(arguments: ChannelSetting.allCases, [false, true])
    func storeAgreesWithPolicy(setting: ChannelSetting, testMode: Bool) throws {
        let dir = TempDir()
        let store = try SettingsStore(path: dir.dbPath)
        try store.set(setting, for: [chanA], actor: "t")
        try store.setTestMode(testMode, actor: "t")
        let status = try store.status(of: chanA)
        #expect(status.setting == setting)
        let expected = CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: false, channel: chanA).isAllowed
        #expect(status.callsAllowed == expected)
        #expect(try store.mayStartCall(in: chanA, isAdmin: false).isAllowed == expected)
        #expect(
            try store.mayStartCall(in: chanA, isAdmin: true).isAllowed
                == CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: true, channel: chanA).isAllowed)
    }
}

@Suite struct SettingsStoreTests {
    @Test func migratesAnEmptyFile() throws {
        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.dbPath, contents: Data())
        let store = try SettingsStore(path: dir.dbPath)
        #expect(try store.testMode() == false)
        #expect(try store.list().isEmpty)
        #expect(try store.integrityProblems().isEmpty)
        // Reopening an existing database applies nothing twice.
        let again = try SettingsStore(path: dir.dbPath)
        #expect(try again.list().isEmpty)
    }

    @Test func createsTheFolder() throws {
        let dir = TempDir()
        let path = dir.url.appendingPathComponent("nested/deeper/calls.db").path
        let store = try SettingsStore(path: path)
        try store.set(.enabled, for: [chanA], actor: "t")
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func setStatusListAndAudit() throws {
        let dir = TempDir()
        let store = try SettingsStore(path: dir.dbPath)
        #expect(try store.status(of: chanA).setting == .unset)
        #expect(try store.status(of: chanA).updatedAt == nil)

        let first = try store.set(.enabled, for: [chanA, chanB, chanA], actor: "alice")
        #expect(first.map(\.channel) == [chanA, chanB])
        #expect(first.allSatisfy { $0.oldSetting == .unset && $0.newSetting == .enabled && $0.changed })

        let again = try store.set(.enabled, for: [chanA], actor: "bob")
        #expect(again.first?.changed == false)

        try store.set(.disabled, for: [chanB], actor: "bob")
        #expect(try store.list().map(\.id) == [chanA, chanB])
        #expect(try store.list(setting: .enabled).map(\.id) == [chanA])
        #expect(try store.list(setting: .disabled).map(\.id) == [chanB])
        #expect(try store.status(of: chanB).updatedBy == "bob")

        try store.set(.unset, for: [chanA], actor: "carol")
        #expect(try store.status(of: chanA).setting == .unset)
        #expect(try store.list(setting: .unset).map(\.id) == [chanA])

        try store.setTestMode(true, actor: "dave")
        try store.setTestMode(true, actor: "dave")  // no-op, not audited

        let history = try store.history()
        #expect(history.count == 5)  // 2 enables, 1 disable, 1 reset, 1 test mode; no-ops not recorded
        #expect(history.first?.subject == .testMode)
        #expect(history.first?.actor == "dave")
        #expect(history.first?.oldValue == "off" && history.first?.newValue == "on")
        let forA = try store.history(channel: chanA)
        #expect(forA.map(\.newValue) == ["unset", "enabled"])
        #expect(forA.map(\.actor) == ["carol", "alice"])
        #expect(forA.allSatisfy { $0.channel == chanA })
    }

    @Test func changesAreVisibleToAnotherConnectionAtOnce() throws {
        // `serve` keeps its store open while the CLI writes from another process.
        let dir = TempDir()
        let reader = try SettingsStore(path: dir.dbPath)
        let writer = try SettingsStore(path: dir.dbPath)
        #expect(try reader.mayStartCall(in: chanA, isAdmin: false).isAllowed)
        try writer.set(.disabled, for: [chanA], actor: "t")
        #expect(try reader.mayStartCall(in: chanA, isAdmin: false) != .allowed)
        try writer.setTestMode(true, actor: "t")
        try writer.set(.unset, for: [chanA], actor: "t")
        #expect(try !reader.mayStartCall(in: chanA, isAdmin: false).isAllowed)
        #expect(try reader.mayStartCall(in: chanA, isAdmin: true).isAllowed)
    }

    @Test func corruptFileIsReportedAndLeftAlone() throws {
        let dir = TempDir()
        let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        FileManager.default.createFile(atPath: dir.dbPath, contents: garbage)
        #expect {
            try SettingsStore(path: dir.dbPath)
        } throws: { error in
            guard let e = error as? StoreError else { return false }
            return e.kind == .corrupt && e.description.contains(dir.dbPath) && e.description.contains("mv ")
        }
        #expect(FileManager.default.contents(atPath: dir.dbPath) == garbage)
    }

    @Test func damagedDatabasePagesAreReported() throws {
        // A real SQLite file whose pages were overwritten after the header: SQLite itself notices.
        let dir = TempDir()
        do {
            let store = try SettingsStore(path: dir.dbPath)
            try store.set(.enabled, for: [chanA], actor: "t")
        }
        // Fold the WAL into the main file, then damage everything after the 100-byte header.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.dbPath))
        try? FileManager.default.removeItem(atPath: dir.dbPath + "-wal")
        try? FileManager.default.removeItem(atPath: dir.dbPath + "-shm")
        bytes = try Data(contentsOf: URL(fileURLWithPath: dir.dbPath))
        for i in 100..<bytes.count { bytes[i] = 0xA5 }
        try bytes.write(to: URL(fileURLWithPath: dir.dbPath))
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.dbPath))
        var failed = false
        do {
            let store = try SettingsStore(path: dir.dbPath)
            _ = try store.list()
        } catch {
            failed = true
            #expect(error.kind == .corrupt, "\(error)")
            #expect(error.description.contains(dir.dbPath))
        }
        #expect(failed)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.dbPath)) == before)
    }

    @Test func aFolderInPlaceOfTheFileIsReported() throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.dbPath, withIntermediateDirectories: true)
        #expect {
            try SettingsStore(path: dir.dbPath)
        } throws: { error in
            (error as? StoreError)?.kind == .inaccessible && "\(error)".contains(dir.dbPath)
        }
    }

    @Test func concurrentWritersInOneProcessLoseNothing() async throws {
        let dir = TempDir()
        _ = try SettingsStore(path: dir.dbPath)
        let ids = (0..<40).map { cid(String(format: "c%025d", $0)) }
        let path = dir.dbPath
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, id) in ids.enumerated() {
                group.addTask {
                    let store = try SettingsStore(path: path)
                    try store.set(i % 2 == 0 ? .enabled : .disabled, for: [id], actor: "w\(i)")
                }
            }
            try await group.waitForAll()
        }
        let store = try SettingsStore(path: dir.dbPath)
        #expect(try store.list().count == 40)
        #expect(try store.list(setting: .enabled).count == 20)
        #expect(try store.history().count == 40)
    }
}
