import CoreMetrics
import Foundation
import Prometheus

/// The metrics of `/metrics`. What the API side records (signaling connections, joins, handshake times, WebSocket
/// messages, signaling errors, closed sessions) goes through swift-metrics into a swift-prometheus registry of its
/// own. The media backend's packet-path counters stay plain fields of the media thread (no lock on the forwarding
/// path): they are read at scrape time, set into the registry's families where they share one (rtcd's connection
/// states and errors), and rendered after the registry's part.
public final class ServerMetrics: @unchecked Sendable {
    // @unchecked: every mutable field is read and written only while `lock` is held; the swift-metrics handles
    // and the registry are thread-safe.
    private let lock = NSLock()
    /// Upper bounds of the handshake histogram, in seconds (offer received → DTLS connected).
    public static let handshakeBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// The registry the API side's metrics live in (one per server, so that tests can run several).
    public let registry = PrometheusCollectorRegistry()
    private let factory: HelpfulPrometheusFactory
    private let joinsOK: CoreMetrics.Counter
    private let joinsRefused: CoreMetrics.Counter
    private let handshakes: CoreMetrics.Recorder
    private let connectionTime: CoreMetrics.Recorder
    private let connected: CoreMetrics.Counter
    private let closed: CoreMetrics.Counter
    private let signalingErrorCount: CoreMetrics.Counter
    private let signalingGauge: CoreMetrics.Gauge
    private let webSocketGauge: CoreMetrics.Gauge
    private var connections = 0
    private var messageCounters: [String: CoreMetrics.Counter] = [:]
    /// Seconds since 1970 when the process started.
    public let processStart: Double
    /// Open API connections and the ones refused or closed by a deadline (see ``APIConnectionLimits``).
    let apiConnections = ConnectionCounter()

    public init(processStart: Date = ProcessStart.date) {
        self.processStart = processStart.timeIntervalSince1970
        let factory = HelpfulPrometheusFactory(
            registry: registry,
            help: [
                "callsctl_joins_total": "Join requests by result.",
                "callsctl_handshake_seconds": "Time from a client's offer to DTLS connected.",
                "callsctl_signaling_connections": "WebSocket signaling connections open now.",
                "rtcd_rtc_connection_time": "Time to establish an RTC connection (offer to DTLS connected), in seconds",
                "rtcd_rtc_conn_states_total": "Total number of RTC connection state changes",
                "rtcd_rtc_errors_total": "Total number of RTC related errors",
                "rtcd_ws_connections_total": "Total number of active WebSocket sessions",
                "rtcd_ws_messages_total": "Total number of sent/received WebSocket messages",
            ],
            buckets: ["callsctl_handshake_seconds": Self.handshakeBuckets, "rtcd_rtc_connection_time": Self.handshakeBuckets])
        self.factory = factory
        let group = [("groupID", Self.rtcdGroup)]
        let client = ("clientID", Self.rtcdGroup)
        joinsOK = CoreMetrics.Counter(label: "callsctl_joins_total", dimensions: [("result", "ok")], factory: factory)
        joinsRefused = CoreMetrics.Counter(label: "callsctl_joins_total", dimensions: [("result", "refused")], factory: factory)
        handshakes = CoreMetrics.Recorder(label: "callsctl_handshake_seconds", dimensions: [], aggregate: true, factory: factory)
        connectionTime = CoreMetrics.Recorder(label: "rtcd_rtc_connection_time", dimensions: group, aggregate: true, factory: factory)
        connected = CoreMetrics.Counter(label: "rtcd_rtc_conn_states_total", dimensions: [("type", "connected")], factory: factory)
        closed = CoreMetrics.Counter(label: "rtcd_rtc_conn_states_total", dimensions: [("type", "closed")], factory: factory)
        signalingErrorCount = CoreMetrics.Counter(label: "rtcd_rtc_errors_total", dimensions: group + [("type", "signaling")], factory: factory)
        signalingGauge = CoreMetrics.Gauge(label: "callsctl_signaling_connections", dimensions: [], factory: factory)
        webSocketGauge = CoreMetrics.Gauge(label: "rtcd_ws_connections_total", dimensions: [client], factory: factory)
        signalingGauge.record(0)
        webSocketGauge.record(0)
        _ = messageCounter(direction: "out", type: "reply")
        _ = messageCounter(direction: "in", type: "join")
        joinsOK.increment(by: 0)
        joinsRefused.increment(by: 0)
        signalingErrorCount.increment(by: 0)
        connected.increment(by: 0)
        closed.increment(by: 0)
        mergeMediaFigures(MediaBackendMetrics())
    }

