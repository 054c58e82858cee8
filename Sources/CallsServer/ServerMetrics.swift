import Foundation

/// Counters the API side keeps itself (signaling connections, joins, handshake times), rendered
/// together with the media backend's counters in the Prometheus text format.
public final class ServerMetrics: @unchecked Sendable {
    // @unchecked: every mutable field is read and written only while `lock` is held.
    private let lock = NSLock()
    /// Upper bounds of the handshake histogram, in seconds (offer received → DTLS connected).
    public static let handshakeBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private var bucketCounts = [UInt64](repeating: 0, count: ServerMetrics.handshakeBuckets.count)
    private var handshakeCount: UInt64 = 0
    private var handshakeSum: Double = 0
    private var connections = 0
    private var joinsOK: UInt64 = 0
    private var joinsRefused: UInt64 = 0
    private var signalingErrors: UInt64 = 0
    private var sessionsClosed: UInt64 = 0
    /// WebSocket messages by direction, then type (client message types in; replies out).
    private var webSocketMessages: [String: [String: UInt64]] = [:]
    /// Seconds since 1970 when the process started.
    public let processStart: Double
    /// Open API connections and the ones refused or closed by a deadline (see ``APIConnectionLimits``).
    let apiConnections = ConnectionCounter()

    public init(processStart: Date = ProcessStart.date) {
        self.processStart = processStart.timeIntervalSince1970
    }

    public func observeHandshake(seconds: Double) {
        lock.withLock {
            handshakeCount += 1
            handshakeSum += seconds
            for (i, bound) in Self.handshakeBuckets.enumerated() where seconds <= bound { bucketCounts[i] += 1 }
        }
    }

    func connectionOpened() { lock.withLock { connections += 1 } }
    func connectionClosed() { lock.withLock { connections -= 1 } }
    func join(result: String) { lock.withLock { if result == "ok" { joinsOK += 1 } else { joinsRefused += 1 } } }

    func signalingError() { lock.withLock { signalingErrors += 1 } }
    func mediaSessionClosed() { lock.withLock { sessionsClosed += 1 } }
    func webSocketMessage(direction: String, type: String) { lock.withLock { webSocketMessages[direction, default: [:]][type, default: 0] += 1 } }

    public var signalingConnections: Int { lock.withLock { connections } }

    /// The exposition text (format 0.0.4) for `media` plus this object's counters.
    /// Calls with their own series in the per-call gauges; the rest are summed under `call="other"`, so the
    /// number of series stays bounded however many calls run.
    public static let maximumLabelledCalls = 20

    public func prometheusText(media: MediaBackendMetrics, build version: String) -> String {
        prometheusText(media: media, build: version, calls: ControlCallFigures())
    }

