import CallsTestSupport
import Foundation
import Testing

/// `callsctl config generate grafana` read the way Grafana and Prometheus read it: the file is a dashboard model
/// (parsed by Python's json), and every query names only series that a running `callsctl serve` exports on /metrics
/// during a real call, each used as its type allows (counters under rate(), histograms through their `_bucket`
/// series under histogram_quantile(), gauges as they are).
@Suite(.serialized) struct GrafanaDashboardTests {
    /// What the exposition text declares: metric family → type, and the series names that have samples.
    struct Exposition {
        var types: [String: String] = [:]
        var sampled: Set<String> = []

        init(_ text: String) {
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    let parts = line.split(separator: " ")
                    if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                } else if !line.hasPrefix("#") {
                    let end = line.firstIndex { $0 == "{" || $0 == " " } ?? line.endIndex
                    sampled.insert(String(line[..<end]))
                }
            }
        }

        /// (family, its type) of a series name: itself, or the histogram it is the `_bucket`, `_sum` or `_count` of.
        func family(of name: String) -> (String, String)? {
            if let type = types[name] { return (name, type) }
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if types[base] == "histogram" { return (base, "histogram") }
            }
            return nil
        }
    }

    /// The metric names in a PromQL expression, each with the functions around it (innermost first).
    static func metricReferences(in expr: String) -> [(name: String, functions: [String])] {
        var chars = Array(expr)
        // Blank out what holds no metric names, keeping positions: strings, label matchers, ranges, grouping labels.
        func blank(_ range: Range<Int>) { for i in range { chars[i] = " " } }
        var i = 0
        while i < chars.count {
            switch chars[i] {
            case "\"", "'", "`":
                let quote = chars[i]
                var j = i + 1
                while j < chars.count && chars[j] != quote { j += chars[j] == "\\" ? 2 : 1 }
                blank(i..<min(j + 1, chars.count))
                i = j + 1
            case "{", "[":
                let close: Character = chars[i] == "{" ? "}" : "]"
                let j = chars[i...].firstIndex(of: close) ?? chars.count - 1
                blank(i..<(j + 1))
                i = j + 1
            default: i += 1
            }
        }
        let grouping = try! Regex(#"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#)
        var text = String(chars)
        for match in text.matches(of: grouping).reversed() {
            text.replaceSubrange(match.range, with: String(repeating: " ", count: text[match.range].count))
        }
        chars = Array(text)
        let keywords: Set<String> = ["bool", "offset", "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"]
        var out: [(String, [String])] = []
        for match in text.matches(of: try! Regex(#"[A-Za-z_:][A-Za-z0-9_:]*"#)) {
            let start = text.distance(from: text.startIndex, to: match.range.lowerBound)
            let end = text.distance(from: text.startIndex, to: match.range.upperBound)
            let word = String(text[match.range])
            if keywords.contains(word.lowercased()) { continue }
            if start > 0, chars[start - 1].isNumber || chars[start - 1] == "." { continue }  // 1e3, 0.5
            var k = end
            while k < chars.count && chars[k] == " " { k += 1 }
            if k < chars.count && chars[k] == "(" { continue }  // a function or an aggregation
            out.append((word, enclosingFunctions(chars, before: start)))
        }
        return out
    }

    /// The names of the calls around position `at`, innermost first.
    static func enclosingFunctions(_ chars: [Character], before at: Int) -> [String] {
        var functions: [String] = []
        var depth = 0
        var k = at - 1
        while k >= 0 {
            if chars[k] == ")" { depth += 1 }
            if chars[k] == "(" {
                if depth > 0 {
                    depth -= 1
                } else {
                    var e = k - 1
                    while e >= 0 && chars[e] == " " { e -= 1 }
                    var s = e
                    while s >= 0 && (chars[s].isLetter || chars[s].isNumber || chars[s] == "_") { s -= 1 }
                    if s < e { functions.append(String(chars[(s + 1)...e])) }
                }
            }
            k -= 1
        }
        return functions
    }

    /// Every problem of `expr` against the exposition: unknown names, names with no series, and types used wrongly.
    static func problems(_ expr: String, _ exposition: Exposition) -> [String] {
        var problems: [String] = []
        let references = metricReferences(in: expr)
        if references.isEmpty { problems.append("\(expr): names no metric") }
        for (name, functions) in references {
            guard let (family, type) = exposition.family(of: name) else {
                problems.append("\(name) is not a metric serve exports (\(expr))")
                continue
            }
            if !exposition.sampled.contains(name) { problems.append("\(name) has no series in serve's /metrics (\(expr))") }
            let underRate = ["rate", "irate", "increase"].contains(functions.first ?? "")
            switch type {
            case "counter":
                if !underRate { problems.append("counter \(name) is not under rate() (\(expr))") }
            case "histogram":
                if name == family { problems.append("histogram \(name) has no series of its own; use \(name)_bucket (\(expr))") }
                if !underRate { problems.append("histogram series \(name) is not under rate() (\(expr))") }
                if name.hasSuffix("_bucket") && !functions.contains("histogram_quantile") {
                    problems.append("\(name) is not under histogram_quantile() (\(expr))")
                }
            case "gauge":
                if underRate { problems.append("gauge \(name) is under rate(), which is for counters (\(expr))") }
            default: break
            }
            if functions.contains("histogram_quantile") && !name.hasSuffix("_bucket") {
                problems.append("histogram_quantile() over \(name), which is not a _bucket series (\(expr))")
            }
        }
        return problems
    }

    static let sampleExposition = Exposition(
        """
        # TYPE callsctl_calls gauge
        callsctl_calls 1
        # TYPE callsctl_joins_total counter
        callsctl_joins_total{result="ok"} 3
        # TYPE callsctl_handshake_seconds histogram
        callsctl_handshake_seconds_bucket{le="0.05"} 1
        callsctl_handshake_seconds_sum 0.01
        callsctl_handshake_seconds_count 1
        # TYPE callsctl_call_participants gauge

        """)

    /// The check finds what it is for: a made-up name, a name with no series, each type used wrongly.
    @Test(arguments: [
        ("sum(rate(callsctl_made_up_total{instance=~\"$instance\"}[$__rate_interval]))", "callsctl_made_up_total is not a metric serve exports"),
        ("callsctl_forwarded_packets", "callsctl_forwarded_packets is not a metric serve exports"),
        ("sum by (call) (callsctl_call_participants)", "callsctl_call_participants has no series"),
        ("sum(callsctl_joins_total)", "counter callsctl_joins_total is not under rate()"),
        ("rate(callsctl_calls[5m])", "gauge callsctl_calls is under rate()"),
        ("histogram_quantile(0.9, rate(callsctl_handshake_seconds[5m]))", "histogram callsctl_handshake_seconds has no series of its own"),
        ("histogram_quantile(0.9, rate(callsctl_handshake_seconds_sum[5m]))", "not a _bucket series"),
        ("rate(callsctl_handshake_seconds_bucket[5m])", "is not under histogram_quantile()"),
        ("sum by (le) (1 + 2)", "names no metric"),
    ])
    func theCheckReportsWhatIsWrong(_ expr: String, _ expected: String) {
        let found = Self.problems(expr, Self.sampleExposition)
        #expect(found.contains { $0.contains(expected) }, "\(found)")
    }

    @Test func theCheckPassesGoodQueries() {
        for expr in [
            "sum by (result) (rate(callsctl_joins_total{instance=~\"$instance\",result!=\"by (x)\"}[$__rate_interval]))",
            "histogram_quantile(0.95, sum by (le) (rate(callsctl_handshake_seconds_bucket{instance=~\"$instance\"}[5m])))",
            "sum(rate(callsctl_handshake_seconds_sum[5m])) / sum(rate(callsctl_handshake_seconds_count[5m]))",
            "sum(callsctl_calls) * 8 > bool 1e3",
        ] {
            #expect(Self.problems(expr, Self.sampleExposition).isEmpty, "\(expr): \(Self.problems(expr, Self.sampleExposition))")
        }
        #expect(Self.metricReferences(in: "histogram_quantile(0.5, sum by (le) (rate(a_bucket[1m])))").map(\.functions) == [["rate", "sum", "histogram_quantile"]])
    }

    static let promtool: String? = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `promtool check rules` on `exprs` as recording rules (Grafana's variables replaced as Grafana sends them):
    /// the exit status and what promtool said.
    static func promtoolCheck(_ exprs: [String], in dir: TempDir) throws -> (Int32, String) {
        var yaml = "groups:\n- name: dashboard\n  rules:\n"
        for (i, expr) in exprs.enumerated() {
            let sent = expr.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$instance", with: ".*")
            // A JSON string is a YAML double-quoted scalar.
            let quoted = String(decoding: try JSONSerialization.data(withJSONObject: sent, options: [.fragmentsAllowed, .withoutEscapingSlashes]), as: UTF8.self)
            yaml += "  - record: callsctl:dashboard:q\(i)\n    expr: \(quoted)\n"
        }
        let file = dir.url.appendingPathComponent("rules-\(UUID().uuidString).yml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: promtool!)
        p.arguments = ["check", "rules", file.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// Prometheus's own parser (promtool) accepts every query, and rejects a broken one (so the check can fail).
    /// Needs promtool (Debian's prometheus package; scripts/install-deps.sh --test); skipped without it unless
    /// CALLSCTL_REQUIRE_PROMTOOL=1.
    @Test func prometheusParsesEveryQuery() throws {
        guard Self.promtool != nil else {
            try #require(ProcessInfo.processInfo.environment["CALLSCTL_REQUIRE_PROMTOOL"] != "1", "promtool is required but missing")
            return
        }
        let generated = try CLI.run(["config", "generate", "grafana", "--domain", "calls.example.com", "--public-ip", "203.0.113.7", "--json"], dataDir: nil)
        let files = try #require((generated.json as? [String: Any])?["files"] as? [[String: Any]])
        let contents = try #require(files.first?["contents"] as? String)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contents.utf8)) as? [String: Any])
        let exprs = (dashboard["panels"] as? [[String: Any]] ?? []).flatMap { panel in
            (panel["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
        }
        #expect(exprs.count > 20)
        let dir = TempDir()
        let (status, said) = try Self.promtoolCheck(exprs, in: dir)
        #expect(status == 0, "\(said)")
        #expect(said.contains("SUCCESS: \(exprs.count) rules found"), "\(said)")
        let (broken, complaint) = try Self.promtoolCheck(exprs + ["rate(callsctl_calls{instance=~\"$instance\"})"], in: dir)
        #expect(broken != 0 && complaint.contains("expected type range vector"), "\(complaint)")
    }

    @Test func dashboardQueriesOnlyWhatServeExports() async throws {
        let generated = try CLI.run(["config", "generate", "grafana", "--domain", "calls.example.com", "--public-ip", "203.0.113.7"], dataDir: nil)
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(generated.stderr.isEmpty, "a dashboard holds no secret to warn about: \(generated.stderr)")
        let tmp = TempDir()
        let file = tmp.url.appendingPathComponent("callsctl-dashboard.json")
        try generated.stdout.write(to: file, atomically: true, encoding: .utf8)

        // Python's json reads it as Grafana's import does: a dashboard model; it prints the queries.
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", "-c",
            """
            import json, sys
            d = json.load(open(sys.argv[1]))
            assert isinstance(d["title"], str) and d["title"], "title"
            assert isinstance(d["uid"], str) and 0 < len(d["uid"]) <= 40, "uid"
            assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36, "schemaVersion"
            variables = d["templating"]["list"]
            source = [v for v in variables if v["type"] == "datasource"]
            assert len(source) == 1 and source[0]["query"] == "prometheus", "a Prometheus data source variable"
            ref = {"type": "prometheus", "uid": "${" + source[0]["name"] + "}"}
            exprs = [v["query"]["query"] for v in variables if v["type"] == "query"]
            ids = set()
            for p in d["panels"]:
                assert p["id"] not in ids, "panel ids are unique"
                ids.add(p["id"])
                g = p["gridPos"]
                assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"gridPos of {p['title']}"
                if p["type"] == "row":
                    continue
                assert p["datasource"] == ref, f"data source of {p['title']}"
                assert p["targets"], f"targets of {p['title']}"
                refs = [t["refId"] for t in p["targets"]]
                assert len(set(refs)) == len(refs), f"refIds of {p['title']}"
                for t in p["targets"]:
                    assert t["datasource"] == ref and t["expr"].strip(), f"target of {p['title']}"
                    exprs.append(t["expr"])
            print(json.dumps(exprs))
            """,
            file.path,
        ]
        let out = Pipe()
        let err = Pipe()
        python.standardOutput = out
        python.standardError = err
        try python.run()
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        let complaint = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0, "\(complaint)")
        let exprs = try #require(try JSONSerialization.jsonObject(with: printed) as? [String])
        #expect(exprs.count > 20, "\(exprs)")

        // The series of a real call: scraped while loadtest participants send Opus through serve.
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path)
        defer { _ = serve.stop() }
        let call = try LiveCall(serve, dir, channel: channelID(21), participants: 2)
        defer { call.stop() }
        let deadline = TestDeadline()
        var metrics = ""
        try await deadline.until("a call with forwarded audio in serve's /metrics", every: .milliseconds(200)) {
            metrics = try ServeCLITests.get(serve.apiPort, "/metrics").1
            let forwarded = metrics.split(separator: "\n").first { $0.hasPrefix("callsctl_forwarded_packets_total{kind=\"audio\"} ") }
            return metrics.contains("callsctl_call_participants{call=") && (forwarded.flatMap { Int($0.split(separator: " ")[1]) } ?? 0) > 0
        }
        let exposition = Exposition(metrics)
        var problems: [String] = []
        for expr in exprs {
            // The variable's label_values(METRIC, LABEL) names a gauge that must have series.
            if expr.hasPrefix("label_values(") {
                let metric = String(expr.dropFirst("label_values(".count).prefix { $0 != "," && $0 != ")" })
                if !exposition.sampled.contains(metric) { problems.append("\(metric) (\(expr)) has no series") }
                continue
            }
            problems += Self.problems(expr, exposition)
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        // Every family the dashboard promises is there: calls, participants, forwarding, loss, both latencies, send failures.
        let names = Set(exprs.flatMap { Self.metricReferences(in: $0).map(\.name) })
        for wanted in [
            "callsctl_calls", "callsctl_participants", "callsctl_forwarded_packets_total", "callsctl_call_listener_lost_packets",
            "callsctl_handshake_seconds_bucket", "callsctl_forward_latency_seconds_bucket", "callsctl_send_failures_total",
        ] {
            #expect(names.contains(wanted), "the dashboard has no query of \(wanted)")
        }
    }
}
