import Foundation

/// A Grafana dashboard (JSON model, importable as is) for the `callsctl_*` metrics `callsctl serve` exports on
/// `/metrics`: calls, participants, forwarding, loss, handshake and forwarding latency, failures, process cost.
///
/// Every query names only series that serve's `prometheusText` writes (checked against a running serve by
/// GrafanaDashboardTests): counters through `rate()`, histograms through `histogram_quantile()` on `_bucket`.
/// The data source is a dashboard variable, so the file imports into any Grafana without editing, and the
/// `instance` variable (from `callsctl_build_info`) picks media nodes.
enum GrafanaGenerator {
    static let path = "grafana/callsctl-dashboard.json"
    static let uid = "callsctl-serve"
    static let schemaVersion = 39

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        [
            GeneratedFile(
                path: path, contents: dashboard(i).rendered() + "\n",
                description: "Grafana dashboard for callsctl serve's /metrics (Dashboards > New > Import; pick the Prometheus data source)")
        ]
    }

    /// The series selector every query uses: the chosen media nodes.
    private static let on = "{instance=~\"$instance\"}"
    private static let window = "[$__rate_interval]"
    private static let source: JSON = .object([("type", .string("prometheus")), ("uid", .string("${datasource}"))])

    private static func rate(_ counter: String) -> String { "rate(\(counter)\(on)\(window))" }

    private static func quantile(_ q: String, _ histogram: String) -> String {
        "histogram_quantile(\(q), sum by (le) (rate(\(histogram)_bucket\(on)\(window))))"
    }

    /// One query of a panel: PromQL and the legend.
    private struct Query {
        let expr: String
        let legend: String
    }

    /// A panel before layout.
    private enum Panel {
        case row(String)
        case stat(title: String, description: String, expr: String, unit: String)
        case series(title: String, description: String, unit: String, queries: [Query], width: Int = 12)
    }

    private static func panels(_ i: DeploymentInputs) -> [Panel] {
        [
            .row("Calls"),
            .stat(title: "Calls", description: "Calls running now: channels with at least one participant.", expr: "sum(callsctl_calls\(on))", unit: "none"),
            .stat(title: "Participants", description: "Participants joined to calls now (echo tests excluded).", expr: "sum(callsctl_participants\(on))", unit: "none"),
            .stat(title: "Speakers", description: "Unmuted participants whose audio was forwarded in the last two seconds.", expr: "sum(callsctl_speakers\(on))", unit: "none"),
            .stat(title: "Presenters", description: "Participants sharing a screen now.", expr: "sum(callsctl_presenters\(on))", unit: "none"),
            .stat(title: "Media sessions", description: "Media sessions (ICE, DTLS-SRTP) open now.", expr: "sum(callsctl_sessions\(on))", unit: "none"),
            .stat(title: "Signaling connections", description: "WebSocket signaling connections open now.", expr: "sum(callsctl_signaling_connections\(on))", unit: "none"),
            .series(
                title: "Calls and participants", description: "Calls, participants and active speakers over time.", unit: "none",
                queries: [
                    Query(expr: "sum(callsctl_calls\(on))", legend: "calls"),
                    Query(expr: "sum(callsctl_participants\(on))", legend: "participants"),
                    Query(expr: "sum(callsctl_speakers\(on))", legend: "speakers"),
                ]),
            .series(
                title: "Participants per call",
                description: "The \(maximumLabelledCallsNote) largest calls by channel id; the rest are summed as call=\"other\".",
                unit: "none", queries: [Query(expr: "sum by (call) (callsctl_call_participants\(on))", legend: "{{call}}")]),
            .row("Media forwarding"),
            .series(
                title: "Forwarded RTP packets", description: "RTP packets forwarded to participants per second, by kind (one per receiver).",
                unit: "pps", queries: [Query(expr: "sum by (kind) (\(rate("callsctl_forwarded_packets_total")))", legend: "{{kind}}")],
                width: 8),
            .series(
                title: "Forwarded bitrate", description: "Bits per second of forwarded RTP packets after SRTP.", unit: "bps",
                queries: [Query(expr: "sum(\(rate("callsctl_forwarded_bytes_total"))) * 8", legend: "forwarded")], width: 8),
            .series(
                title: "Media packets in and out", description: "Every media packet (STUN, DTLS, RTP, RTCP) by direction.", unit: "pps",
                queries: [Query(expr: "sum by (direction) (\(rate("callsctl_packets_total")))", legend: "{{direction}}")], width: 8),
            .row("Loss"),
            .series(
                title: "Packets lost, reported by listeners",
                description: "Audio packets per second that each call's listeners report lost on their audio slots (RTCP cumulative loss, a gauge per call; negative steps when a call ends are cut off).",
                unit: "pps",
                queries: [
                    Query(expr: "sum by (call) (clamp_min(deriv(callsctl_call_listener_lost_packets\(on)\(window)), 0))", legend: "{{call}}")
                ], width: 8),
            .series(
                title: "Packets dropped at the server",
                description: "Media packets dropped by serve (unknown source, failed checks, full queues) and datagrams the kernel dropped with the media socket's receive buffer full.",
                unit: "pps",
                queries: [
                    Query(expr: "sum(\(rate("callsctl_dropped_packets_total")))", legend: "dropped by serve"),
                    Query(expr: "sum(\(rate("callsctl_udp_receive_drops_total")))", legend: "receive buffer full (kernel)"),
                ], width: 8),
            .series(
                title: "Loss repair", description: "NACKs from receivers, packets resent from the retransmission buffer, keyframe requests (PLI/FIR).",
                unit: "pps",
                queries: [
                    Query(expr: "sum(\(rate("callsctl_nacks_total")))", legend: "NACKs received"),
                    Query(expr: "sum(\(rate("callsctl_retransmitted_packets_total")))", legend: "retransmitted"),
                    Query(expr: "sum by (result) (\(rate("callsctl_keyframe_requests_total")))", legend: "keyframe requests {{result}}"),
                ], width: 8),
            .row("Latency"),
            .series(
                title: "Handshake latency", description: "Time from a client's offer to DTLS connected.", unit: "s",
                queries: [
                    Query(expr: quantile("0.5", "callsctl_handshake_seconds"), legend: "p50"),
                    Query(expr: quantile("0.95", "callsctl_handshake_seconds"), legend: "p95"),
                    Query(expr: quantile("0.99", "callsctl_handshake_seconds"), legend: "p99"),
                ]),
            .series(
                title: "Forwarding latency", description: "Time from receiving an RTP packet to sending it on to a receiver.", unit: "s",
                queries: [
                    Query(expr: quantile("0.5", "callsctl_forward_latency_seconds"), legend: "p50"),
                    Query(expr: quantile("0.99", "callsctl_forward_latency_seconds"), legend: "p99"),
                    Query(
                        expr: "sum(\(rate("callsctl_forward_latency_seconds_sum"))) / sum(\(rate("callsctl_forward_latency_seconds_count")))",
                        legend: "mean"),
                ]),
            .row("Failures"),
            .series(
                title: "Send failures",
                description: "UDP datagrams not sent: refused by the kernel (a firewall rule, no route) or dropped with the send buffer full.",
                unit: "pps", queries: [Query(expr: "sum by (reason) (\(rate("callsctl_send_failures_total")))", legend: "{{reason}}")],
                width: 6),
            .series(
                title: "Failed handshakes", description: "DTLS handshakes that failed, and ICE sessions that failed or lost consent.",
                unit: "ops",
                queries: [
                    Query(expr: "sum(\(rate("callsctl_dtls_failures_total")))", legend: "DTLS"),
                    Query(expr: "sum(\(rate("callsctl_ice_failures_total")))", legend: "ICE"),
                ], width: 6),
            .series(
                title: "Joins", description: "Join requests by result (refused: token, channel policy, full call, draining).", unit: "ops",
                queries: [Query(expr: "sum by (result) (\(rate("callsctl_joins_total")))", legend: "{{result}}")], width: 6),
            .series(
                title: "Refused API connections",
                description: "API connections refused at a limit (api.max_connections, api.max_connections_per_address) or closed by a deadline.",
                unit: "ops",
                queries: [
                    Query(expr: "sum by (reason) (\(rate("callsctl_api_connections_refused_total")))", legend: "refused: {{reason}}"),
                    Query(expr: "sum by (kind) (\(rate("callsctl_api_connection_timeouts_total")))", legend: "timed out: {{kind}}"),
                ], width: 6),
            .row("Process"),
            .series(
                title: "CPU", description: "CPU cores used by serve (user and system).", unit: "none",
                queries: [Query(expr: rate("process_cpu_seconds_total"), legend: "{{instance}}")], width: 8),
            .series(
                title: "Resident memory", description: "Resident memory of serve.", unit: "bytes",
                queries: [Query(expr: "process_resident_memory_bytes\(on)", legend: "{{instance}}")], width: 8),
            .series(
                title: "UDP receive buffer",
                description: "Receive buffer of the media UDP socket as the kernel granted it (serve asks for 16 MiB; raise net.core.rmem_max if this is less).",
                unit: "bytes", queries: [Query(expr: "callsctl_udp_receive_buffer_bytes\(on)", legend: "{{instance}}")], width: 8),
        ]
    }

    /// serve's `ServerMetrics.maximumLabelledCalls` (CallsConfig does not depend on CallsServer).
    private static let maximumLabelledCallsNote = 20

    static func dashboard(_ i: DeploymentInputs) -> JSON {
        var laidOut: [JSON] = []
        var x = 0
        var y = 0
        var rowHeight = 0
        for (index, panel) in panels(i).enumerated() {
            let id = JSON.int(index + 1)
            func place(_ w: Int, _ h: Int) -> JSON {
                if x + w > 24 {
                    x = 0
                    y += rowHeight
                    rowHeight = 0
                }
                defer {
                    x += w
                    rowHeight = max(rowHeight, h)
                }
                return .object([("h", .int(h)), ("w", .int(w)), ("x", .int(x)), ("y", .int(y))])
            }
            switch panel {
            case .row(let title):
                laidOut.append(
                    .object([
                        ("id", id), ("type", .string("row")), ("title", .string(title)), ("collapsed", .bool(false)),
                        ("gridPos", place(24, 1)), ("panels", .array([])),
                    ]))
            case .stat(let title, let description, let expr, let unit):
                laidOut.append(
                    .object([
                        ("id", id), ("type", .string("stat")), ("title", .string(title)), ("description", .string(description)),
                        ("datasource", source), ("gridPos", place(4, 4)),
                        ("fieldConfig", .object([("defaults", .object([("unit", .string(unit)), ("decimals", .int(0))])), ("overrides", .array([]))])),
                        ("options", .object([
                            ("reduceOptions", .object([("calcs", .array([.string("lastNotNull")])), ("fields", .string("")), ("values", .bool(false))])),
                            ("colorMode", .string("value")), ("graphMode", .string("area")), ("textMode", .string("auto")),
                            ("justifyMode", .string("auto")), ("orientation", .string("auto")),
                        ])),
                        ("targets", .array([target(Query(expr: expr, legend: title), refID: "A")])),
                    ]))
            case .series(let title, let description, let unit, let queries, let width):
                laidOut.append(
                    .object([
                        ("id", id), ("type", .string("timeseries")), ("title", .string(title)), ("description", .string(description)),
                        ("datasource", source), ("gridPos", place(width, 8)),
                        ("fieldConfig", .object([("defaults", .object([("unit", .string(unit)), ("min", .int(0))])), ("overrides", .array([]))])),
                        ("options", .object([
                            ("legend", .object([("displayMode", .string("list")), ("placement", .string("bottom")), ("showLegend", .bool(true))])),
                            ("tooltip", .object([("mode", .string("multi")), ("sort", .string("none"))])),
                        ])),
                        ("targets", .array(queries.enumerated().map { target($1, refID: String(Character(Unicode.Scalar(UInt8(65 + $0))))) })),
                    ]))
            }
        }
        let instances = "label_values(callsctl_build_info, instance)"
        let nodes = i.mediaNodes > 1 ? "\(i.mediaNodes) media nodes, one instance each" : "one media node"
        return .object([
            ("title", .string("callsctl serve: calls and media")),
            ("uid", .string(uid)),
            ("description", .string(
                "callsctl serve for \(i.domain) (\(nodes)). \(Render.header). Prometheus scrapes serve's /metrics on the API port (\(i.apiURL)/metrics) from the private network; rtcd exports rtcd_* metrics, which this dashboard does not show.")),
            ("tags", .array([.string("callsctl"), .string("webrtc"), .string("calls")])),
            ("editable", .bool(true)),
            ("graphTooltip", .int(1)),
            ("timezone", .string("browser")),
            ("refresh", .string("30s")),
            ("time", .object([("from", .string("now-6h")), ("to", .string("now"))])),
            ("schemaVersion", .int(schemaVersion)),
            ("version", .int(1)),
            ("annotations", .object([("list", .array([]))])),
            ("links", .array([])),
            ("templating", .object([("list", .array([
                .object([
                    ("name", .string("datasource")), ("label", .string("Prometheus")), ("type", .string("datasource")),
                    ("query", .string("prometheus")), ("current", .object([])), ("hide", .int(0)), ("includeAll", .bool(false)),
                    ("multi", .bool(false)), ("options", .array([])), ("refresh", .int(1)), ("regex", .string("")),
                ]),
                .object([
                    ("name", .string("instance")), ("label", .string("Media node")), ("type", .string("query")),
                    ("datasource", source), ("definition", .string(instances)),
                    ("query", .object([("query", .string(instances)), ("refId", .string("instances"))])),
                    ("current", .object([])), ("hide", .int(0)), ("includeAll", .bool(true)), ("allValue", .string(".*")),
                    ("multi", .bool(true)), ("options", .array([])), ("refresh", .int(2)), ("regex", .string("")), ("sort", .int(1)),
                ]),
            ]))])),
            ("panels", .array(laidOut)),
        ])
    }

    private static func target(_ q: Query, refID: String) -> JSON {
        .object([
            ("datasource", source), ("expr", .string(q.expr)), ("legendFormat", .string(q.legend)), ("refId", .string(refID)),
            ("range", .bool(true)),
        ])
    }

    /// JSON with object keys in the order given, so the file reads (and diffs) in a stable order.
    enum JSON {
        case string(String)
        case int(Int)
        case bool(Bool)
        case array([JSON])
        case object([(String, JSON)])

        func rendered(indent: Int = 0) -> String {
            let pad = String(repeating: "  ", count: indent + 1)
            let close = String(repeating: "  ", count: indent)
            switch self {
            case .string(let s): return Render.json(s)
            case .int(let n): return String(n)
            case .bool(let b): return b ? "true" : "false"
            case .array(let items):
                if items.isEmpty { return "[]" }
                // Short lists of scalars stay on one line.
                if items.allSatisfy({ if case .string = $0 { true } else { false } }), items.count <= 4 {
                    return "[" + items.map { $0.rendered() }.joined(separator: ", ") + "]"
                }
                return "[\n" + items.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n\(close)]"
            case .object(let fields):
                if fields.isEmpty { return "{}" }
                return "{\n" + fields.map { pad + Render.json($0.0) + ": " + $0.1.rendered(indent: indent + 1) }.joined(separator: ",\n")
                    + "\n\(close)}"
            }
        }
    }
}
