import CallsMedia
import CallsWire
import Foundation
import NIOCore
import NIOPosix
import Testing

@Suite("MediaServer survives hostile input")
struct MediaServerRobustnessTests {
    /// Hand-made malformed packets of every class the demultiplexer knows, plus random bytes.
    static func garbage(seed: UInt64, count: Int) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        var out: [[UInt8]] = []
        let stun = (try? STUNMessage(
            method: .binding, messageClass: .request, attributes: [.username("abcd:efgh"), .priority(1)]
        ).encoded(integrity: .sha1(.shortTerm(password: "x")), fingerprint: true)) ?? []
        for n in 0..<stun.count { out.append(Array(stun.prefix(n))) }  // every truncation of a STUN request
        // DTLS record headers announcing more than they carry, epoch 1 records shorter than any AEAD overhead.
        out.append([22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])
        out.append([23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0])
        out.append([22])
        // RTP/RTCP with impossible CSRC counts and extension lengths.
        out.append([0x8F, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1])
        out.append([0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0xFF, 0xFF])
        out.append([0x80, 200, 0xFF, 0xFF, 0, 0, 0, 1])
        out.append([0x80])
        out.append([])
        for _ in 0..<count {
            let length = Int.random(in: 1...1400, using: &rng)
            var bytes = rng.bytes(length)
            // Steer a share of them into each RFC 7983 class so every parser sees them.
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes[0] = UInt8.random(in: 0...3, using: &rng)
            case 1: bytes[0] = UInt8.random(in: 20...63, using: &rng)
            case 2: bytes[0] = UInt8.random(in: 128...191, using: &rng)
            default: break
            }
            out.append(bytes)
        }
        return out
    }

    @Test("Garbage datagrams and TCP streams never crash or stall the server")
    func garbageThenRealClient() async throws {
        // The victim session never sends a check; keep it from expiring on a slow, loaded machine.
        let server = try await MediaTest.server { $0.consentTimeout = .seconds(300) }
        defer { Task { await server.shutdown() } }
        let udpPort = try #require(server.udpPort)
        let tcpPort = try #require(server.tcpPort)

        // A live session, so garbage also hits the paths of a known ufrag.
        let victim = try MediaClient(logger: MediaTest.logger)
        _ = try await server.createSession(offer: victim.offer, label: "victim")

        let peer = try await RawUDPPeer()
        for packet in Self.garbage(seed: 42, count: 2000) where !packet.isEmpty {
            try await peer.send(packet, toPort: udpPort)
        }

        // TCP: random streams, frames with garbage, an oversize frame, a truncated frame left hanging.
        var rng = SplitMix64(seed: 7)
        let tcpInputs: [[UInt8]] = [
            rng.bytes(4000),
            Self.garbage(seed: 9, count: 50).flatMap { (try? RFC4571Framer.framed($0)) ?? [] },
            [0xFF, 0xFF] + rng.bytes(9000),  // a 65535-byte frame: beyond the server's limit, so it closes
            [0x00, 0x40, 0x00, 0x01],  // a frame that never completes
        ]
        for input in tcpInputs {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: tcpPort).get()
            try? await channel.writeAndFlush(ByteBuffer(bytes: input))
            try? await Task.sleep(for: .milliseconds(50))
            try? await channel.close()
        }
        try await Task.sleep(for: .milliseconds(200))
        let metrics = server.metrics
        #expect(metrics.droppedPackets > 1000)
        #expect(metrics.sessions == 1)

        // The server still serves a real client over both transports.
        for transport in [MediaClientConfiguration.Transport.udp, .tcp] {
            let result = try await MediaTest.echoRoundTrip(server: server, transport: transport, count: 20)
            let received = result.received.count
            #expect(received >= 18, "\(transport) after garbage: \(result.summary)")
        }
        await peer.close()
        await server.shutdown()
    }

    @Test("Garbage from a connected client's own address is dropped without ending its session")
    func garbageOnLivePath() async throws {
        // One check only, then junk: keep consent from expiring on a slow, loaded machine.
        let server = try await MediaTest.server { $0.consentTimeout = .seconds(300) }
        defer { Task { await server.shutdown() } }
        let udpPort = try #require(server.udpPort)
        // A raw peer that completes ICE by hand, then sends junk from the validated 5-tuple.
        let peer = try await RawUDPPeer()
        let client = try MediaClient(logger: MediaTest.logger)
        let (id, answer) = try await server.createSession(offer: client.offer, label: "raw")
        let ufrag = try #require(MediaTest.attribute("ice-ufrag", in: answer))
        let pwd = try #require(MediaTest.attribute("ice-pwd", in: answer))
        let clientUfrag = try #require(MediaTest.attribute("ice-ufrag", in: client.offer))
        let check = STUNMessage(
            method: .binding, messageClass: .request,
            attributes: [.username("\(ufrag):\(clientUfrag)"), .priority(1), .iceControlling(1), .useCandidate])
        try await peer.send(check.encoded(integrity: .sha1(.shortTerm(password: pwd)), fingerprint: true), toPort: udpPort)
        let reply = await peer.collect(for: .milliseconds(500), limit: 1)
        let response = try STUNMessage(decoding: try #require(reply.first))
        #expect(response.messageClass == .successResponse)
        #expect(response.verifyIntegrity(key: .shortTerm(password: pwd)))
        #expect(response.verifyFingerprint())
        #expect(response.xorMappedAddress?.port == UInt16(peer.localPort))

        for packet in Self.garbage(seed: 99, count: 500) where !packet.isEmpty {
            try await peer.send(packet, toPort: udpPort)
        }
        try await Task.sleep(for: .milliseconds(300))
        let closed = await MediaTest.waitForEvent(server, session: id, timeout: .milliseconds(200)) {
            if case .closed = $0 { true } else { false }
        }
        #expect(closed == nil)
        #expect(server.metrics.sessions == 1)
        await peer.close()
        await server.shutdown()
    }
}
