import CallsWire
import NIOCore

/// Where and how the media client reaches the SFU through a TURN relay (RFC 8656): relay only, so every packet of
/// the call (ICE checks, DTLS, SRTP) goes client → TURN server → relayed address → SFU and back.
public struct TURNRelayConfiguration: Sendable {
    /// How the client talks to the TURN server (the relayed leg to the SFU is always UDP).
    public enum Transport: String, Sendable, Hashable {
        case udp, tcp, tls
    }

    /// The TURN server's address (resolved).
    public var server: SocketAddress
    public var transport: Transport
    /// Long-term credentials: a static user, or TURN REST credentials (`expiry:user` and the HMAC of it).
    public var username: String
    public var password: String
    /// For `tls`: SNI and the name checked against the certificate (report mode: see
    /// ``MediaClientConnection/relayCertificateProblem``).
    public var serverName: String?
    /// For `tls`: extra PEM trust anchors.
    public var caFile: String?
    /// The allocation lifetime asked for, in seconds.
    public var lifetime: UInt32 = 600
    /// How often the allocation and the channel binding (which also refreshes the permission) are refreshed while
    /// the client runs; nil = half the granted lifetime, at most 4 minutes (permissions last 5).
    public var refreshInterval: Duration?
    /// The first retransmission timeout of requests over UDP (doubling, 7 transmissions at most).
    public var retransmitTimeout: Duration = .milliseconds(250)

    public init(server: SocketAddress, transport: Transport, username: String, password: String) {
        self.server = server
        self.transport = transport
        self.username = username
        self.password = password
    }
}

/// The TURN client side of one relayed media path: Allocate (with the 401 realm/nonce challenge and 438 stale nonce
/// handled), CreatePermission and ChannelBind for the one peer (the SFU's UDP candidate), ChannelData both ways,
/// periodic Refresh, and a Refresh with lifetime 0 to free the allocation on close.
///
/// A state machine confined to the media client's event loop: it never touches a socket. `send` writes one STUN or
/// ChannelData message to the TURN server (the core frames it for the transport); responses come in through
/// ``handle(_:)``.
// @unchecked Sendable: every property is touched only on `loop` (its timers run there; the core calls it there).
final class TURNRelayClient: @unchecked Sendable {
    enum Step: String {
        case allocate = "Allocate"
        case createPermission = "CreatePermission"
        case channelBind = "ChannelBind"
        case refresh = "Refresh"
        case rebind = "ChannelBind (refresh)"
        case release = "Refresh (lifetime 0)"
    }

    let configuration: TURNRelayConfiguration
    let peer: STUNAddress
    let channelNumber: UInt16 = 0x4000
    private let loop: any EventLoop
    private let send: (ByteBuffer) -> Void
    private let onReady: () -> Void
    private let onFailure: (MediaError) -> Void
    private var onReleased: (() -> Void)?

    private(set) var relayedAddress: STUNAddress?
    private(set) var mappedAddress: STUNAddress?
    private(set) var grantedLifetime: UInt32?
    private(set) var isReady = false
    private(set) var refreshes = 0
    private var realm: String?
    private var nonce: String?
    private var key: STUNKey?
    private var staleNonceRetries = 0
    private var outstanding: (message: STUNMessage, step: Step, bytes: ByteBuffer, sends: Int, rto: Duration)?
    private var retransmitTask: Scheduled<Void>?
    private var refreshTask: RepeatedTask?
    private var finished = false
    private let allocator = ByteBufferAllocator()

    init(
        configuration: TURNRelayConfiguration, peer: STUNAddress, loop: any EventLoop,
        send: @escaping (ByteBuffer) -> Void, onReady: @escaping () -> Void, onFailure: @escaping (MediaError) -> Void
    ) {
        self.configuration = configuration
        self.peer = peer
        self.loop = loop
        self.send = send
        self.onReady = onReady
        self.onFailure = onFailure
    }