    public func observeHandshake(seconds: Double) {
        handshakes.record(seconds)
        connectionTime.record(seconds)
        connected.increment()
    }

    func connectionOpened() { setConnections(lock.withLock { connections += 1; return connections }) }
    func connectionClosed() { setConnections(lock.withLock { connections -= 1; return connections }) }

    private func setConnections(_ n: Int) {
        signalingGauge.record(n)
        webSocketGauge.record(n)
    }

    func join(result: String) { result == "ok" ? joinsOK.increment() : joinsRefused.increment() }
    func signalingError() { signalingErrorCount.increment() }
    func mediaSessionClosed() { closed.increment() }
    func webSocketMessage(direction: String, type: String) { messageCounter(direction: direction, type: type).increment() }

    private func messageCounter(direction: String, type: String) -> CoreMetrics.Counter {
        lock.withLock {
            let key = direction + "/" + type
            if let c = messageCounters[key] { return c }
            let c = CoreMetrics.Counter(
                label: "rtcd_ws_messages_total", dimensions: [("clientID", Self.rtcdGroup), ("direction", direction), ("type", type)],
                factory: factory)
            messageCounters[key] = c
            return c
        }
    }

    /// The media side's part of the registry's families (rtcd's connection states and errors), set from the
    /// backend's plain fields at scrape time.
    private func mergeMediaFigures(_ media: MediaBackendMetrics) {
        let group = [("groupID", Self.rtcdGroup)]
        func set(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
            let counter = registry.makeCounter(name: name, labels: labels, help: factory.help[name] ?? "")
            counter.reset()
            counter.increment(by: Int64(clamping: value))
        }
        set("rtcd_rtc_conn_states_total", [("type", "disconnected")], 0)
        set("rtcd_rtc_conn_states_total", [("type", "failed")], media.iceFailures + media.dtlsFailures)
        set("rtcd_rtc_errors_total", group + [("type", "signaling_lock_timeout")], 0)
        set("rtcd_rtc_errors_total", group + [("type", "ice")], media.iceFailures)
        set("rtcd_rtc_errors_total", group + [("type", "rtp")], media.sendErrors + media.sendBufferFull)
        set("rtcd_rtc_errors_total", group + [("type", "track")], UInt64(media.rejectedSections.values.reduce(0, +)))
    }

    public var signalingConnections: Int { lock.withLock { connections } }

    /// The exposition text (format 0.0.4) for `media` plus this object's counters.
    /// Calls with their own series in the per-call gauges; the rest are summed under `call="other"`, so the
    /// number of series stays bounded however many calls run.
    public static let maximumLabelledCalls = 20

    public func prometheusText(media: MediaBackendMetrics, build version: String) -> String {
        prometheusText(media: media, build: version, calls: ControlCallFigures())
    }

