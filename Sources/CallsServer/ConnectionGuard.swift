import Foundation
import Logging
import NIOCore

/// Limits of the API port (8045) against clients that hold connections without using them.
public struct APIConnectionLimits: Sendable {
    /// Connections open at once, all sources together; the next one gets a 503 and is closed. Default: half of the
    /// process's open-file limit (less a reserve), at most 100,000 (see ``defaultMaxConnections``).
    public var maxConnections = APIConnectionLimits.defaultMaxConnections
    /// Connections open at once from one IP address; 0 is no per-address limit. Behind a reverse proxy every client
    /// comes from the proxy's address: raise it to `maxConnections` or set 0 there.
    public var maxConnectionsPerAddress = 2048
    /// A new connection must send a whole request head within this time (slow-header clients are closed).
    public var headerTimeout: Duration = .seconds(10)
    /// A kept-alive HTTP connection must start (and finish the head of) its next request within this time.
    public var idleTimeout: Duration = .seconds(60)
    /// A signaling WebSocket that is in no call (never joined, or left) for this long is closed with `join_timeout`,
    /// however faithfully it answers pings.
    public var joinTimeout: Duration = .seconds(60)

    public init() {}

    /// Half of the open-file limit left after a reserve of 128 descriptors (the rest serve ICE-TCP, the store and
    /// logs), between 64 and 100,000.
    public static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 448 }
        let soft = min(UInt64(limit.rlim_cur), UInt64(1 << 20))  // RLIM_INFINITY is all ones
        let half = (Int(clamping: soft) - 128) / 2
        return min(max(half, 64), 100_000)
    }

    /// Raises the soft open-file limit to the hard limit (at most 1,048,576), as `serve` does at start. Returns the
    /// limits before and after, or nil when nothing changed.
    public static func raiseOpenFileLimit() -> (before: UInt64, after: UInt64)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let before = UInt64(limit.rlim_cur)
        let target = min(limit.rlim_max, rlim_t(1 << 20))
        guard target > limit.rlim_cur else { return nil }
        limit.rlim_cur = target
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (before, UInt64(target))
    }
}

/// Counts the API port's open connections, in total and per address, and admits or refuses new ones.
final class ConnectionCounter: @unchecked Sendable {
    // @unchecked: every stored property is accessed only with `lock` held.
    private let lock = NSLock()
    private var total = 0
    private var perAddress: [String: Int] = [:]
    private var refusedTotal: UInt64 = 0
    private var refusedPerAddress: UInt64 = 0
    private var timedOut: [String: UInt64] = [:]
    /// When a refusal was last logged (refusals come in floods: one log line per interval).
    private var lastRefusalLog: UInt64 = 0

    enum Refusal: Equatable {
        case total(limit: Int)
        case perAddress(limit: Int)
    }

    /// Admits a connection from `address` unless a limit is reached.
    func admit(_ address: String, limits: APIConnectionLimits) -> Refusal? {
        lock.withLock {
            if total >= limits.maxConnections {
                refusedTotal += 1
                return .total(limit: limits.maxConnections)
            }
            let mine = perAddress[address, default: 0]
            if limits.maxConnectionsPerAddress > 0, mine >= limits.maxConnectionsPerAddress {
                refusedPerAddress += 1
                return .perAddress(limit: limits.maxConnectionsPerAddress)
            }
            total += 1
            perAddress[address] = mine + 1
            return nil
        }
    }

    func release(_ address: String) {
        lock.withLock {
            total -= 1
            let left = perAddress[address, default: 1] - 1
            perAddress[address] = left > 0 ? left : nil
        }
    }

    func countTimeout(_ kind: String) { lock.withLock { timedOut[kind, default: 0] += 1 } }

    /// True at most once per 10 s: whether this refusal should be logged.
    func shouldLogRefusal(now: UInt64) -> Bool {
        lock.withLock {
            guard now &- lastRefusalLog >= 10_000_000_000 || lastRefusalLog == 0 else { return false }
            lastRefusalLog = now
            return true
        }
    }

    var snapshot: (open: Int, refusedTotal: UInt64, refusedPerAddress: UInt64, timedOut: [String: UInt64]) {
        lock.withLock { (total, refusedTotal, refusedPerAddress, timedOut) }
    }
}

/// First handler of every API connection: admits it against ``APIConnectionLimits`` (a refused one gets a short
/// `503` and is closed), and closes it when its request head does not arrive in time (`headerTimeout` for the first
/// request, `idleTimeout` for the next ones on a kept-alive connection). The HTTP handler reports heads and finished
/// responses; the WebSocket upgrade ends the watch (the signaling handler has its own join deadline).
///
/// Confined to the connection's event loop.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let name = "callsctl.guard"

    private let counter: ConnectionCounter
    private let limits: APIConnectionLimits
    private let logger: Logger
    private var address: String?
    private var deadline: Scheduled<Void>?
    private weak var channel: (any Channel)?
    private var refused = false

    init(counter: ConnectionCounter, limits: APIConnectionLimits, logger: Logger) {
        self.counter = counter
        self.limits = limits
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let refusal = counter.admit(peer, limits: limits) {
            refused = true
            refuse(context: context, peer: peer, refusal)
            return
        }
        address = peer
        arm(limits.headerTimeout, kind: "header", context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A refused connection's bytes go nowhere: it is being closed.
        guard !refused else { return }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if let address {
            counter.release(address)
            self.address = nil
        }
        if !refused { context.fireChannelInactive() }
    }

    /// A whole request head arrived: no deadline while the request is handled.
    func requestHeadReceived() {
        deadline?.cancel()
        deadline = nil
    }

    /// A response went out on a kept-alive connection: the next request must come within `idleTimeout`.
    func responseFinished(context: ChannelHandlerContext) {
        arm(limits.idleTimeout, kind: "idle", context: context)
    }

    /// The connection became a WebSocket: the signaling handler watches it from now on.
    func upgraded() {
        deadline?.cancel()
        deadline = nil
    }

    private func arm(_ timeout: Duration, kind: String, context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        let counter = self.counter
        deadline = context.eventLoop.scheduleTask(in: timeout.nioTimeAmount) {
            counter.countTimeout(kind)
            channel.close(promise: nil)
        }
    }

    private func refuse(context: ChannelHandlerContext, peer: String, _ refusal: ConnectionCounter.Refusal) {
        let reason: String
        switch refusal {
        case .total(let limit):
            reason = "the server has \(limit) API connections open, its limit (api.max_connections)"
        case .perAddress(let limit):
            reason = "\(peer) has \(limit) API connections open, the limit per address (api.max_connections_per_address)"
        }
        if counter.shouldLogRefusal(now: NIODeadline.now().uptimeNanoseconds) {
            logger.warning(
                "refusing API connections (logged once per 10 s; counted in callsctl_api_connections_refused_total)",
                metadata: ["peer": "\(UntrustedText.forLog(peer))", "reason": "\(reason)"])
        }
        let body = "too many connections: \(reason); try again later\n"
        let response =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nRetry-After: 10\r\nConnection: close\r\n\r\n" + body
        var buffer = context.channel.allocator.buffer(capacity: response.utf8.count)
        buffer.writeString(response)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

extension Duration {
    /// The same span as NIO's `TimeAmount` (nanoseconds, clamped).
    var nioTimeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanos.overflow else { return .nanoseconds(seconds < 0 ? Int64.min : Int64.max) }
        return .nanoseconds(nanos.partialValue &+ attoseconds / 1_000_000_000)
    }
}
