import CallsMedia
import CallsTestSupport
import CallsWire
import Foundation
import Logging
import NIOCore
import Probes
import Testing

/// The media client's TURN client against a real coturn on loopback: a relayed echo call to `MediaServer` over each
/// transport to the TURN server, the allocation freed on close, refreshes, and refusals that say what was wrong.
@Suite(.serialized) struct MediaClientRelayTests {
    static func relay(_ coturn: Coturn, _ transport: TURNRelayConfiguration.Transport, secret: String? = nil)
        throws -> TURNRelayConfiguration
    {
        let port = transport == .tls ? coturn.tlsPort : coturn.port
        let (username, password) = TURNCredentials.restCredentials(
            secret: secret ?? coturn.secret, user: "relay-test", expiry: Date().addingTimeInterval(600))
        var relay = TURNRelayConfiguration(
            server: try SocketAddress(ipAddress: "127.0.0.1", port: Int(port)), transport: transport,
            username: username, password: password)
        relay.serverName = "localhost"
        relay.caFile = coturn.certFile
        return relay
    }

    /// Connects through the relay, sends 30 packets, and returns the connection and how many came back.
    static func echo(through relay: TURNRelayConfiguration, server: MediaServer, configure: (inout MediaClientConfiguration) -> Void = { _ in })
        async throws -> (MediaClientConnection, Int, MediaClient, String)
    {
        var config = MediaClientConfiguration()
        config.relay = relay
        configure(&config)
        let client = try MediaClient(configuration: config, logger: MediaTest.logger)
        let (id, answer) = try await server.createSession(offer: client.offer, label: "relay-\(relay.transport)")
        let connection = try await client.connect(answer: answer)
        let count = 30
        let collector = Task { () -> Int in
            var got = 0
            for await p in client.receivedAudio where p.payload.starts(with: Array("relayed".utf8)) {
                got += 1
                if got >= count { break }
            }
            return got
        }
        for i in 0..<count {
            client.sendAudio(payload: Array("relayed-\(i)".utf8) + [UInt8](repeating: 7, count: 60), timestamp: UInt32(i * 960))
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = await MediaTest.expectWithin("\(count) packets echoed through the relay") { await collector.value } ?? 0
        collector.cancel()
        return (connection, received, client, id)
    }

    @Test(arguments: [TURNRelayConfiguration.Transport.udp, .tcp, .tls])
    func echoThroughCoturn(_ transport: TURNRelayConfiguration.Transport) async throws {
        let coturn = try Coturn(extraArguments: ["--verbose"])
        // The SFU offers only UDP host candidates here, as the relayed leg is UDP.
        let server = try await MediaTest.server(tcpCandidates: false)
        defer { Task { await server.shutdown() } }
        let relay = try Self.relay(coturn, transport)
        let (connection, received, client, id) = try await Self.echo(through: relay, server: server)
        #expect(received == 30, "coturn log: \(coturn.log.suffix(1500))")
        #expect(connection.relayServer == "127.0.0.1:\(relay.server.port!) over \(transport.rawValue.uppercased())")
        let relayed = try #require(connection.relayedAddress)
        #expect(relayed.hasPrefix("127.0.0.1:"))
        // The SFU saw the relayed address, not the client's socket: the path really went through coturn.
        let seen = await MediaTest.waitForEvent(server, session: id, timeout: .seconds(30)) {
            if case .iceConnected = $0 { true } else { false }
        }
        #expect(seen == .iceConnected(transport: "udp", remote: relayed))
        if transport == .tls {
            // The test certificate is trusted through caFile and names localhost.
            #expect(connection.relayCertificateProblem == nil)
        }
        await client.close()
        // close() waited for coturn's answer to the Refresh with lifetime 0: the allocation is gone already.
        let log = coturn.log
        let released = log.range(of: "username=<\(relay.username)>, lifetime=0")
        #expect(released != nil, "coturn log: \(log.suffix(1500))")
        if let released {
            #expect(log[released.upperBound...].contains("incoming packet REFRESH processed, success"))
        }
    }

    @Test func refreshesKeepTheAllocationAndTheChannel() async throws {
        let coturn = try Coturn(extraArguments: ["--verbose"])
        let server = try await MediaTest.server(tcpCandidates: false)
        defer { Task { await server.shutdown() } }
        var relay = try Self.relay(coturn, .udp)
        relay.refreshInterval = .milliseconds(300)
        let username = relay.username
        let (_, received, client, _) = try await Self.echo(through: relay, server: server)
        #expect(received == 30)
        let refreshed = await MediaTest.expectWithin("two allocation refreshes") {
            // Stops when cancelled at the deadline (a swallowed cancellation would make this loop spin).
            while coturn.log.components(separatedBy: "refreshed, realm=<calls.test>, username=<\(username)>, lifetime=600").count < 3 {
                if Task.isCancelled { return false }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return true
        }
        #expect(refreshed == true, "coturn log: \(coturn.log.suffix(1500))")
        await client.close()
    }

    @Test func aWrongSecretIsRefusedWithTheCodeAndTheUser() async throws {
        let coturn = try Coturn()
        let server = try await MediaTest.server(tcpCandidates: false)
        defer { Task { await server.shutdown() } }
        let relay = try Self.relay(coturn, .udp, secret: "not-the-secret")
        var config = MediaClientConfiguration()
        config.relay = relay
        let client = try MediaClient(configuration: config, logger: MediaTest.logger)
        let (_, answer) = try await server.createSession(offer: client.offer, label: "wrong-secret")
        do {
            try await client.connect(answer: answer)
            Issue.record("connected with a wrong secret")
        } catch let error as MediaError {
            #expect(error.code == .relayFailed)
            #expect(error.message.contains("refused Allocate: 401"), "\(error.message)")
            #expect(error.message.contains(relay.username), "\(error.message)")
        }
    }

    @Test func aTCPRelayWithATCPTransportIsAConfigurationError() throws {
        var config = MediaClientConfiguration()
        config.transport = .tcp
        config.relay = TURNRelayConfiguration(
            server: try SocketAddress(ipAddress: "127.0.0.1", port: 3478), transport: .udp, username: "u", password: "p")
        #expect(throws: MediaError.self) { try MediaClient(configuration: config, logger: MediaTest.logger) }
    }
}