    func prometheusText(media: MediaBackendMetrics, build version: String, calls: ControlCallFigures) -> String {
        let snapshot = lock.withLock {
            (bucketCounts, handshakeCount, handshakeSum, connections, joinsOK, joinsRefused)
        }
        var out = ""
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
        metric("callsctl_signaling_connections", "gauge", "WebSocket signaling connections open now.", [("", "\(snapshot.3)")])
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
        metric("callsctl_joins_total", "counter", "Join requests by result.", [
            ("{result=\"ok\"}", "\(snapshot.4)"), ("{result=\"refused\"}", "\(snapshot.5)"),
        ])
        var histogram: [(String, String)] = []
        for (i, bound) in Self.handshakeBuckets.enumerated() {
            histogram.append(("_bucket{le=\"\(Self.format(bound))\"}", "\(snapshot.0[i])"))
        }
        histogram.append(("_bucket{le=\"+Inf\"}", "\(snapshot.1)"))
        histogram.append(("_sum", Self.format(snapshot.2)))
        histogram.append(("_count", "\(snapshot.1)"))
        metric("callsctl_handshake_seconds", "histogram", "Time from a client's offer to DTLS connected.", histogram)
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
        let snapshot = lock.withLock { (bucketCounts, handshakeCount, handshakeSum, connections, signalingErrors, sessionsClosed, webSocketMessages) }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (suffix, value) in samples { out += "\(name)\(suffix) \(value)\n" }
        }
        let group = "groupID=\"\(Self.rtcdGroup)\""
        func histogram(_ name: String, _ help: String, labels extra: String = "", bounds: [Double], counts: [UInt64], count: UInt64, sum: Double) {
            let labels = group + extra
            var samples: [(String, String)] = []
            for (i, bound) in bounds.enumerated() { samples.append(("_bucket{\(labels),le=\"\(Self.format(bound))\"}", "\(i < counts.count ? counts[i] : 0)")) }
            samples.append(("_bucket{\(labels),le=\"+Inf\"}", "\(count)"))
            samples.append(("_sum{\(labels)}", Self.format(sum)))
            samples.append(("_count{\(labels)}", "\(count)"))
            metric(name, "histogram", help, samples)
        }
        metric("rtcd_rtc_sessions_total", "gauge", "Total number of active RTC sessions", [("{\(group)}", "\(media.sessions)")])
        metric("rtcd_rtc_conn_states_total", "counter", "Total number of RTC connection state changes", [
            ("{type=\"connected\"}", "\(snapshot.1)"), ("{type=\"disconnected\"}", "0"),
            ("{type=\"failed\"}", "\(media.iceFailures + media.dtlsFailures)"), ("{type=\"closed\"}", "\(snapshot.5)"),
        ])
        metric("rtcd_rtc_errors_total", "counter", "Total number of RTC related errors", [
            ("{\(group),type=\"signaling\"}", "\(snapshot.4)"), ("{\(group),type=\"signaling_lock_timeout\"}", "0"),
            ("{\(group),type=\"ice\"}", "\(media.iceFailures)"), ("{\(group),type=\"rtp\"}", "\(media.sendErrors + media.sendBufferFull)"),
            ("{\(group),type=\"track\"}", "\(media.rejectedSections.values.reduce(0, +))"),
        ])
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
        histogram(
            "rtcd_rtc_connection_time", "Time to establish an RTC connection (offer to DTLS connected), in seconds",
            bounds: Self.handshakeBuckets, counts: snapshot.0, count: snapshot.1, sum: snapshot.2)
        let latency = [0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.4, 0.5, 0.75, 1]
        let loss = [0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1]
        histogram("rtcd_rtc_rtp_tracks_writes_time", "Time taken to write to RTP tracks (not measured by callsctl; see callsctl_forward_latency_seconds)", labels: ",type=\"audio\"", bounds: latency, counts: [], count: 0, sum: 0)
        histogram("rtcd_rtc_client_loss_rate", "Client loss rate (not reported to callsctl: rtcd gets it over a data channel)", bounds: loss, counts: [], count: 0, sum: 0)
        histogram("rtcd_rtc_client_rtt", "Client round trip time (not reported to callsctl)", bounds: latency, counts: [], count: 0, sum: 0)
        histogram("rtcd_rtc_client_jitter", "Client latency jitter (not reported to callsctl)", bounds: latency, counts: [], count: 0, sum: 0)
        let client = "clientID=\"\(Self.rtcdGroup)\""
        metric("rtcd_ws_connections_total", "gauge", "Total number of active WebSocket sessions", [("{\(client)}", "\(snapshot.3)")])
        var messages: [(String, String)] = []
        for direction in ["in", "out"] {
            let byType = snapshot.6[direction] ?? [:]
            let types = byType.isEmpty ? [direction == "in" ? "join" : "reply"] : byType.keys.sorted()
            for type in types {
                messages.append(("{\(client),direction=\"\(direction)\",type=\"\(Self.labelValue(type))\"}", "\(byType[type] ?? 0)"))
            }
        }
        metric("rtcd_ws_messages_total", "counter", "Total number of sent/received WebSocket messages", messages)
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