    func prometheusText(media: MediaBackendMetrics, build version: String, calls: ControlCallFigures) -> String {
        mergeMediaFigures(media)
        var out = registry.emitToString()
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (suffix, value) in samples { out += "\(name)\(suffix) \(value)\n" }
        }
        metric("callsctl_build_info", "gauge", "Always 1; the version label says which callsctl runs.", [
            ("{version=\"\(version)\"}", "1")
        ])
        metric("callsctl_sessions", "gauge", "Media sessions open now.", [("", "\(media.sessions)")])
        metric("callsctl_packets_total", "counter", "Media packets (STUN, DTLS, RTP, RTCP) by direction.", [
            ("{direction=\"in\"}", "\(media.packetsIn)"), ("{direction=\"out\"}", "\(media.packetsOut)"),
        ])
        metric("callsctl_bytes_total", "counter", "Media bytes by direction.", [
            ("{direction=\"in\"}", "\(media.bytesIn)"), ("{direction=\"out\"}", "\(media.bytesOut)"),
        ])
        metric("callsctl_dropped_packets_total", "counter", "Media packets dropped (unknown source, failed checks, full queues).", [
            ("", "\(media.droppedPackets)")
        ])
        metric("callsctl_dtls_failures_total", "counter", "DTLS handshakes that failed.", [("", "\(media.dtlsFailures)")])
        metric("callsctl_ice_failures_total", "counter", "ICE sessions that failed or lost consent.", [("", "\(media.iceFailures)")])
        let api = apiConnections.snapshot
        metric("callsctl_api_connections", "gauge", "TCP connections open on the API port now (HTTP and WebSocket).", [
            ("", "\(api.open)")
        ])
        metric("callsctl_api_connections_refused_total", "counter", "API connections refused at a limit: api.max_connections (total) or api.max_connections_per_address.", [
            ("{reason=\"total\"}", "\(api.refusedTotal)"), ("{reason=\"per_address\"}", "\(api.refusedPerAddress)"),
        ])
        metric("callsctl_api_connection_timeouts_total", "counter", "API connections closed by a deadline: no request head in time (header), idle keep-alive (idle), WebSocket in no call (join).", [
            ("{kind=\"header\"}", "\(api.timedOut["header", default: 0])"), ("{kind=\"idle\"}", "\(api.timedOut["idle", default: 0])"),
            ("{kind=\"join\"}", "\(api.timedOut["join", default: 0])"),
        ])
        let speakers = media.calls.reduce(0) { $0 + $1.speakers }
        metric("callsctl_calls", "gauge", "Calls running now (channels with at least one participant).", [
            ("", "\(calls.participants.count)")
        ])
        metric("callsctl_participants", "gauge", "Participants joined to calls now (echo tests excluded).", [
            ("", "\(calls.participants.values.reduce(0, +))")
        ])
        metric("callsctl_speakers", "gauge", "Unmuted participants whose audio was forwarded in the last two seconds.", [
            ("", "\(speakers)")
        ])
        metric("callsctl_presenters", "gauge", "Participants sharing a screen now.", [("", "\(calls.presenters)")])
        metric("callsctl_forwarded_packets_total", "counter", "RTP packets forwarded to participants, by kind (one per receiver).", [
            ("{kind=\"audio\"}", "\(media.audioPacketsForwarded)"), ("{kind=\"video\"}", "\(media.videoPacketsForwarded)"),
        ])
        metric("callsctl_forwarded_bytes_total", "counter", "Bytes of forwarded RTP packets after SRTP.", [
            ("", "\(media.bytesForwarded)")
        ])
        metric("callsctl_muted_dropped_packets_total", "counter", "Audio packets of muted participants dropped at the server.", [
            ("", "\(media.mutedDropped)")
        ])
        metric("callsctl_send_failures_total", "counter", "UDP datagrams not sent: refused by the kernel (a firewall rule, no route) or dropped with the send buffer full.", [
            ("{reason=\"refused\"}", "\(media.sendErrors)"), ("{reason=\"buffer_full\"}", "\(media.sendBufferFull)"),
        ])
        metric("callsctl_udp_receive_buffer_bytes", "gauge", "Receive buffer of the media UDP socket as the kernel granted it (serve asks for 16 MiB; raise net.core.rmem_max if this is less).", [
            ("", "\(media.udpReceiveBufferBytes)")
        ])
        metric("callsctl_udp_receive_drops_total", "counter", "Datagrams the kernel dropped at the media UDP socket because its receive buffer was full.", [
            ("", "\(media.udpReceiveDrops)")
        ])
        metric("callsctl_nacks_total", "counter", "Generic NACK feedback packets received from receivers.", [("", "\(media.nacksReceived)")])
        metric("callsctl_retransmitted_packets_total", "counter", "Packets resent from the retransmission buffer after a NACK.", [
            ("", "\(media.packetsRetransmitted)")
        ])
        metric("callsctl_keyframe_requests_total", "counter", "PLI/FIR from viewers, by what happened to them.", [
            ("{result=\"forwarded\"}", "\(media.keyFrameRequestsForwarded)"),
            ("{result=\"rate_limited\"}", "\(media.keyFrameRequestsLimited)"),
        ])
        metric("callsctl_rtcp_sent_total", "counter", "RTCP the server sends to publishers, by type.", [
            ("{type=\"receiver_report\"}", "\(media.receiverReportsSent)"), ("{type=\"remb\"}", "\(media.rembSent)"),
        ])
        // Every reason is listed (0 until it happens), so alerts can name the series before the first rejection.
        metric("callsctl_offer_sections_rejected_total", "counter", "Media sections of client offers the server answered with port 0, by reason.", [
            "not_bundled", "no_opus", "no_vp8", "unsupported_media",
        ].map { ("{reason=\"\($0)\"}", "\(media.rejectedSections[$0] ?? 0)") })
        if !media.forwardLatencyBounds.isEmpty, media.forwardLatencyCounts.count == media.forwardLatencyBounds.count + 1 {
            var samples: [(String, String)] = []
            var cumulative: UInt64 = 0
            for (i, bound) in media.forwardLatencyBounds.enumerated() {
                cumulative += media.forwardLatencyCounts[i]
                samples.append(("_bucket{le=\"\(Self.format(bound))\"}", "\(cumulative)"))
            }
            cumulative += media.forwardLatencyCounts[media.forwardLatencyBounds.count]
            samples.append(("_bucket{le=\"+Inf\"}", "\(cumulative)"))
            samples.append(("_sum", Self.format(media.forwardLatencySum)))
            samples.append(("_count", "\(cumulative)"))
            metric("callsctl_forward_latency_seconds", "histogram", "Time from receiving an RTP packet to sending it on to a receiver.", samples)
        }
        // Per-call gauges: the largest calls by name, the rest together, so cardinality stays bounded.
        let ranked = calls.participants.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        let named = ranked.prefix(Self.maximumLabelledCalls)
        let rest = ranked.dropFirst(Self.maximumLabelledCalls)
        let mediaByKey = Dictionary(media.calls.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var perCallParticipants: [(String, String)] = []
        var perCallSpeakers: [(String, String)] = []
        var perCallLost: [(String, String)] = []
        for (channel, count) in named {
            let label = "{call=\"\(Self.labelValue(channel))\"}"
            perCallParticipants.append((label, "\(count)"))
            perCallSpeakers.append((label, "\(mediaByKey[channel]?.speakers ?? 0)"))
            perCallLost.append((label, "\(mediaByKey[channel]?.listenerReportedLost ?? 0)"))
        }
        if !rest.isEmpty {
            perCallParticipants.append(("{call=\"other\"}", "\(rest.reduce(0) { $0 + $1.value })"))
            perCallSpeakers.append(("{call=\"other\"}", "\(rest.reduce(0) { $0 + (mediaByKey[$1.key]?.speakers ?? 0) })"))
            perCallLost.append(("{call=\"other\"}", "\(rest.reduce(Int64(0)) { $0 + (mediaByKey[$1.key]?.listenerReportedLost ?? 0) })"))
        }
        metric("callsctl_call_participants", "gauge", "Participants per call: the \(Self.maximumLabelledCalls) largest calls by channel id, the rest as call=\"other\".", perCallParticipants)
        metric("callsctl_call_speakers", "gauge", "Active speakers per call, labelled as callsctl_call_participants.", perCallSpeakers)
        metric(
            "callsctl_call_listener_lost_packets", "gauge",
            "Audio packets the call's listeners reported lost on their audio slots (RTCP cumulative loss), labelled as callsctl_call_participants.",
            perCallLost)
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [
            ("", Self.format(processStart))
        ])
        // The standard process metrics, so a remote `callsctl loadtest` (or Prometheus) can follow the server's cost.
        let process = ProcessSample.current
        if let cpu = process.cpuSeconds {
            metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [("", Self.format(cpu))])
        }
        if let rss = process.residentBytes {
            metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", "\(rss)")])
        }
        out += rtcdCompatibleText(media: media, calls: calls, process: process, audioSlots: audioSlots)
        return out
    }

    /// The label value rtcd puts in `groupID` and `clientID` (its chat-server installation); serve has one.
    public static let rtcdGroup = "callsctl"

    /// Audio streams each participant receives (the server's `limits.audio_slots`), for the outgoing track count.
    public var audioSlots: Int {
        get { lock.withLock { slots } }
        set { lock.withLock { slots = newValue } }
    }
    private var slots = 3

    /// The same figures under rtcd's names, types and labels (rtcd `service/perf/metrics.go`), so that rtcd's
    /// Grafana dashboard (ID 23225) and alerts read a `serve` as they read an rtcd. Where serve has no such data
    /// (client stats come over rtcd's data channel, which serve has not) the histograms are there and empty.
    func rtcdCompatibleText(media: MediaBackendMetrics, calls: ControlCallFigures, process: ProcessFigures, audioSlots: Int) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (suffix, value) in samples { out += "\(name)\(suffix) \(value)\n" }
        }
        let group = "groupID=\"\(Self.rtcdGroup)\""
        /// A histogram serve has no observations for (rtcd fills it from data serve does not get): its buckets at 0.
        func emptyHistogram(_ name: String, _ help: String, labels extra: String = "", bounds: [Double]) {
            let labels = group + extra
            var samples = (bounds.map { Self.format($0) } + ["+Inf"]).map { ("_bucket{\(labels),le=\"\($0)\"}", "0") }
            samples += [("_sum{\(labels)}", "0"), ("_count{\(labels)}", "0")]
            metric(name, "histogram", help, samples)
        }
        metric("rtcd_rtc_sessions_total", "gauge", "Total number of active RTC sessions", [("{\(group)}", "\(media.sessions)")])
        // Tracks: every participant publishes a microphone, a presenter a screen; each receives up to `audioSlots`
        // of the others' audio and the screen of the call.
        var audioOut = 0
        for (_, n) in calls.participants { audioOut += n * min(max(n - 1, 0), audioSlots) }
        let participants = calls.participants.values.reduce(0, +)
        metric("rtcd_rtc_rtp_tracks_total", "gauge", "Total number of active RTP tracks", [
            ("{\(group),direction=\"in\",type=\"audio\"}", "\(participants)"),
            ("{\(group),direction=\"in\",type=\"screen\"}", "\(calls.presenters)"),
            ("{\(group),direction=\"out\",type=\"audio\"}", "\(audioOut)"),
            ("{\(group),direction=\"out\",type=\"screen\"}", "\(calls.presenterViewers)"),
        ])
        let latency = [0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.4, 0.5, 0.75, 1]
        let loss = [0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1]
        emptyHistogram("rtcd_rtc_rtp_tracks_writes_time", "Time taken to write to RTP tracks (not measured by callsctl; see callsctl_forward_latency_seconds)", labels: ",type=\"audio\"", bounds: latency)
        emptyHistogram("rtcd_rtc_client_loss_rate", "Client loss rate (not reported to callsctl: rtcd gets it over a data channel)", bounds: loss)
        emptyHistogram("rtcd_rtc_client_rtt", "Client round trip time (not reported to callsctl)", bounds: latency)
        emptyHistogram("rtcd_rtc_client_jitter", "Client latency jitter (not reported to callsctl)", bounds: latency)
        if let cpu = process.cpuSeconds {
            metric("rtcd_process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [("", Self.format(cpu))])
        }
        if let rss = process.residentBytes {
            metric("rtcd_process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", "\(rss)")])
        }
        if let virtual = process.virtualBytes {
            metric("rtcd_process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [("", "\(virtual)")])
        }
        if let fds = process.openFileDescriptors {
            metric("rtcd_process_open_fds", "gauge", "Number of open file descriptors.", [("", "\(fds)")])
        }
        if let max = process.maxFileDescriptors {
            metric("rtcd_process_max_fds", "gauge", "Maximum number of open file descriptors.", [("", "\(max)")])
        }
        metric("rtcd_process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [("", Self.format(processStart))])
        return out
    }

    /// A label value with `\`, `"` and newlines escaped (exposition format).
    static func labelValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(format: "%.6f", d).replacingOccurrences(of: #"0+$"#, with: "", options: .regularExpression)
    }
}

