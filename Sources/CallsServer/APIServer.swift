import CallsMedia
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Settings of the HTTP/WebSocket API (port 8045).
public struct APIServerConfiguration: Sendable {
    /// Where to listen; port 0 lets the system choose (read it back from ``APIServer/localAddress``).
    public var listen: ListenAddress = ListenAddress(host: "0.0.0.0", port: 8045)
    /// What `/version` reports.
    public var version = VersionInfo(version: "0.0.0")
    /// The largest signaling message accepted; larger ones get a `message_too_large` error.
    public var maxMessageBytes = 256 * 1024
    /// The server pings every signaling WebSocket this often; a client that sends nothing (no pong, no message)
    /// for three intervals has vanished and is disconnected, which ends its media session and tells the call.
    public var webSocketPingInterval: Duration = .seconds(15)
    /// WebSocket frames beyond this close the connection (1009); between the two, the message is refused.
    public var maxFrameBytes = 1 << 20
    /// ICE servers handed to clients in `joined`, as they are.
    public var iceServers: [ICEServerInfo] = []
    /// STUN/TURN URLs handed to clients in `joined` after ``iceServers``, with TURN credentials made per join.
    public var iceServerSettings = ICEServerSettings()
    /// The bearer key of the admin API (`/api/v1/`); nil refuses every admin request (401).
    public var adminKey: String?
    /// The page served at `/`; nil reads `index.html` from the module's resources.
    public var indexHTML: String?
    /// Participants allowed in one call (one channel); nil is unlimited, as in the Calls plugin.
    public var maxParticipants: Int?
    /// Audio receive slots per participant (the media server's `audioSlots`): told to clients in `joined`.
    public var audioSlots: Int = 3
    /// Connection caps and deadlines of the port.
    public var limits = APIConnectionLimits()

    public init() {}
}

/// The HTTP/WebSocket side of `callsctl serve`: `/`, `/ws`, `/version`, `/healthz`, `/readyz`, `/metrics`,
/// and the admin API under `/api/v1/`.
public final class APIServer: Sendable {
    private let configuration: APIServerConfiguration
    private let backend: any MediaBackend
    private let signer: JoinTokenSigner
    private let admission: JoinAdmission?
    private let logger: Logger
    public let metrics: ServerMetrics
    private let group: MultiThreadedEventLoopGroup
    private let state = LockedState()
    private let router: HTTPRouter
    private let registry: SessionRegistry
    private let placement: (any CallPlacement)?
    /// The settings a reload (SIGHUP) may change; new sessions take them, running ones keep theirs.
    private let live: Locked<LiveSettings>
    /// Where signaling sessions and their tasks run (see ``ControlExecutor``).
    let control = ControlExecutor.shared

