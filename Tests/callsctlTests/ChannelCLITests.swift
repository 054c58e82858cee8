import Foundation
import Testing

@Suite struct ChannelCLITests {
    let a = "4xp9fdt3pbdp7nrw7xjmrd8kkc"
    let b = "9ue8d3m7tb8rjpuejhbcxxyaqe"

    @Test func enableDisableResetStatusAsJSON() throws {
        let dir = TempDir()
        let enable = try CLI.run(["channel", "enable", a, b, "--actor", "alice", "--json"], dataDir: dir.path)
        #expect(enable.status == 0, "\(enable.stderr)")
        let changes = try #require(enable.json as? [[String: Any]])
        #expect(changes.count == 2)
        #expect(changes[0]["id"] as? String == a)
        #expect(changes[0]["setting"] as? String == "enabled")
        #expect(changes[0]["previous"] as? String == "unset")
        #expect(FileManager.default.fileExists(atPath: dir.dbPath))

        let status = try CLI.run(["channel", "status", a, "--json"], dataDir: dir.path)
        #expect(status.status == 0)
        let object = try #require(status.json as? [String: Any])
        #expect(object["id"] as? String == a)
        #expect(object["setting"] as? String == "enabled")
        #expect(object["callsAllowed"] as? Bool == true)
        let updatedAt = try #require(object["updatedAt"] as? String)
        #expect((try? Date(updatedAt, strategy: .iso8601)) != nil || updatedAt.hasSuffix("Z"))
        #expect(object["updatedBy"] as? String == "alice")

        #expect(try CLI.run(["channel", "disable", a], dataDir: dir.path).status == 0)
        let disabled = try CLI.run(["channel", "status", a, "--json"], dataDir: dir.path)
        #expect(disabled.status == 2, "a channel where calls may not start answers no (exit 2)")
        #expect((disabled.json as? [String: Any])?["callsAllowed"] as? Bool == false)

        #expect(try CLI.run(["channel", "reset", a], dataDir: dir.path).status == 0)
        let reset = try CLI.run(["channel", "status", a, "--json"], dataDir: dir.path)
        #expect((reset.json as? [String: Any])?["setting"] as? String == "unset")
        #expect((reset.json as? [String: Any])?["callsAllowed"] as? Bool == true)

        let never = try CLI.run(["channel", "status", "zzzzzzzzzzzzzzzzzzzzzzzzzz", "--json"], dataDir: dir.path)
        let neverObject = try #require(never.json as? [String: Any])
        #expect(neverObject["setting"] as? String == "unset")
        #expect(neverObject["updatedAt"] is NSNull)
    }

    @Test func listFiltersAndTestModeSemantics() throws {
        let dir = TempDir()
        try CLI.run(["channel", "enable", a], dataDir: dir.path)
        try CLI.run(["channel", "disable", b], dataDir: dir.path)
        let c = "cccccccccccccccccccccccccc"
        try CLI.run(["channel", "enable", c], dataDir: dir.path)
        try CLI.run(["channel", "reset", c], dataDir: dir.path)

        func list(_ extra: [String]) throws -> [[String: Any]] {
            let r = try CLI.run(["channel", "list", "--json"] + extra, dataDir: dir.path)
            #expect(r.status == 0, "\(r.stderr)")
            return try #require(r.json as? [[String: Any]])
        }
        #expect(try list([]).compactMap { $0["id"] as? String } == [a, b, c])
        #expect(try list(["--enabled"]).compactMap { $0["id"] as? String } == [a])
        #expect(try list(["--disabled"]).compactMap { $0["id"] as? String } == [b])
        #expect(try list([]).allSatisfy { $0["updatedAt"] is String && $0["callsAllowed"] is Bool })

        let off = try CLI.run(["channel", "testmode", "status", "--json"], dataDir: dir.path)
        #expect(off.stdout.replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "\n", with: "") == "{\"testMode\":false}")
        var allowed = Dictionary(uniqueKeysWithValues: try list([]).map { ($0["id"] as! String, $0["callsAllowed"] as! Bool) })
        #expect(allowed == [a: true, b: false, c: true])

        #expect(try CLI.run(["channel", "testmode", "on"], dataDir: dir.path).status == 0)
        let on = try CLI.run(["channel", "testmode", "status", "--json"], dataDir: dir.path)
        #expect((on.json as? [String: Any])?["testMode"] as? Bool == true)
        allowed = Dictionary(uniqueKeysWithValues: try list([]).map { ($0["id"] as! String, $0["callsAllowed"] as! Bool) })
        #expect(allowed == [a: true, b: false, c: false])

        let both = try CLI.run(["channel", "list", "--enabled", "--disabled"], dataDir: dir.path)
        #expect(both.status == 64)
    }

