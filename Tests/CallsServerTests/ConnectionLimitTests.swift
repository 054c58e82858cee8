import Foundation
import Testing

@testable import CallsServer

/// The API port against clients that hold connections without using them: a request head must arrive in time, a
/// kept-alive connection may idle only so long, a signaling socket must join a call, and connections are capped in
/// total and per address with a 503 that says which limit. Deadlines are short here; every wait is bounded.
@Suite struct ConnectionLimitTests {
    /// `count` kept-alive connections from `source`, each past one answered request (so the server has accepted
    /// and counted it).
    static func holdConnections(_ count: Int, port: Int, from source: String) throws -> [TestSocket] {
        let held = try (0..<count).map { _ in try TestSocket(port: port, source: source) }
        for socket in held {
            try socket.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            _ = try socket.fill(waitingFor: "the answer on a held connection")
        }
        return held
    }

    static func metricsText(_ s: RunningServer) -> String {
        s.server.metrics.prometheusText(media: MediaBackendMetrics(), build: "test")
    }

    @Test func aSlowRequestHeadIsClosed() async throws {
        let s = try await RunningServer.start(configure: { $0.limits.headerTimeout = .milliseconds(300) })
        defer { Task { await s.server.shutdown() } }
        let rest = try await offPool { () -> [UInt8] in
            let socket = try TestSocket(port: s.port)
            // Half a request head, then nothing: a slow-header client. A starved test may only get to send after the
            // deadline; a reset is then the same answer (closed, nothing sent back).
            do {
                try socket.send(Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8))
                return try socket.readUntilEOF(waitingFor: "the server to close a connection with half a request head")
            } catch let error as SocketError where error.description.contains("reset") || error.description.contains("pipe") {
                return []
            }
        }
        #expect(rest.isEmpty, "\(String(decoding: rest, as: UTF8.self))")
        #expect(Self.metricsText(s).contains("callsctl_api_connection_timeouts_total{kind=\"header\"} 1"))
        // The server still answers a whole request.
        #expect(try await httpRequest(port: s.port, "/healthz").status == 200)
    }

    @Test func anIdleKeptAliveConnectionIsClosed() async throws {
        let s = try await RunningServer.start(configure: { $0.limits.idleTimeout = .milliseconds(300) })
        defer { Task { await s.server.shutdown() } }
        let raw = try await offPool {
            let socket = try TestSocket(port: s.port)
            try socket.send(Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            return try socket.readUntilEOF(waitingFor: "the response, then the close of the idle connection")
        }
        let text = String(decoding: raw, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
        #expect(Self.metricsText(s).contains("callsctl_api_connection_timeouts_total{kind=\"idle\"} 1"))
    }

    @Test func connectionsPerAddressAreCappedWithAClearRefusal() async throws {
        let s = try await RunningServer.start(configure: { $0.limits.maxConnectionsPerAddress = 3 })
        defer { Task { await s.server.shutdown() } }
        try await offPool {
            // Three idle connections from 127.0.0.2 (connected: the server has accepted them once a request answers).
            var held = try Self.holdConnections(3, port: s.port, from: "127.0.0.2")
            let fourth = try TestSocket(port: s.port, source: "127.0.0.2")
            let refusal = String(decoding: try fourth.readUntilEOF(waitingFor: "the refusal of a 4th connection"), as: UTF8.self)
            #expect(refusal.hasPrefix("HTTP/1.1 503"), "\(refusal)")
            #expect(refusal.contains("127.0.0.2 has 3 API connections open, the limit per address (api.max_connections_per_address)"), "\(refusal)")
            #expect(refusal.contains("Retry-After: 10"), "\(refusal)")
            // Another address is not held back.
            let other = try TestSocket(port: s.port, source: "127.0.0.1")
            try other.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            let answer = String(decoding: try other.readUntilEOF(), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            // Closing one makes room again (the server notices the close before the next accept: bounded retries).
            held.removeFirst()
            var admitted = false
            for _ in 0..<200 where !admitted {
                let again = try TestSocket(port: s.port, source: "127.0.0.2")
                try? again.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
                admitted = String(decoding: try again.readUntilEOF(), as: UTF8.self).hasPrefix("HTTP/1.1 200")
                if !admitted { usleep(10_000) }
            }
            #expect(admitted)
            _ = held
        }
        let text = Self.metricsText(s)
        #expect(text.contains("callsctl_api_connections_refused_total{reason=\"per_address\"}"), "\(text)")
        #expect(!text.contains("callsctl_api_connections_refused_total{reason=\"per_address\"} 0"), "\(text)")
    }

    @Test func connectionsAreCappedInTotal() async throws {
        let s = try await RunningServer.start(configure: { $0.limits.maxConnections = 2 })
        defer { Task { await s.server.shutdown() } }
        try await offPool {
            let held = try Self.holdConnections(2, port: s.port, from: "127.0.0.1")
            let third = try TestSocket(port: s.port, source: "127.0.0.3")
            let refusal = String(decoding: try third.readUntilEOF(waitingFor: "the refusal of a 3rd connection"), as: UTF8.self)
            #expect(refusal.hasPrefix("HTTP/1.1 503"), "\(refusal)")
            #expect(refusal.contains("the server has 2 API connections open, its limit (api.max_connections)"), "\(refusal)")
            _ = held
        }
        #expect(Self.metricsText(s).contains("callsctl_api_connections_refused_total{reason=\"total\"} 1"))
    }

    /// A signaling socket that never joins is closed with `join_timeout` and close code 1008, although it answers
    /// (here: would answer) every ping.
    @Test func aWebSocketThatNeverJoinsIsClosed() async throws {
        let s = try await RunningServer.start(configure: { $0.limits.joinTimeout = .milliseconds(400) })
        defer { Task { await s.server.shutdown() } }
        let ws = try await TestWebSocket(port: s.port)
        let message = try await ws.receive()
        #expect(message["type"] as? String == "error")
        #expect(message["code"] as? String == "join_timeout", "\(message)")
        let (opcode, payload) = try await ws.receiveFrame(waitingFor: "the close frame")
        #expect(opcode == 8)
        #expect(payload.count >= 2 && Int(payload[0]) << 8 | Int(payload[1]) == 1008)
        #expect(Self.metricsText(s).contains("callsctl_api_connection_timeouts_total{kind=\"join\"} 1"))
    }
}

/// At shutdown (the end of a drain) every signaling client gets `closed` and a WebSocket close (1001), not a bare
/// TCP close.
@Suite struct ShutdownCloseTests {
    @Test func clientsAreToldBeforeTheSocketCloses() async throws {
        let s = try await RunningServer.start()
        let ws = try await TestWebSocket(port: s.port)
        // The upgrade is answered; the server registers the connection as it adds the signaling handler.
        try await ws.send("{\"v\":2,\"type\":\"ping\"}")
        _ = try? await ws.receiveAny(waitingFor: "the answer to a first message")
        await s.server.shutdown()
        var sawClosed = false
        var closeCode: Int?
        for _ in 0..<10 where closeCode == nil {
            let (opcode, payload) = try await ws.receiveFrame(waitingFor: "closed, then the close frame")
            if opcode == 1, let text = String(bytes: payload, encoding: .utf8), text.contains("\"type\":\"closed\"") {
                sawClosed = text.contains("the server is shutting down")
            } else if opcode == 8 {
                closeCode = payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : -1
            }
        }
        #expect(sawClosed)
        #expect(closeCode == 1001)
    }
}