    /// - Parameters:
    ///   - backend: the media transport that answers offers.
    ///   - signer: verifies join tokens.
    ///   - admission: asked for every valid join (channel policy); nil admits everyone with a valid token.
    public init(
        configuration: APIServerConfiguration, backend: any MediaBackend, signer: JoinTokenSigner,
        admission: JoinAdmission? = nil, placement: (any CallPlacement)? = nil, metrics: ServerMetrics = ServerMetrics(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.placement = placement
        if let placement {
            registry = SessionRegistry(onCallEnded: { @Sendable channel in placement.released(channel: channel) })
        } else {
            registry = SessionRegistry()
        }
        live = Locked(LiveSettings(iceServerSettings: configuration.iceServerSettings, maxParticipants: configuration.maxParticipants))
        self.backend = backend
        self.signer = signer
        self.admission = admission
        self.metrics = metrics
        metrics.audioSlots = configuration.audioSlots
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = self.state
        let admin = AdminAPI(
            key: configuration.adminKey, registry: registry, placement: placement, signer: signer,
            closeMedia: { [backend] id in ControlExecutor.shared.task { await backend.closeSession(id) } })
        router = HTTPRouter(
            version: configuration.version, backend: backend, metrics: metrics,
            indexHTML: configuration.indexHTML ?? IndexPage.load(), isDraining: { state.draining }, admin: admin)
    }

    /// The bound address, once started.
    public var localAddress: ListenAddress? { state.bound }

    /// True after ``drain()``: `/readyz` answers 503 and joins are refused with `server_draining`.
    public var isDraining: Bool { state.draining }

    /// Signaling sessions that have joined and not yet left (what draining waits for).
    public var activeSessions: Int { registry.count }

    /// Participants per channel of the calls on this node (echo tests left out): what a cluster node reports.
    public var callParticipants: [String: Int] { registry.callFigures().participants }

    /// Binds and starts serving.
    /// - Returns: the bound address (with the real port when 0 was asked for).
    /// - Throws: ``BindError`` when the port cannot be bound.
    @discardableResult
    public func start() async throws -> ListenAddress {
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: configuration.maxFrameBytes, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                channel.eventLoop.makeSucceededFuture(WebSocketUpgradePolicy.accepts(head) ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { [self] channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    (try? channel.pipeline.syncOperations.handler(type: ConnectionGuard.self))?.upgraded()
                    let handler = WebSocketSignalingHandler(server: self)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            })
        let router = self.router
        // NIO's upgrade handler sees only a connection's first request; after a plain one it is gone. This puts a
        // new one (same upgrader, the same HTTP handlers to remove on upgrade) back before the next request.
        let rearm: (ChannelHandlerContext) -> Void = { context in
            let ops = context.pipeline.syncOperations
            guard (try? ops.handler(type: HTTPServerUpgradeHandler.self)) == nil,
                let encoder = try? ops.handler(type: HTTPResponseEncoder.self),
                let decoder = try? ops.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            else { return }
            var extra: [any RemovableChannelHandler] = [decoder]
            if let h = try? ops.handler(type: HTTPServerPipelineHandler.self) { extra.append(h) }
            if let h = try? ops.handler(type: NIOHTTPResponseHeadersValidator.self) { extra.append(h) }
            if let h = try? ops.handler(type: HTTPServerProtocolErrorHandler.self) { extra.append(h) }
            let upgradeHandler = HTTPServerUpgradeHandler(
                upgraders: [upgrader], httpEncoder: encoder, extraHTTPHandlers: extra,
                upgradeCompletionHandler: { context in _ = context.channel.pipeline.removeHandler(name: HTTPHandler.name) })
            try? ops.addHandler(upgradeHandler, position: .before(context.handler))
        }
        let counter = metrics.apiConnections
        let limits = configuration.limits
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let guardHandler = ConnectionGuard(counter: counter, limits: limits, logger: logger)
                    try channel.pipeline.syncOperations.addHandler(guardHandler, name: ConnectionGuard.name)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                _ = context.channel.pipeline.removeHandler(name: HTTPHandler.name)
                            }
                        ))
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPHandler(router: router, connectionGuard: guardHandler, rearmUpgrade: rearm), name: HTTPHandler.name)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: configuration.listen.host, port: configuration.listen.port).get()
        } catch let error as IOError {
            throw BindError(address: configuration.listen, proto: .tcp, code: error.errnoCode)
        }
        let port = channel.localAddress?.port ?? configuration.listen.port
        let bound = ListenAddress(host: configuration.listen.host, port: port)
        state.started(channel: channel, bound: bound)
        logger.info("API listening", metadata: ["address": "\(bound)"])
        return bound
    }

    /// Stops taking new calls: `/readyz` turns 503 and joins are refused. Running calls go on.
    public func drain() {
        state.setDraining()
    }

    /// Closes the listener and every signaling connection (which closes their media sessions).
    public func shutdown() async {
        state.setDraining()
        let (listener, connections) = state.takeAll()
        try? await listener?.close()
        // Every signaling client is told before its socket closes: `closed` with the reason, then a WebSocket close
        // (1001, going away), not a bare TCP close.
        let text = "{\"v\":\(SignalingSession.version),\"type\":\"closed\",\"reason\":\"the server is shutting down\"}"
        for channel in connections {
            let message = WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text))
            var code = channel.allocator.buffer(capacity: 2)
            code.write(webSocketErrorCode: .goingAway)
            channel.write(message, promise: nil)
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)).whenComplete { _ in
                channel.close(promise: nil)
            }
            // A client that reads nothing cannot hold the shutdown: closed in 2 s whatever the writes did.
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
        for channel in connections {
            try? await channel.closeFuture.get()
        }
        // Let the connection tasks close their media sessions.
        for _ in 0..<100 where state.activeTasks > 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? await group.shutdownGracefully()
    }

    // MARK: Connections

    func makeSession(
        channel: any Channel, send: @escaping @Sendable (String) -> Void,
        sendEvent: (@Sendable (String) -> Void)? = nil, close: @escaping @Sendable () -> Void
    ) -> SignalingSession {
        let state = self.state
        let settings = live.current
        return SignalingSession(
            id: SessionID.make(), peer: channel.remoteAddress.map(Self.peerText) ?? "unknown", backend: backend,
            signer: signer, admission: admission, iceServers: configuration.iceServers,
            iceServerSettings: settings.iceServerSettings, registry: registry, metrics: metrics, isDraining: { state.draining },
            maxParticipants: settings.maxParticipants, audioSlots: configuration.audioSlots, control: control,
            placement: placement, logger: logger, send: send, sendEvent: sendEvent, close: close)
    }

    /// Settings that change without a restart: ICE servers handed to clients (TURN secret, URLs, credential
    /// lifetime) and the participant limit. Joins after this call use them; running calls go on as they are.
    public func updateLiveSettings(iceServerSettings: ICEServerSettings, maxParticipants: Int?) {
        live.withLock { $0 = LiveSettings(iceServerSettings: iceServerSettings, maxParticipants: maxParticipants) }
    }

    public var liveSettings: LiveSettings { live.current }

    public struct LiveSettings: Sendable {
        public var iceServerSettings: ICEServerSettings
        public var maxParticipants: Int?
    }

    var maxMessageBytes: Int { configuration.maxMessageBytes }
    var joinTimeout: Duration { configuration.limits.joinTimeout }

    /// Whether signaling session `id` is in a call (or an echo test) now.
    func isInCall(_ id: String) -> Bool { registry.record(id) != nil }
    var webSocketPingInterval: Duration { configuration.webSocketPingInterval }

    func register(_ channel: any Channel) -> Bool {
        metrics.connectionOpened()
        return state.register(channel)
    }

    func unregister(_ channel: any Channel) {
        metrics.connectionClosed()
        state.unregister(channel)
    }

    func taskStarted() { state.taskDelta(1) }
    func taskEnded() { state.taskDelta(-1) }

    private static func peerText(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// The server's mutable state, behind a lock.
private final class LockedState: @unchecked Sendable {
    // @unchecked: all fields are accessed only with `lock` held.
    private let lock = NSLock()
    private var _draining = false
    private var _bound: ListenAddress?
    private var listener: (any Channel)?
    private var connections: [ObjectIdentifier: any Channel] = [:]
    private var closed = false
    private var tasks = 0

    var draining: Bool { lock.withLock { _draining } }
    var bound: ListenAddress? { lock.withLock { _bound } }
    var activeTasks: Int { lock.withLock { tasks } }

    func setDraining() { lock.withLock { _draining = true } }

    func started(channel: any Channel, bound: ListenAddress) {
        lock.withLock {
            listener = channel
            _bound = bound
        }
    }

    func register(_ channel: any Channel) -> Bool {
        lock.withLock {
            if closed { return false }
            connections[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func unregister(_ channel: any Channel) {
        _ = lock.withLock { connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func taskDelta(_ d: Int) { lock.withLock { tasks += d } }

    func takeAll() -> ((any Channel)?, [any Channel]) {
        lock.withLock {
            closed = true
            let result = (listener, Array(connections.values))
            listener = nil
            return result
        }
    }
}

enum SessionID {
    /// 16 random characters of [a-z0-9], like a short Mattermost id.
    static func make() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }
}

/// Finds `index.html` among the module's resources without trapping when the resource folder is missing
/// (an installed binary without its `callsctl_CallsServer.resources` folder).
enum IndexPage {
    static let bundleName = "callsctl_CallsServer.resources"

    static func load() -> String? {
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["CALLSCTL_RESOURCES"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent(bundleName))
            dir = dir.deletingLastPathComponent()
        }
        if let main = Bundle.main.resourceURL { candidates.append(main.appendingPathComponent(bundleName)) }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(bundleName))
        candidates.append(URL(fileURLWithPath: "/usr/local/share/callsctl"))
        candidates.append(URL(fileURLWithPath: "/usr/share/callsctl"))
        for base in candidates {
            for sub in ["Resources/index.html", "index.html"] {
                let url = base.appendingPathComponent(sub)
                if let data = FileManager.default.contents(atPath: url.path) {
                    return String(decoding: data, as: UTF8.self)
                }
            }
        }
        return nil
    }
}
