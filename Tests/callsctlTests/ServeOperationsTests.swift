import CallsMedia
import CallsTestSupport
import Foundation
import Testing

@testable import callsctl

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `serve` the way admins run rtcd: JSON log lines for a log pipeline, systemd's notify protocol, and SIGHUP
/// reloading the config during a live call.
@Suite(.serialized) struct ServeOperationsTests {
    /// A unix datagram socket the test listens on, as systemd does for `Type=notify` ($NOTIFY_SOCKET).
    final class NotifySocket {
        let path: String
        let fd: Int32

        init(in dir: String) throws {
            path = "\(dir)/notify.sock"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let name = Array(path.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard ok == 0 else { throw ServeCLITests.CLIProblem(description: "cannot bind \(path)") }
        }

        deinit { close(fd) }

        /// The next notification, or nil after `seconds` without one.
        func next(within seconds: Int) -> String? {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(seconds * 1000)) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
        }

        /// Notifications until one contains `text` (bounded: `limit` notifications, 30 s without any).
        func await(_ text: String, limit: Int = 200) -> [String] {
            var seen: [String] = []
            for _ in 0..<limit {
                guard let note = next(within: 30) else { break }
                seen.append(note)
                if note.contains(text) { break }
            }
            return seen
        }
    }

    @Test func systemdHearsReadyWatchdogReloadingAndStopping() throws {
        let dir = TempDir()
        let notify = try NotifySocket(in: dir.path)
        let serve = try ServeCLITests.RunningServe(
            dataDir: dir.path, env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        var stopped = false
        defer { if !stopped { _ = serve.stop() } }
        // READY only once the ports are bound: RunningServe returned after "api listening", and READY names them.
        let ready = notify.await("READY=1")
        #expect(ready.last?.hasPrefix("READY=1\nSTATUS=serving: API 127.0.0.1:\(serve.apiPort), media ") == true, "\(ready)")
        #expect(ready.last?.contains("MAINPID=\(serve.process.processIdentifier)") == true, "\(ready)")
        // Watchdog pings (at half of WATCHDOG_USEC), each after a round trip through the media thread.
        var pings = 0
        for note in notify.await("never", limit: 3) where note == "WATCHDOG=1" { pings += 1 }
        #expect(pings == 3)
        kill(serve.process.processIdentifier, SIGHUP)
        let reload = notify.await("READY=1")
        #expect(reload.contains { $0.hasPrefix("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=") }, "\(reload)")
        #expect(reload.last?.hasPrefix("READY=1") == true, "\(reload)")
        let (status, stderr) = serve.stop()
        stopped = true
        #expect(status == 0, "\(stderr)")
        let end = notify.await("STOPPING=1")
        #expect(end.last == "STOPPING=1\nSTATUS=draining 0 session(s)", "\(end)")
    }

    @Test func aWatchdogMeantForAnotherProcessIsNotPinged() throws {
        let dir = TempDir()
        let notify = try NotifySocket(in: dir.path)
        let serve = try ServeCLITests.RunningServe(
            dataDir: dir.path, env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"])
        defer { _ = serve.stop() }
        #expect(notify.await("READY=1").last?.hasPrefix("READY=1") == true)
        // One second is five watchdog intervals: none comes.
        #expect(notify.next(within: 1) == nil)
    }

    /// `--log-format json`: every stderr line of a serve that held a real call (three participants of `callsctl
    /// loadtest`, ICE, DTLS-SRTP and signaling) is one JSON object with the stable fields, the session and call
    /// lines carry `session.id` and `call.channel`, and no secret or raw control character appears.
    @Test func jsonLogsParseLineByLine() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path, extraArgs: ["--log-format", "json"])
        let channel = "abcdefghijklmnopqrstuvwxyz"
        let r = try LoadtestCLITests.loadtest(
            serve, dir, ["--participants", "3", "--speakers", "1", "--duration", "2", "--ramp", "20", "--channel", channel, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let (status, stderr) = serve.stop()
        #expect(status == 0)
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count > 10, "\(stderr)")
        var records: [[String: Any]] = []
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            if let object { records.append(object) }
        }
        for record in records {
            #expect(record["time"] is String && record["level"] is String && record["msg"] is String && record["logger"] is String, "\(record)")
            #expect((record["time"] as? String)?.hasSuffix("Z") == true)
        }
        #expect(records.contains { $0["msg"] as? String == "joined" && $0["call.channel"] as? String == channel && $0["session.id"] != nil })
        #expect(records.contains { $0["msg"] as? String == "stopped" && $0["level"] as? String == "notice" })
        // Secrets stay out, and no byte below 0x20 but the newlines between lines.
        for secret in ["admin-key", "token-secret"] {
            let value = try String(contentsOfFile: "\(dir.path)/\(secret)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!stderr.contains(value), "\(secret) in the log")
        }
        #expect(!stderr.utf8.contains { $0 < 0x20 && $0 != 0x0A })
    }

    /// rtcd's dashboard and alerts read a `serve` as they read an rtcd: every metric their queries name is exported
    /// (a histogram with its `_bucket`, `_sum` and `_count`), and every label they select or group by is on it.
    @Test func rtcdDashboardQueriesFindTheirMetrics() throws {
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let r = try LoadtestCLITests.loadtest(serve, dir, ["--participants", "3", "--speakers", "1", "--duration", "1", "--ramp", "20", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let (code, text) = try ServeCLITests.get(serve.apiPort, "/metrics")
        #expect(code == 200)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rtcd-dashboard-queries.txt")
        let queries = try String(contentsOf: fixture, encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(queries.count >= 20)
        for query in queries {
            #expect(Self.missing(query, in: text).isEmpty, "\(query): \(Self.missing(query, in: text))")
        }
        // The check can fail: a name serve does not export, and a label it does not put on a metric.
        #expect(Self.missing("sum(rate(rtcd_rtc_made_up_total[5m]))", in: text) == ["rtcd_rtc_made_up_total"])
        #expect(Self.missing("sum by (nodeID) (rtcd_rtc_sessions_total)", in: text) == ["rtcd_rtc_sessions_total{nodeID}"])
        // And the figures are the call's: three sessions connected, three WebSocket joins.
        #expect(text.contains("rtcd_rtc_conn_states_total{type=\"connected\"} 3\n"), "\(text)")
        #expect(text.contains("rtcd_ws_messages_total{clientID=\"callsctl\",direction=\"in\",type=\"join\"} 3\n"), "\(text)")
    }

    /// What `query` needs that the exposition `text` lacks: metric names without a series, and `metric{label}` for
    /// labels a selector or a `by (...)` clause uses that no series of the metric has.
    static func missing(_ query: String, in text: String) -> [String] {
        let series = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let words = line.split(separator: " ")
            if words.count == 4 { types[String(words[2])] = String(words[3]) }
        }
        let names = matches(#"rtcd_[a-zA-Z0-9_]+"#, in: query)
        var grouped = Set<String>()
        for clause in matches(#"by \(([^)]*)\)"#, in: query, group: 1) {
            for label in clause.split(separator: ",") { grouped.insert(label.trimmingCharacters(in: .whitespaces)) }
        }
        grouped.remove("le")
        var problems: [String] = []
        for name in Set(names).sorted() {
            let base = ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) && types[String(name.dropLast($0.count))] == "histogram" }
                .map { String(name.dropLast($0.count)) } ?? name
            let own = series.filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            guard !own.isEmpty, types[base] != nil else {
                problems.append(name)
                continue
            }
            // Labels of this metric's selector in the query, and the grouping labels.
            var selected = Set<String>()
            for selector in matches(NSRegularExpression.escapedPattern(for: name) + #"\{([^}]*)\}"#, in: query, group: 1) {
                for matcher in selector.split(separator: ",") {
                    if let label = matcher.split(separator: "=").first {
                        selected.insert(label.trimmingCharacters(in: CharacterSet(charactersIn: " !~")))
                    }
                }
            }
            for label in selected.union(grouped).sorted() where !own.contains(where: { $0.contains("{\(label)=") || $0.contains(",\(label)=") }) {
                problems.append("\(name){\(label)}")
            }
        }
        return problems
    }

    static func matches(_ pattern: String, in text: String, group: Int = 0) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: group), in: text).map { String(text[$0]) }
        }
    }

    @Test func badLogFlagsAreUsageErrors() throws {
        let r = try CLI.run(["serve", "--log-format", "xml"], dataDir: TempDir().path)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("--log-format is text or json, not \"xml\"."), "\(r.stderr)")
        let l = try CLI.run(["serve", "--log-level", "loud"], dataDir: TempDir().path)
        #expect(l.status == 64)
        #expect(l.stderr.contains("--log-level is debug, info, warn or error, not \"loud\"."), "\(l.stderr)")
    }

    /// SIGHUP during a live call: the call goes on without a lost packet, the participant limit and log level
    /// change for the joins after it, and a changed ICE host override is reported as needing a restart.
    @Test func sighupReloadsDuringALiveCall() throws {
        let dir = TempDir()
        let config = "\(dir.path)/callsctl.toml"
        try "[limits]\nmax_participants = 10\n".write(toFile: config, atomically: true, encoding: .utf8)
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path, extraArgs: ["--config", config])
        var stopped = false
        defer { if !stopped { _ = serve.stop() } }
        let adminKey = try String(contentsOfFile: "\(dir.path)/admin-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let channel = "reloadreloadreloadreload01"
        let result = Locked<CLI.Result?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let args = [
            "loadtest", "--url", "http://127.0.0.1:\(serve.apiPort)", "--token-secret-file", "\(dir.path)/token-secret",
            "--participants", "3", "--speakers", "1", "--duration", "6", "--ramp", "20", "--channel", channel, "--json",
        ]
        let dataDir = dir.path
        DispatchQueue.global().async {
            let r = try? CLI.run(args, dataDir: dataDir, timeout: 120)
            result.withLock { $0 = r }
            finished.signal()
        }
        // Everyone joined (bounded), then the config changes under the running call.
        var joined = 0
        for _ in 0..<300 where joined < 3 {
            joined = Self.participants(port: serve.apiPort, key: adminKey, channel: channel)
            if joined < 3 { usleep(100_000) }
        }
        #expect(joined == 3)
        try """
            [limits]
            max_participants = 3
            [logger]
            console_level = "debug"
            [rtc]
            ice_host_override = "127.0.0.2"

            """.write(toFile: config, atomically: true, encoding: .utf8)
        kill(serve.process.processIdentifier, SIGHUP)
        #expect(finished.wait(timeout: .now() + 120) == .success)
        let first = try #require(result.current, "loadtest did not run")
        #expect(first.status == 0, "\(first.stderr)")
        let report = LoadtestCLITests.json(first)
        #expect((report["joins"] as? [String: Any])?["joined"] as? Int == 3)
        let media = report["media"] as? [String: Any] ?? [:]
        #expect(media["receivedPackets"] as? Int == media["expectedPackets"] as? Int, "\(media)")
        // The new limit holds for the next call: four try, three get in.
        let second = try LoadtestCLITests.loadtest(
            serve, dir, ["--participants", "4", "--speakers", "1", "--duration", "1", "--ramp", "20", "--max-join-failures", "1", "--json"])
        let joins = LoadtestCLITests.json(second)["joins"] as? [String: Any] ?? [:]
        #expect(joins["joined"] as? Int == 3, "\(second.stdout)\(second.stderr)")
        #expect(joins["failed"] as? Int == 1, "\(joins)")
        // A config that does not load changes nothing (and says so).
        try "[limits\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(serve.process.processIdentifier, SIGHUP)
        usleep(500_000)
        let (status, stderr) = serve.stop()
        stopped = true
        #expect(status == 0, "\(stderr)")
        #expect(stderr.contains("applied=[\"limits.max_participants\", \"logger.console_level\"]"), "\(stderr)")
        #expect(stderr.contains("restart.needed=[\"rtc.ice_host_override\"]"), "\(stderr)")
        #expect(stderr.contains("restart needed to apply: rtc.ice_host_override (running calls were not touched)"), "\(stderr)")
        #expect(stderr.contains("reload failed; the running settings stay"), "\(stderr)")
        // The debug level took effect without a restart.
        #expect(stderr.contains(" debug callsctl"), "\(stderr)")
    }

    /// Participants of the call in `channel`, from the admin API (0 when there is none).
    static func participants(port: Int, key: String, channel: String) -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1/calls")!)
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        request.timeoutInterval = 5
        let done = DispatchSemaphore(value: 0)
        let count = Locked(0)
        URLSession.shared.dataTask(with: request) { data, _, _ in
            if let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let calls = object["calls"] as? [[String: Any]],
                let call = calls.first(where: { $0["channel"] as? String == channel })
            {
                let n = (call["participants"] as? [Any])?.count ?? 0
                count.withLock { $0 = n }
            }
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return count.current
    }
}

/// One record is one line, whatever the message and metadata hold.
@Suite struct JSONLogLineTests {
    @Test func controlCharactersAreEscapedAndFieldsStable() throws {
        let line = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 1_796_669_000.25), level: .warning, message: "a\nb\u{1B}[31mc\u{7F}\u{85}\u{2028}d\"",
            label: "callsctl.serve",
            metadata: ["session.id": "s1", "call.channel": .string("x\ry"), "n": .stringConvertible(3), "list": .array(["a", "b"]), "msg": "shadow"])
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 })
        #expect(line.hasPrefix("{\"time\":\"2026-12-07T18:43:20.250Z\",\"level\":\"warning\",\"msg\":\"a\\nb\\u001b[31mc\\u007f\\u0085\\u2028d\\\"\",\"logger\":\"callsctl.serve\""), "\(line)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "a\nb\u{1B}[31mc\u{7F}\u{85}\u{2028}d\"")
        #expect(object["call.channel"] as? String == "x\ry")
        #expect(object["session.id"] as? String == "s1")
        #expect(object["n"] as? String == "3")
        #expect(object["list"] as? [String] == ["a", "b"])
    }
}