    var serverDescription: String {
        "\(configuration.server.endpointDescription) over \(configuration.transport.rawValue.uppercased())"
    }

    /// Sends the first (unauthenticated) Allocate; the 401 that answers it carries the realm and nonce.
    func start() {
        request(.allocate)
    }

    // MARK: Data

    /// Wraps a packet for the SFU as ChannelData (padded to 4 bytes over TCP/TLS, RFC 8656 §12.5).
    func wrap(_ payload: ByteBuffer) -> ByteBuffer? {
        let padded = configuration.transport != .udp
        var out = allocator.buffer(capacity: payload.readableBytes + 8)
        guard (try? TURNChannelData(channelNumber: channelNumber, data: payload).write(into: &out, padded: padded)) != nil
        else { return nil }
        return out
    }

    /// Takes one message from the TURN server: returns the relayed packet of a ChannelData message or Data
    /// indication from the peer; handles responses to this client's requests; drops the rest.
    func handle(_ message: ByteBuffer) -> ByteBuffer? {
        guard let first = message.getInteger(at: message.readerIndex, as: UInt8.self) else { return nil }
        if TURNChannelData.isChannelData(firstByte: first) {
            guard let data = try? TURNChannelData(decoding: message), data.channelNumber == channelNumber else { return nil }
            return data.data
        }
        guard let stun = try? STUNMessage(decoding: message) else { return nil }
        if stun.method == .data, stun.messageClass == .indication {
            guard stun.xorPeerAddresses.first == peer, let bytes = stun.data else { return nil }
            return ByteBuffer(bytes: bytes)
        }
        if stun.messageClass == .successResponse || stun.messageClass == .errorResponse { response(stun) }
        return nil
    }

    // MARK: Requests

    private func attributes(for step: Step) -> [STUNAttribute] {
        switch step {
        case .allocate: [.requestedTransport(17), .lifetime(configuration.lifetime)]
        case .createPermission: [.xorPeerAddress(peer)]
        case .channelBind, .rebind: [.channelNumber(channelNumber), .xorPeerAddress(peer)]
        case .refresh: [.lifetime(configuration.lifetime)]
        case .release: [.lifetime(0)]
        }
    }

    private func method(for step: Step) -> STUNMethod {
        switch step {
        case .allocate: .allocate
        case .createPermission: .createPermission
        case .channelBind, .rebind: .channelBind
        case .refresh, .release: .refresh
        }
    }

    private func request(_ step: Step) {
        var attributes = attributes(for: step)
        var integrity: STUNIntegrity?
        if let key, let realm, let nonce {
            attributes += [.username(configuration.username), .realm(realm), .nonce(nonce)]
            integrity = .sha1(key)
        }
        let message = STUNMessage(method: method(for: step), messageClass: .request, attributes: attributes)
        guard let bytes = try? message.encodedBuffer(integrity: integrity, fingerprint: true, allocator: allocator) else {
            fail(MediaError(.relayFailed, "cannot encode the TURN \(step.rawValue) request"))
            return
        }
        outstanding = (message, step, bytes, 1, configuration.retransmitTimeout)
        send(bytes)
        scheduleRetransmit()
    }

    private func scheduleRetransmit() {
        retransmitTask?.cancel()
        retransmitTask = nil
        guard configuration.transport == .udp, let pending = outstanding else { return }
        retransmitTask = loop.scheduleTask(in: pending.rto.timeAmount) { [self] in
            guard var current = self.outstanding, current.message.transactionID == pending.message.transactionID else {
                return
            }
            guard current.sends < 7 else {
                let step = current.step
                self.outstanding = nil
                if step == .release {
                    self.released()
                } else {
                    self.fail(
                        MediaError(
                            .relayFailed,
                            "the TURN server \(self.serverDescription) did not answer \(step.rawValue) after \(current.sends) transmissions"))
                }
                return
            }
            current.sends += 1
            current.rto = current.rto * 2
            self.outstanding = current
            self.send(current.bytes)
            self.scheduleRetransmit()
        }
    }