    @Test func historyRecordsWhoChangedWhat() throws {
        let dir = TempDir()
        try CLI.run(["channel", "enable", a, "--actor", "alice"], dataDir: dir.path)
        try CLI.run(["channel", "disable", a, "--actor", "bob"], dataDir: dir.path)
        try CLI.run(["channel", "enable", b], dataDir: dir.path, env: ["USER": "carol"])
        try CLI.run(["channel", "testmode", "on", "--actor", "dave"], dataDir: dir.path)

        let all = try CLI.run(["channel", "history", "--json"], dataDir: dir.path)
        let entries = try #require(all.json as? [[String: Any]])
        #expect(entries.count == 4)
        #expect(entries.map { $0["actor"] as? String } == ["dave", "carol", "bob", "alice"])
        #expect(entries[0]["subject"] as? String == "testMode")
        #expect(entries[2]["old"] as? String == "enabled" && entries[2]["new"] as? String == "disabled")

        let one = try CLI.run(["channel", "history", a], dataDir: dir.path)
        #expect(one.status == 0)
        #expect(one.stdout.contains("enabled → disabled  by bob"))
        #expect(!one.stdout.contains("carol"))
    }

    @Test(arguments: [
        ["channel", "enable", "not-an-id"], ["channel", "disable", "4xp9fdt3pbdp7nrw7xjmrd8kkC"],
        ["channel", "status", "short"], ["channel", "reset", "4xp9fdt3pbdp7nrw7xjmrd8kkc", "bad_id_000000000000000000"],
        ["channel", "history", "x"],
    ])
    func badChannelIDsAreUsageErrors(_ args: [String]) throws {
        let dir = TempDir()
        let r = try CLI.run(args, dataDir: dir.path)
        #expect(r.status == 64)
        let bad = args.last!
        #expect(r.stderr.contains("invalid channel id \"\(bad)\""), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        // Nothing was written: the store was not even created.
        #expect(!FileManager.default.fileExists(atPath: dir.dbPath))
    }

