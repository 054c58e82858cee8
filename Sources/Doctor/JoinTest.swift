import CallsMedia
import CallsServer
import Foundation
import Logging
import Probes

/// The signaling side of a join: blocking, every wait bounded by the run's deadline.
final class SignalingProbe: @unchecked Sendable {
    // @unchecked: used from one thread at a time (the join test's steps run in order).
    struct Refused: Error, CustomStringConvertible {
        let code: String
        let message: String
        var description: String { "\(code): \(message)" }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Joined {
        let user: String?
        let sessionID: String?
    }

    let url: ProbeURL
    let caFile: String?
    let deadline: ContinuousClock.Instant
    private var client: WebSocketProbeClient?

    init(url: ProbeURL, caFile: String?, deadline: ContinuousClock.Instant) {
        self.url = url
        self.caFile = caFile
        self.deadline = deadline
    }

    func join(token: String, channel: String, echo: Bool) throws -> Joined {
        let ws = try WebSocketProbeClient(connecting: url, caFile: caFile, until: deadline)
        client = ws
        // Version 1: the doctor needs none of version 2's additions, and so also checks that older clients are served.
        try ws.send(Signaling.encode(Signaling.Join(v: 1, token: token, channel: channel, echo: echo)), until: deadline)
        let reply = try next(expecting: .joined)
        let joined = try? Signaling.decode(Signaling.Joined.self, from: reply)
        return Joined(user: joined?.user, sessionID: joined?.sessionId)
    }

    func offer(_ sdp: String) throws -> String {
        guard let ws = client else { throw Failure(description: "not joined") }
        try ws.send(Signaling.encode(Signaling.Offer(v: nil, sdp: sdp)), until: deadline)
        guard let answer = try? Signaling.decode(Signaling.Answer.self, from: try next(expecting: .answer)) else {
            throw Failure(description: "the answer carried no SDP")
        }
        return answer.sdp
    }

    private let leaveLock = NSLock()

    /// Leaves the call (or echo test) and closes the socket; best effort, once (an interrupt may race the end).
    func leave() {
        let taken: WebSocketProbeClient? = leaveLock.withLock {
            defer { client = nil }
            return client
        }
        guard let ws = taken else { return }
        try? ws.send(
            Signaling.encode(Signaling.Bare(v: nil, type: Signaling.ClientType.leave.rawValue)),
            until: min(deadline, .now + .seconds(1)))
        ws.close()
    }

    /// The text of the next message of `type`, skipping events; an `error` message throws ``Refused``.
    private func next(expecting type: Signaling.ServerType) throws -> String {
        guard let ws = client else { throw Failure(description: "not connected") }
        while true {
            guard let text = try ws.receive(until: deadline) else {
                throw Failure(description: "no \(type) from \(url) within the time budget")
            }
            guard let message = try? Signaling.decode(Signaling.Bare.self, from: text) else {
                throw Failure(description: "\(url) sent a message that is not a signaling message (no \"type\")")
            }
            switch Signaling.ServerType(rawValue: message.type) {
            case type?: return text
            case .error?:
                let error = try? Signaling.decode(Signaling.ErrorReply.self, from: text)
                throw Refused(code: error?.code ?? "error", message: error?.message ?? text)
            default: continue
            }
        }
    }
}

/// Joins an echo test on the media server with the project's own WebRTC client over one path, sends audio
/// packets, and measures what comes back: handshake time, loss and round-trip time.
public struct JoinTest: Sendable {
    public enum Path: Sendable {
        /// ICE over UDP to the server's UDP candidate.
        case udp
        /// ICE-TCP to the server's passive TCP candidate.
        case tcp
        /// Relay only: through a TURN server (over its own transport) to the server's UDP candidate.
        case relayed(TURNRelayConfiguration)

        var label: String {
            switch self {
            case .udp: "UDP"
            case .tcp: "TCP"
            case .relayed(let r): "a TURN relay over \(r.transport.rawValue.uppercased())"
            }
        }
    }

    public struct Measurement: Sendable {
        public let transport: String
        public let remote: String
        public let handshakeMs: Int
        public let sent: Int
        public let received: Int
        public let rttMs: Double
        /// Relayed paths: the TURN server, the relayed address, and a certificate problem of `turns:`.
        public var relayServer: String? = nil
        public var relayedAddress: String? = nil
        public var relayCertificateProblem: String? = nil
        public var lossPercent: Double { sent == 0 ? 100 : Double(sent - received) * 100 / Double(sent) }
    }

