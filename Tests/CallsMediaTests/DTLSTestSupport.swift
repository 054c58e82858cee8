import CallsMedia
import Testing

/// Identities are generated once per test process (a few ms each); tests use them read-only.
enum TestIdentities {
    static let server = try! DTLSIdentity(commonName: "test-server")
    static let client = try! DTLSIdentity(commonName: "test-client")
    static let stranger = try! DTLSIdentity(commonName: "test-stranger")
}

/// A deterministic generator so garbage inputs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// A client and a server endpoint wired back to back in memory; `run` shuttles datagrams until both are quiet.
final class BackToBack {
    enum Direction { case toServer, toClient }

    let client: DTLSEndpoint
    let server: DTLSEndpoint
    private(set) var clientEvents: [DTLSEvent] = []
    private(set) var serverEvents: [DTLSEvent] = []
    /// Every datagram delivered or dropped, in order, with its direction.
    private(set) var log: [(Direction, [UInt8])] = []
    private var queue: [(Direction, [UInt8])] = []

    init(
        client clientConfiguration: DTLSConfiguration = DTLSConfiguration(),
        server serverConfiguration: DTLSConfiguration = DTLSConfiguration(),
        clientExpects: DTLSFingerprint = TestIdentities.server.fingerprint,
        serverExpects: DTLSFingerprint = TestIdentities.client.fingerprint
    ) throws {
        client = try DTLSEndpoint(
            role: .client, identity: TestIdentities.client, remoteFingerprint: clientExpects,
            configuration: clientConfiguration)
        server = try DTLSEndpoint(
            role: .server, identity: TestIdentities.server, remoteFingerprint: serverExpects,
            configuration: serverConfiguration)
    }

    /// Queues what one endpoint produced; `from` says which endpoint produced it.
    func enqueue(_ output: DTLSOutput, from role: DTLSRole) {
        let direction: Direction = role == .client ? .toServer : .toClient
        queue += output.datagrams.map { (direction, $0) }
        if role == .client { clientEvents += output.events } else { serverEvents += output.events }
    }

    /// Delivers queued datagrams until none are left. `drop` sees each datagram (with its index in `log`) and
    /// returns true to lose it.
    func run(drop: (Direction, [UInt8], Int) -> Bool = { _, _, _ in false }) {
        while !queue.isEmpty {
            let (direction, datagram) = queue.removeFirst()
            log.append((direction, datagram))
            if drop(direction, datagram, log.count - 1) { continue }
            switch direction {
            case .toServer: enqueue(server.feed(datagram: datagram), from: .server)
            case .toClient: enqueue(client.feed(datagram: datagram), from: .client)
            }
        }
    }

    /// Starts the client and runs to quiescence.
    func handshake(drop: (Direction, [UInt8], Int) -> Bool = { _, _, _ in false }) {
        enqueue(server.start(), from: .server)
        enqueue(client.start(), from: .client)
        run(drop: drop)
    }

    static func keys(in events: [DTLSEvent]) -> SRTPKeyingMaterial? {
        for case .handshakeComplete(let keys) in events { return keys }
        return nil
    }

    static func failure(in events: [DTLSEvent]) -> DTLSError? {
        for case .failed(let error) in events { return error }
        return nil
    }

    var clientKeys: SRTPKeyingMaterial? { Self.keys(in: clientEvents) }
    var serverKeys: SRTPKeyingMaterial? { Self.keys(in: serverEvents) }

    /// Keys from a completed in-memory handshake, for SRTP tests.
    static func establishedKeys(
        profiles: [SRTPProtectionProfile] = SRTPProtectionProfile.allSupported
    ) throws -> (client: SRTPKeyingMaterial, server: SRTPKeyingMaterial) {
        let pair = try BackToBack(client: DTLSConfiguration(srtpProfiles: profiles))
        pair.handshake()
        let client = try #require(pair.clientKeys)
        let server = try #require(pair.serverKeys)
        return (client, server)
    }
}