    private func response(_ message: STUNMessage) {
        guard let pending = outstanding, pending.message.transactionID == message.transactionID else { return }
        outstanding = nil
        retransmitTask?.cancel()
        retransmitTask = nil
        let step = pending.step
        if message.messageClass == .errorResponse {
            let code = message.errorCode?.code ?? 0
            if step == .release {
                released()
                return
            }
            if code == STUNErrorCode.unauthenticated, key == nil, let realm = message.realm, let nonce = message.nonce {
                self.realm = realm
                self.nonce = nonce
                key = STUNKey.longTerm(username: configuration.username, realm: realm, password: configuration.password)
                request(step)
                return
            }
            if code == STUNErrorCode.staleNonce, let nonce = message.nonce, staleNonceRetries < 3 {
                staleNonceRetries += 1
                self.nonce = nonce
                self.realm = message.realm ?? realm
                request(step)
                return
            }
            fail(MediaError(.relayFailed, refusal(step, message)))
            return
        }
        staleNonceRetries = 0
        switch step {
        case .allocate:
            guard let relayed = message.xorRelayedAddress else {
                fail(MediaError(.relayFailed, "the TURN server \(serverDescription) allocated without an XOR-RELAYED-ADDRESS"))
                return
            }
            relayedAddress = relayed
            mappedAddress = message.xorMappedAddress
            grantedLifetime = message.lifetime
            request(.createPermission)
        case .createPermission:
            request(.channelBind)
        case .channelBind:
            isReady = true
            scheduleRefreshes()
            onReady()
        case .refresh:
            refreshes += 1
            grantedLifetime = message.lifetime ?? grantedLifetime
            request(.rebind)
        case .rebind:
            break
        case .release:
            released()
        }
    }

    private func refusal(_ step: Step, _ message: STUNMessage) -> String {
        let code = message.errorCode
        let what = code.map { "\($0.code) \($0.reason)" } ?? "an error"
        var text = "the TURN server \(serverDescription) refused \(step.rawValue): \(what)"
        switch code?.code {
        case 401?, 441?:
            text += " (the credentials of user \(configuration.username) were rejected: the shared secret, or the clocks)"
        case 403?:
            text += " (the server forbids relaying to \(peer): coturn denied-peer-ip, or a loopback peer without --allow-loopback-peers)"
        case 486?: text += " (the allocation quota of the user is reached)"
        case 508?: text += " (the server is out of relay ports: min-port..max-port)"
        default: break
        }
        return text
    }

    private func scheduleRefreshes() {
        refreshTask?.cancel()
        let granted = Int64(grantedLifetime ?? configuration.lifetime)
        let interval = configuration.refreshInterval ?? .seconds(max(10, min(granted / 2, 240)))
        refreshTask = loop.scheduleRepeatedTask(initialDelay: interval.timeAmount, delay: interval.timeAmount) {
            [self] _ in
            guard self.outstanding == nil, self.isReady, !self.finished else { return }
            self.request(.refresh)
        }
    }

    // MARK: End

    /// Frees the allocation (Refresh with LIFETIME 0); `done` runs on the response, after the retransmissions, or
    /// at once when nothing was allocated.
    func release(_ done: @escaping () -> Void) {
        refreshTask?.cancel()
        refreshTask = nil
        guard relayedAddress != nil, !finished else {
            stop()
            done()
            return
        }
        onReleased = done
        retransmitTask?.cancel()
        outstanding = nil
        request(.release)
    }

    /// Stops timers without sending anything (the connection is gone).
    func stop() {
        finished = true
        refreshTask?.cancel()
        refreshTask = nil
        retransmitTask?.cancel()
        retransmitTask = nil
        outstanding = nil
    }

    private func released() {
        stop()
        let done = onReleased
        onReleased = nil
        done?()
    }

    private func fail(_ error: MediaError) {
        stop()
        onFailure(error)
    }
}