    public struct Failure: Error, Sendable {
        /// Where it stopped: "signaling", "ice" or "media".
        public let stage: String
        public let message: String
    }

    let url: ProbeURL
    let token: String
    let channel: String
    let path: Path
    let packets: Int
    let caFile: String?

    public func run(deadline: ContinuousClock.Instant) async -> Result<Measurement, Failure> {
        var config = MediaClientConfiguration()
        switch path {
        case .udp: config.transport = .udp
        case .tcp: config.transport = .tcp
        case .relayed(let relay):
            config.transport = .udp
            config.relay = relay
        }
        config.connectTimeout = min(max(deadline - .now, .milliseconds(100)), .seconds(10))
        var logger = Logger(label: "callsctl.doctor")
        logger.logLevel = .critical
        let client: MediaClient
        do { client = try MediaClient(configuration: config, logger: logger) } catch {
            return .failure(Failure(stage: "client", message: "cannot start the WebRTC client: \(error)"))
        }
        let signaling = SignalingProbe(url: url, caFile: caFile, deadline: deadline)
        // On Ctrl-C: leave the call and free the TURN allocation (close() waits for the TURN server's answer).
        let cleanup = JoinCleanup.register {
            await client.close()
            await blocking { signaling.leave() }
        }
        defer {
            JoinCleanup.unregister(cleanup)
            let s = signaling
            Thread.detachNewThread { s.leave() }
        }
        let offer = client.offer
        let answer: Result<String, Failure> = await blocking {
            do {
                _ = try signaling.join(token: token, channel: channel, echo: true)
                return .success(try signaling.offer(offer))
            } catch let refused as SignalingProbe.Refused {
                return .failure(Failure(stage: "signaling", message: "the join was refused: \(refused)"))
            } catch {
                return .failure(Failure(stage: "signaling", message: "\(error)"))
            }
        }
        guard case .success(let sdp) = answer else {
            await client.close()
            if case .failure(let f) = answer { return .failure(f) }
            return .failure(Failure(stage: "signaling", message: "no answer"))
        }
        let started = ContinuousClock.now
        let connection: MediaClientConnection
        do {
            connection = try await client.connect(answer: sdp)
        } catch {
            await client.close()
            return .failure(
                Failure(
                    stage: (error as? MediaError)?.code == .relayFailed ? "relay" : "ice",
                    message: "no ICE/DTLS connection over \(path.label): \(error)"))
        }
        let handshake = ContinuousClock.now - started

        // Each payload carries its send time; the echo returns it unchanged.
        let count = packets
        let receiver = Task { () -> [Duration] in
            var rtts: [Duration] = []
            for await packet in client.receivedAudio {
                guard packet.payload.count >= 16, packet.payload.starts(with: Array("doctor00".utf8)) else { continue }
                let sentNanos = packet.payload[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let now = UInt64(DispatchTime.now().uptimeNanoseconds)
                rtts.append(.nanoseconds(Int64(now &- sentNanos)))
                if rtts.count >= count { break }
            }
            return rtts
        }
        for i in 0..<count where ContinuousClock.now < deadline {
            let now = UInt64(DispatchTime.now().uptimeNanoseconds)
            let payload = Array("doctor00".utf8) + (0..<8).reversed().map { UInt8((now >> (8 * UInt64($0))) & 0xFF) }
                + [UInt8](repeating: 0x55, count: 40)
            client.sendAudio(payload: payload, timestamp: UInt32(i * 960), marker: i == 0)
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Wait for the stragglers: until every echo is back, at most 3 s after the last packet (later than that
        // is lost for a call, and a busy machine can hold an echo for a while).
        let waitEnd = min(deadline, .now + .seconds(3))
        let rtts: [Duration] = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            Task { once.resume(await receiver.value) }
            Task {
                try? await Task.sleep(until: waitEnd, clock: .continuous)
                receiver.cancel()
            }
        }
        await client.close()
        let sorted = rtts.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2].seconds * 1000
        var measurement = Measurement(
            transport: connection.transport, remote: connection.remote, handshakeMs: milliseconds(handshake), sent: count,
            received: rtts.count, rttMs: median)
        measurement.relayServer = connection.relayServer
        measurement.relayedAddress = connection.relayedAddress
        measurement.relayCertificateProblem = connection.relayCertificateProblem
        return .success(measurement)
    }
}
