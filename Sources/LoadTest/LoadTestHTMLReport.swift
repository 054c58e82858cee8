import Foundation

/// `callsctl loadtest --report FILE.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
/// with the run's figures and charts of joins, throughput, loss and the server's CPU and memory over time.
public enum LoadTestHTMLReport {
    public struct Run: Sendable {
        public var title: String
        public var url: String
        public var calls: Int
        public var participantsPerCall: Int
        public var speakersPerCall: Int
        public var presentersPerCall: Int
        public var transport: String
        public var startedAt: Date

        public init(
            title: String, url: String, calls: Int, participantsPerCall: Int, speakersPerCall: Int,
            presentersPerCall: Int = 0, transport: String, startedAt: Date
        ) {
            self.presentersPerCall = presentersPerCall
            self.title = title
            self.url = url
            self.calls = calls
            self.participantsPerCall = participantsPerCall
            self.speakersPerCall = speakersPerCall
            self.transport = transport
            self.startedAt = startedAt
        }
    }

    /// A line of a chart: its name, colour and points (seconds, value).
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
    }

    public static func render(_ r: LoadTestReport, run: Run) -> String {
        let t = r.timeline
        var rows: [(String, String)] = [
            ("Server", escape(run.url)),
            ("Load", "\(run.calls) call(s) × \(run.participantsPerCall) participants, \(run.speakersPerCall) speaker(s) and \(run.presentersPerCall) presenter(s) each, over \(escape(run.transport))"),
            ("Started", escape(ISO8601DateFormatter().string(from: run.startedAt))),
            ("Joins", "\(r.joined) of \(r.participants) (\(r.failedJoins.count) failed) in \(fmt(r.joinWallSeconds, 1)) s; join time p50 \(ms(r.percentile(0.5))), p95 \(ms(r.percentile(0.95))), p99 \(ms(r.percentile(0.99)))"),
            ("Media", "\(r.receivedPackets) of \(r.expectedPackets) packets in \(fmt(r.mediaSeconds, 1)) s; loss per listener mean \(pct(r.meanLoss)), worst \(pct(r.worstLoss)); \(r.undecryptable) undecryptable"),
        ]
        if r.videoExpectedPackets > 0 || r.presenting > 0 {
            rows.append(("Screen", "\(r.presenting) presenting; \(r.videoReceivedPackets) of \(r.videoExpectedPackets) packets received by the viewers; loss per viewer mean \(pct(r.meanVideoLoss))"))
        }
        if let mean = r.meanJitterMilliseconds, let worst = r.worstJitterMilliseconds {
            rows.append(("Jitter", "mean \(fmt(mean, 2)) ms, worst stream \(fmt(worst, 2)) ms"))
        }
        if let cpu = r.serverCPUSeconds {
            var text = "\(fmt(cpu, 2)) s of CPU during the run"
            if let rss = r.serverRSSBytesAfter { text += ", RSS \(rss / 1_048_576) MiB at the end" }
            if let source = r.serverSource { text += " (from \(source == "proc" ? "/proc" : "/metrics"))" }
            rows.append(("Server cost", text))
        }
        rows.append(("Renegotiations", "\(r.renegotiations)"))
        for f in r.failedJoins.prefix(5) { rows.append(("Failed join", escape(f))) }

        var charts: [String] = []
        charts.append(
            chart(
                "Participants joined", unit: "participants",
                [
                    Series(name: "joined", color: "#2a7ab0", points: t.map { ($0.seconds, Double($0.joined)) }),
                    Series(name: "failed", color: "#c0392b", points: t.map { ($0.seconds, Double($0.failed)) }),
                ]))
        charts.append(
            chart(
                "Throughput", unit: "packets/s",
                [
                    Series(name: "received by listeners", color: "#27ae60", points: t.map { ($0.seconds, $0.receivedPerSecond) }),
                    Series(name: "sent by speakers", color: "#8e44ad", points: t.map { ($0.seconds, $0.sentPerSecond) }),
                ]))
        charts.append(
            chart(
                "Loss while the speakers send", unit: "%",
                [Series(name: "loss", color: "#c0392b", points: t.compactMap { s in s.loss.map { (s.seconds, $0 * 100) } })]))
        charts.append(
            chart(
                "Server CPU", unit: "% of one core",
                [Series(name: "CPU", color: "#d35400", points: t.compactMap { s in s.serverCPU.map { (s.seconds, $0 * 100) } })]))
        charts.append(
            chart(
                "Server memory", unit: "MiB",
                [Series(name: "RSS", color: "#16a085", points: t.compactMap { s in s.serverRSSBytes.map { (s.seconds, Double($0) / 1_048_576) } })]))

        let table = rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(run.title))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:960px}
            table{border-collapse:collapse;margin-bottom:1.5em}th{text-align:left;padding:2px 12px 2px 0;vertical-align:top}
            td{padding:2px 0}figure{margin:0 0 1.5em}figcaption{font-weight:600;margin-bottom:4px}
            .legend span{margin-right:1em}.empty{color:#888}svg text{font:11px system-ui,sans-serif;fill:#555}
            </style></head><body>
            <h1>\(escape(run.title))</h1>
            <table>
            \(table)
            </table>
            \(charts.joined(separator: "\n"))
            <p class="empty">One point per second of the run (joins, then media, then the last packets in flight). Made by callsctl loadtest.</p>
            </body></html>

            """
    }

    /// A line chart as inline SVG, with its axes' ranges and a legend; a note when there is nothing to draw.
    static func chart(_ title: String, unit: String, _ series: [Series]) -> String {
        let width = 900.0
        let height = 220.0
        let left = 60.0
        let bottom = 24.0
        let top = 8.0
        let all = series.flatMap(\.points)
        let id = title.lowercased().filter { $0.isLetter || $0 == " " }.replacingOccurrences(of: " ", with: "-")
        guard !all.isEmpty else {
            return "<figure id=\"\(id)\"><figcaption>\(escape(title)) (\(escape(unit)))</figcaption><p class=\"empty\">no samples</p></figure>"
        }
        let maxX = max(all.map(\.x).max() ?? 1, 1)
        let maxY = max(all.map(\.y).max() ?? 1, 1e-9) * 1.1
        func px(_ x: Double) -> Double { left + x / maxX * (width - left - 10) }
        func py(_ y: Double) -> Double { top + (1 - y / maxY) * (height - top - bottom) }
        var svg = "<svg role=\"img\" aria-label=\"\(escape(title))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\">"
        svg += "<line x1=\"\(left)\" y1=\"\(py(0))\" x2=\"\(width - 10)\" y2=\"\(py(0))\" stroke=\"#999\"/>"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(py(0))\" stroke=\"#999\"/>"
        svg += "<text x=\"\(left - 4)\" y=\"\(py(maxY / 1.1) + 4)\" text-anchor=\"end\">\(fmt(maxY / 1.1, maxY < 10 ? 2 : 0))</text>"
        svg += "<text x=\"\(left - 4)\" y=\"\(py(0))\" text-anchor=\"end\">0</text>"
        svg += "<text x=\"\(width - 10)\" y=\"\(height - 6)\" text-anchor=\"end\">\(fmt(maxX, 0)) s</text>"
        svg += "<text x=\"\(left)\" y=\"\(height - 6)\">0 s</text>"
        for s in series where !s.points.isEmpty {
            let points = s.points.map { "\(fmt(px($0.x), 1)),\(fmt(py($0.y), 1))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-name=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points)\"/>"
        }
        svg += "</svg>"
        let legend = series.map { "<span style=\"color:\($0.color)\">■ \(escape($0.name))</span>" }.joined()
        return "<figure id=\"\(id)\"><figcaption>\(escape(title)) (\(escape(unit)))</figcaption>\(svg)<div class=\"legend\">\(legend)</div></figure>"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
    static func pct(_ f: Double) -> String { String(format: "%.2f %%", f * 100) }
    static func ms(_ s: Double) -> String { String(format: "%.0f ms", s * 1000) }
}
