import Foundation
import Testing

@testable import CallsServer

@Suite struct HTTPRouteTests {
    @Test func healthAndVersion() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let health = try await httpRequest(port: s.port, "/healthz")
        #expect(health.status == 200)
        #expect(health.headers["content-type"] == "application/json; charset=utf-8")
        let version = try await httpRequest(port: s.port, "/version")
        #expect(version.status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(version.body.utf8)) as? [String: Any])
        #expect(json["version"] as? String == "9.8.7")
        #expect(json["buildVersion"] as? String == "9.8.7")
        #expect(json["buildHash"] as? String == "abc")
    }

    @Test func readinessFollowsBackendAndDrain() async throws {
        let backend = FakeBackend()
        backend.bound = false
        let s = try await RunningServer.start(backend: backend)
        defer { Task { await s.server.shutdown() } }
        #expect(try await httpRequest(port: s.port, "/readyz").status == 503)
        backend.bound = true
        let ready = try await httpRequest(port: s.port, "/readyz")
        #expect(ready.status == 200)
        #expect(ready.body.contains("\"ready\""))
        s.server.drain()
        let draining = try await httpRequest(port: s.port, "/readyz")
        #expect(draining.status == 503)
        #expect(draining.body.contains("draining"))
        #expect(try await httpRequest(port: s.port, "/healthz").status == 200)
    }

    @Test func unknownPathsAndMethods() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let missing = try await httpRequest(port: s.port, "/nope")
        #expect(missing.status == 404)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(missing.body.utf8)) as? [String: String])
        #expect(body["error"] == "not_found")
        #expect(body["message"]?.contains("/nope") == true)
        let post = try await httpRequest(port: s.port, "/healthz", method: "POST", extraHeaders: "Content-Length: 0\r\n")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        let ws = try await httpRequest(port: s.port, "/ws")
        #expect(ws.status == 426)
        #expect(ws.body.contains("websocket_required"))
    }

    @Test func indexPage() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        let page = try await httpRequest(port: s.port, "/?token=abc")
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.body.contains("test page"))
    }

    @Test func bundledIndexExposesResultToAutomation() throws {
        let html = try #require(IndexPage.load(), "index.html not found next to the test binary")
        #expect(html.contains("window.callsctlResult"))
        #expect(html.contains("document.title"))
        #expect(html.contains("\"join\""))
    }

    @Test func metricsAreValidPrometheusText() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.server.shutdown() } }
        s.server.metrics.observeHandshake(seconds: 0.3)
        s.server.metrics.observeHandshake(seconds: 20)
        let r = try await httpRequest(port: s.port, "/metrics")
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let samples = try PrometheusText.parse(r.body)
        #expect(samples["callsctl_sessions"] == 2)
        #expect(samples["callsctl_packets_total{direction=\"in\"}"] == 10)
        #expect(samples["callsctl_packets_total{direction=\"out\"}"] == 9)
        #expect(samples["callsctl_bytes_total{direction=\"in\"}"] == 1000)
        #expect(samples["callsctl_dtls_failures_total"] == 1)
        #expect(samples["callsctl_ice_failures_total"] == 3)
        #expect(samples["callsctl_handshake_seconds_bucket{le=\"0.25\"}"] == 0)
        #expect(samples["callsctl_handshake_seconds_bucket{le=\"0.5\"}"] == 1)
        #expect(samples["callsctl_handshake_seconds_bucket{le=\"+Inf\"}"] == 2)
        #expect(samples["callsctl_handshake_seconds_count"] == 2)
        #expect(abs((samples["callsctl_handshake_seconds_sum"] ?? 0) - 20.3) < 1e-6)
        let start = try #require(samples["process_start_time_seconds"])
        #expect(abs(start - Date().timeIntervalSince1970) < 3600)
    }
}

/// A line-by-line checker of the text exposition format: HELP and TYPE precede each family's samples,
/// TYPE is known, sample names belong to the declared family, values parse.
enum PrometheusText {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        var helped = Set<String>()
        var types: [String: String] = [:]
        var current: String?
        #expect(text.hasSuffix("\n"))
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count == 4 else { throw Problem(description: "HELP without text: \(line)") }
                helped.insert(String(parts[2]))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3]))
                else { throw Problem(description: "bad TYPE line: \(line)") }
                let name = String(parts[2])
                guard helped.contains(name) else { throw Problem(description: "TYPE before HELP for \(name)") }
                guard types[name] == nil else { throw Problem(description: "TYPE twice for \(name)") }
                types[name] = String(parts[3])
                current = name
            } else if line.hasPrefix("#") || line.isEmpty {
                throw Problem(description: "unexpected line: \(line)")
            } else {
                guard let space = line.lastIndex(of: " ") else { throw Problem(description: "no value: \(line)") }
                let key = String(line[..<space])
                let valueText = line[line.index(after: space)...]
                guard let value = Double(valueText) else { throw Problem(description: "bad value: \(line)") }
                let name = String(key.prefix { $0 != "{" })
                guard name.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*$"#, options: .regularExpression) != nil else {
                    throw Problem(description: "bad metric name: \(name)")
                }
                guard let family = current,
                    name == family || (types[family] == "histogram" && ["_bucket", "_sum", "_count"].map { family + $0 }.contains(name))
                else { throw Problem(description: "sample \(name) outside its family") }
                if types[family] == "counter" && value < 0 { throw Problem(description: "negative counter: \(line)") }
                samples[key] = value
            }
        }
        return samples
    }
}