/// When this process started (first use of the type, which `serve` touches at launch; refined from
/// /proc/self/stat on Linux).
public enum ProcessStart {
    public static let date: Date = {
        #if os(Linux)
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // Field 22 (starttime) is the 20th after the command name; in clock ticks since boot.
            if fields.count > 19, let ticks = Double(fields[19]),
                let uptimeText = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
                let uptime = Double(uptimeText.split(separator: " ").first ?? "")
            {
                let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
                if hz > 0 { return Date(timeIntervalSinceNow: -(uptime - ticks / hz)) }
            }
        }
        #endif
        return Date()
    }()
}

/// What `/version` reports.
public struct VersionInfo: Sendable, Equatable {
    public var version: String
    public var buildDate: String
    public var buildHash: String

    public init(version: String, buildDate: String = "", buildHash: String = "") {
        self.version = version
        self.buildDate = buildDate
        self.buildHash = buildHash
    }

    var json: String {
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "unknown"
        #endif
        #if os(Linux)
        let os = "linux"
        #else
        let os = "darwin"
        #endif
        #if compiler(>=6.3)
        let swift = "6.3+"
        #elseif compiler(>=6.2)
        let swift = "6.2"
        #else
        let swift = "6.1"
        #endif
        return "{\"version\":\(jsonQuote(version)),\"buildVersion\":\(jsonQuote(version)),\"buildDate\":\(jsonQuote(buildDate)),"
            + "\"buildHash\":\(jsonQuote(buildHash)),\"swiftVersion\":\(jsonQuote(swift)),"
            + "\"os\":\(jsonQuote(os)),\"arch\":\(jsonQuote(arch))}"
    }
}