    @Test func twentyProcessesWritingAtOnceAllSucceed() throws {
        let dir = TempDir()
        let processes = (0..<20).map { i in
            CLI.process(
                ["channel", i % 3 == 0 ? "disable" : "enable", channelID(i), channelID(100 + i % 4), "--actor", "w\(i)"],
                dataDir: dir.path)
        }
        for p in processes {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
        }
        let deadline = Date().addingTimeInterval(60)
        for p in processes {
            while p.isRunning && Date() < deadline { usleep(5000) }
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
        }
        #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "\(processes.map(\.terminationStatus))")
        let list = try #require(try CLI.run(["channel", "list", "--json"], dataDir: dir.path).json as? [[String: Any]])
        let ids = Set(list.compactMap { $0["id"] as? String })
        for i in 0..<20 { #expect(ids.contains(channelID(i))) }
        for i in 0..<20 {
            let expected = i % 3 == 0 ? "disabled" : "enabled"
            #expect(list.first { $0["id"] as? String == channelID(i) }?["setting"] as? String == expected)
        }
        let history = try #require(try CLI.run(["channel", "history", "--json", "--limit", "1000"], dataDir: dir.path).json as? [[String: Any]])
        #expect(history.filter { ($0["channel"] as? String).map { $0 < channelID(20) } ?? false }.count == 20)
    }

    @Test func killedWritersLeaveEveryAcknowledgedChange() throws {
        let dir = TempDir()
        try CLI.run(["channel", "testmode", "status"], dataDir: dir.path)  // create the store first
        var acknowledged: [String] = []
        var killed = 0
        var generator = SystemRandomNumberGenerator()
        let start = Date()
        var n = 0
        // Bounded: at most 60 writers or 40 s.
        while n < 60 && Date().timeIntervalSince(start) < 40 {
            let id = channelID(n)
            let p = CLI.process(["channel", "disable", id], dataDir: dir.path)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Kill every other writer at a random moment of its short life (start-up, open, write, commit).
            if n % 2 == 1 {
                usleep(UInt32.random(in: 1_000...40_000, using: &generator))
                if p.isRunning {
                    kill(p.processIdentifier, SIGKILL)
                    killed += 1
                }
            }
            p.waitUntilExit()
            if p.terminationReason == .exit && p.terminationStatus == 0 { acknowledged.append(id) }
            n += 1
        }
        #expect(killed > 0, "no writer was killed mid-run; the test proved nothing")
        let list = try #require(try CLI.run(["channel", "list", "--disabled", "--json"], dataDir: dir.path).json as? [[String: Any]])
        let present = Set(list.compactMap { $0["id"] as? String })
        for id in acknowledged { #expect(present.contains(id), "acknowledged change for \(id) was lost") }
        // The file is consistent: SQLite's own check passes and the audit log matches the settings.
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import sqlite3,sys
            c=sqlite3.connect(sys.argv[1])
            print(c.execute('PRAGMA integrity_check').fetchone()[0])
            s=c.execute("select count(*) from channelSetting where setting='disabled'").fetchone()[0]
            a=c.execute("select count(*) from auditEntry where newValue='disabled'").fetchone()[0]
            print(s==a)
            """, dir.dbPath]
        let pipe = Pipe()
        check.standardOutput = pipe
        try check.run()
        check.waitUntilExit()
        let lines = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(lines == ["ok", "True"])
    }

    @Test func corruptDatabaseIsReportedWithPathAndFixAndKept() throws {
        let dir = TempDir()
        let garbage = Data("this is not a database, it is a shopping list\n".utf8)
        FileManager.default.createFile(atPath: dir.dbPath, contents: garbage)
        let r = try CLI.run(["channel", "enable", a], dataDir: dir.path)
        #expect(r.status == 3)
        #expect(r.stderr.contains(dir.dbPath))
        #expect(r.stderr.contains("mv "))
        #expect(FileManager.default.contents(atPath: dir.dbPath) == garbage)
    }

    @Test func dataDirPrecedence() throws {
        let flagDir = TempDir()
        let envDir = TempDir()
        let xdg = TempDir()
        try CLI.run(["channel", "enable", a, "--data-dir", flagDir.path], dataDir: envDir.path)
        #expect(FileManager.default.fileExists(atPath: flagDir.dbPath))
        #expect(!FileManager.default.fileExists(atPath: envDir.dbPath))
        try CLI.run(["channel", "enable", a], dataDir: envDir.path, env: ["XDG_DATA_HOME": xdg.path])
        #expect(FileManager.default.fileExists(atPath: envDir.dbPath))
        try CLI.run(["channel", "enable", a], dataDir: nil, env: ["XDG_DATA_HOME": xdg.path])
        #expect(FileManager.default.fileExists(atPath: xdg.url.appendingPathComponent("callsctl/calls.db").path))
        let home = TempDir()
        try CLI.run(["channel", "enable", a], dataDir: nil, env: ["XDG_DATA_HOME": "", "HOME": home.path])
        #expect(FileManager.default.fileExists(atPath: home.url.appendingPathComponent(".local/share/callsctl/calls.db").path))
    }
}
