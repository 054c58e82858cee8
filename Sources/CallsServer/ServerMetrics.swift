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
    /// Seconds since 1970 when the process started.
    public let processStart: Double

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

    public var signalingConnections: Int { lock.withLock { connections } }

    /// The exposition text (format 0.0.4) for `media` plus this object's counters.
    public func prometheusText(media: MediaBackendMetrics, build version: String) -> String {
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
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [
            ("", Self.format(processStart))
        ])
        return out
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
