import Testing

@testable import CallsServer

@Suite struct CallMetricsTests {
    @Test func perCallGaugesStayBounded() {
        var calls = ControlCallFigures()
        for i in 0..<25 { calls.participants["channel\(i)"] = i + 1 }
        calls.presenters = 2
        var media = MediaBackendMetrics()
        media.calls = [MediaCallFigures(key: "channel24", participants: 25, speakers: 3, presenters: 1, packetsForwarded: 9)]
        media.audioPacketsForwarded = 7
        media.keyFrameRequestsLimited = 4
        media.forwardLatencyBounds = [0.0001, 0.001]
        media.forwardLatencyCounts = [5, 2, 1]
        media.forwardLatencySum = 0.004
        let text = ServerMetrics().prometheusText(media: media, build: "1", calls: calls)
        let lines = text.split(separator: "\n").map(String.init)
        let perCall = lines.filter { $0.hasPrefix("callsctl_call_participants{") }
        #expect(perCall.count == ServerMetrics.maximumLabelledCalls + 1)
        #expect(perCall.first == "callsctl_call_participants{call=\"channel24\"} 25")
        // The five smallest calls (1...5 participants) are summed as "other".
        #expect(perCall.last == "callsctl_call_participants{call=\"other\"} 15")
        #expect(lines.contains("callsctl_call_speakers{call=\"channel24\"} 3"))
        #expect(lines.contains("callsctl_calls 25"))
        #expect(lines.contains("callsctl_participants 325"))
        #expect(lines.contains("callsctl_speakers 3"))
        #expect(lines.contains("callsctl_presenters 2"))
        #expect(lines.contains("callsctl_forwarded_packets_total{kind=\"audio\"} 7"))
        #expect(lines.contains("callsctl_keyframe_requests_total{result=\"rate_limited\"} 4"))
        #expect(lines.contains("callsctl_forward_latency_seconds_bucket{le=\"0.0001\"} 5"))
        #expect(lines.contains("callsctl_forward_latency_seconds_bucket{le=\"0.001\"} 7"))
        #expect(lines.contains("callsctl_forward_latency_seconds_bucket{le=\"+Inf\"} 8"))
        #expect(lines.contains("callsctl_forward_latency_seconds_count 8"))
    }

    @Test func labelValuesAreEscaped() {
        #expect(ServerMetrics.labelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
    }
}
