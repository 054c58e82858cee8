import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// A response, before it is written.
struct HTTPResponseData: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: String
    var extraHeaders: [(String, String)] = []
}

/// Maps method and path to a response; pure, so tests can call it without sockets.
struct HTTPRouter: Sendable {
    let version: VersionInfo
    let backend: any MediaBackend
    let metrics: ServerMetrics
    let indexHTML: String?
    let isDraining: @Sendable () -> Bool
    var admin: AdminAPI = AdminAPI(key: nil, registry: SessionRegistry(), closeMedia: { _ in })

    static let json = "application/json; charset=utf-8"
    static let prometheus = "text/plain; version=0.0.4; charset=utf-8"
    static let knownPaths = ["/", "/index.html", "/version", "/healthz", "/readyz", "/metrics", "/ws"]

    func respond(method: HTTPMethod, uri: String, authorization: String? = nil) -> HTTPResponseData {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        if AdminAPI.isAdminPath(path) {
            let query = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? ""
            return admin.respond(method: method, path: path, query: query, authorization: authorization)
        }
        guard Self.knownPaths.contains(path) else {
            return Self.error(
                .notFound, "not_found",
                "no such endpoint: \(path). Endpoints: / (test page), /ws (signaling), /version, /healthz, /readyz, /metrics, /api/v1/ (admin)")
        }
        guard method == .GET || method == .HEAD else {
            var r = Self.error(.methodNotAllowed, "method_not_allowed", "\(path) answers GET only, not \(method.rawValue)")
            r.extraHeaders.append(("Allow", "GET, HEAD"))
            return r
        }
        switch path {
        case "/", "/index.html":
            guard let indexHTML else {
                return Self.error(
                    .internalServerError, "page_missing",
                    "the test page is missing: the folder \(IndexPage.bundleName) must sit next to the callsctl binary (or set CALLSCTL_RESOURCES to it)")
            }
            return HTTPResponseData(
                status: .ok, contentType: "text/html; charset=utf-8", body: indexHTML,
                extraHeaders: [("Cache-Control", "no-store")])
        case "/version":
            return HTTPResponseData(status: .ok, contentType: Self.json, body: version.json + "\n")
        case "/healthz":
            return HTTPResponseData(status: .ok, contentType: Self.json, body: "{\"status\":\"ok\"}\n")
        case "/readyz":
            if isDraining() {
                return HTTPResponseData(
                    status: .serviceUnavailable, contentType: Self.json,
                    body: "{\"status\":\"draining\",\"message\":\"the server is shutting down and takes no new calls\"}\n")
            }
            if backend.udpPort == nil && backend.tcpPort == nil {
                return HTTPResponseData(
                    status: .serviceUnavailable, contentType: Self.json,
                    body: "{\"status\":\"not_ready\",\"message\":\"the media server has not bound its ports yet\"}\n")
            }
            let udp = backend.udpPort.map(String.init) ?? "null"
            let tcp = backend.tcpPort.map(String.init) ?? "null"
            return HTTPResponseData(
                status: .ok, contentType: Self.json, body: "{\"status\":\"ready\",\"udpPort\":\(udp),\"tcpPort\":\(tcp)}\n")
        case "/metrics":
            return HTTPResponseData(
                status: .ok, contentType: Self.prometheus,
                body: metrics.prometheusText(
                    media: backend.backendMetrics, build: version.version, calls: admin.registry.callFigures()))
        case "/ws":
            var r = Self.error(
                .upgradeRequired, "websocket_required",
                "/ws is the signaling WebSocket: connect with a WebSocket client (new WebSocket('ws://HOST:PORT/ws')), not plain HTTP")
            r.extraHeaders.append(("Upgrade", "websocket"))
            return r
        default:
            return Self.error(.notFound, "not_found", "no such endpoint: \(path)")
        }
    }

    static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String) -> HTTPResponseData {
        HTTPResponseData(
            status: status, contentType: json,
            body: "{\"error\":\(jsonQuote(code)),\"message\":\(jsonQuote(message))}\n")
    }
}

/// Plain HTTP requests (everything but the WebSocket, which the upgrader takes).
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "callsctl.http"
    static let maxBodyBytes = 64 * 1024

    private let router: HTTPRouter
    /// The connection's deadlines (no reference cycle: both live in the same pipeline and go with it).
    private let connectionGuard: ConnectionGuard?
    /// Puts a WebSocket upgrade handler back in front of this one (NIO's removes itself after a plain request).
    private let rearmUpgrade: ((ChannelHandlerContext) -> Void)?
    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    init(router: HTTPRouter, connectionGuard: ConnectionGuard? = nil, rearmUpgrade: ((ChannelHandlerContext) -> Void)? = nil) {
        self.router = router
        self.connectionGuard = connectionGuard
        self.rearmUpgrade = rearmUpgrade
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            connectionGuard?.requestHeadReceived()
            head = h
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            self.head = nil
            var response: HTTPResponseData
            if bodyBytes > Self.maxBodyBytes {
                response = HTTPRouter.error(.payloadTooLarge, "body_too_large", "request bodies are limited to \(Self.maxBodyBytes) bytes")
            } else {
                response = router.respond(
                    method: head.method, uri: head.uri, authorization: head.headers.first(name: "Authorization"))
            }
            if head.method == .HEAD { response.extraHeaders.append(("X-Head", "1")) }
            // A proxy with upstream keep-alive (nginx `keepalive`) sends a WebSocket upgrade on a connection that
            // carried plain requests before: the next request may upgrade too.
            if head.isKeepAlive { rearmUpgrade?(context) }
            write(response, for: head, context: context)
        }
    }

    private func write(_ response: HTTPResponseData, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        let body = Array(response.body.utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Server", value: "callsctl/\(router.version.version)")
        // RFC 9110 §6.6.1: a server with a clock sends Date (the doctor compares clocks with it).
        headers.add(name: "Date", value: HTTPDate.now())
        for (name, value) in response.extraHeaders where name != "X-Head" { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive, let connectionGuard {
            connectionGuard.responseFinished(context: context)
        }
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPHandler: Sendable {}

/// What the WebSocket handler hands to the session task.
enum SignalingInbound: Sendable {
    case text(String)
    case oversize(Int)
    case notText
}

/// Reassembles WebSocket messages, enforces the size limit, answers pings and closes, and feeds a
/// ``SignalingSession`` in order from one task.
final class WebSocketSignalingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let server: APIServer
    private var continuation: AsyncStream<SignalingInbound>.Continuation?
    private var message: ByteBuffer?
    private var messageIsText = true
    private var messageBytes = 0
    private var inMessage = false
    private var closeSent = false
    /// When a frame last arrived, and the keepalive task (see `APIServerConfiguration.webSocketPingInterval`).
    private var lastHeard = NIODeadline.now()
    private var keepalive: RepeatedTask?
    private var joinDeadline: RepeatedTask?

    init(server: APIServer) {
        self.server = server
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        guard server.register(channel) else {
            context.close(promise: nil)
            return
        }
        let (stream, continuation) = AsyncStream.makeStream(
            of: SignalingInbound.self, bufferingPolicy: .bufferingOldest(256))
        self.continuation = continuation
        let writer = SignalingFrameWriter(channel: channel)
        let send: @Sendable (String) -> Void = { text in writer.send(text, flushNow: true) }
        let sendEvent: @Sendable (String) -> Void = { text in writer.send(text, flushNow: false) }
        let close: @Sendable () -> Void = {
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
        startKeepalive(context: context)
        let session = server.makeSession(channel: channel, send: send, sendEvent: sendEvent, close: close)
        startJoinDeadline(context: context, sessionID: session.id, send: send)
        let server = self.server
        let limit = server.maxMessageBytes
        server.taskStarted()
        server.control.task {
            for await item in stream {
                switch item {
                case .text(let text): await session.handle(text: text)
                case .oversize(let bytes): await session.oversize(bytes: bytes, limit: limit)
                case .notText: await session.notText()
                }
            }
            await session.disconnected()
            server.taskEnded()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(channel: context.channel)
    }

    /// Pings every interval; after three silent intervals the client is gone (a vanished peer sends no FIN).
    private func startKeepalive(context: ChannelHandlerContext) {
        let interval = server.webSocketPingInterval
        let amount = TimeAmount.nanoseconds(Int64(interval.components.seconds) * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
        guard amount > .zero else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { task in
            let (handler, context) = bound.value
            guard context.channel.isActive else { return task.cancel() }
            if NIODeadline.now() - handler.lastHeard > amount * 3 {
                task.cancel()
                handler.closeConnection(context: context, code: .goingAway)
                context.channel.close(promise: nil)
                return
            }
            let ping = WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(handler.wrapOutboundOut(ping), promise: nil)
        }
    }

    /// Closes the connection once it has been in no call for `joinTimeout` (never joined, or left), however it
    /// answers pings: an idle signaling socket holds a descriptor and a task.
    private func startJoinDeadline(context: ChannelHandlerContext, sessionID: String, send: @escaping @Sendable (String) -> Void) {
        let timeout = server.joinTimeout.nioTimeAmount
        guard timeout > .zero else { return }
        let step = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 10_000_000))
        let server = self.server
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        var outOfCallSince: NIODeadline? = .now()
        joinDeadline = context.eventLoop.scheduleRepeatedTask(initialDelay: step, delay: step) { task in
            let (handler, context) = bound.value
            guard context.channel.isActive else { return task.cancel() }
            if server.isInCall(sessionID) {
                outOfCallSince = nil
                return
            }
            let since = outOfCallSince ?? .now()
            outOfCallSince = since
            guard NIODeadline.now() - since >= timeout else { return }
            task.cancel()
            server.metrics.apiConnections.countTimeout("join")
            let seconds = Double(timeout.nanoseconds) / 1e9
            send(
                Signaling.encode(
                    Signaling.ErrorReply(
                        code: "join_timeout",
                        message: "this connection was in no call for \(seconds) s; send join right after connecting, and close the socket after leaving")))
            handler.closeConnection(context: context, code: .policyViolation)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(channel: context.channel)
        context.fireChannelInactive()
    }

    private func finish(channel: any Channel) {
        keepalive?.cancel()
        keepalive = nil
        joinDeadline?.cancel()
        joinDeadline = nil
        guard let continuation else { return }
        continuation.finish()
        self.continuation = nil
        server.unregister(channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = .now()
        switch frame.opcode {
        case .text, .binary:
            if inMessage {
                // A new data frame before the last one finished: a protocol error.
                closeConnection(context: context, code: .protocolError)
                return
            }
            inMessage = true
            messageIsText = frame.opcode == .text
            messageBytes = 0
            message = context.channel.allocator.buffer(capacity: min(frame.length, server.maxMessageBytes))
            append(frame)
        case .continuation:
            guard inMessage else {
                closeConnection(context: context, code: .protocolError)
                return
            }
            append(frame)
        case .ping:
            var data = frame.unmaskedData
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: data.readSlice(length: data.readableBytes) ?? data)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            return
        case .pong:
            return
        case .connectionClose:
            closeConnection(context: context, code: .normalClosure)
            return
        default:
            closeConnection(context: context, code: .protocolError)
            return
        }
        guard frame.fin else { return }
        inMessage = false
        let limit = server.maxMessageBytes
        defer { message = nil }
        if messageBytes > limit {
            continuation?.yield(.oversize(messageBytes))
            return
        }
        guard messageIsText, let buffer = message,
            let text = String(bytes: buffer.readableBytesView, encoding: .utf8)
        else {
            continuation?.yield(.notText)
            return
        }
        continuation?.yield(.text(text))
    }

    private func append(_ frame: WebSocketFrame) {
        messageBytes += frame.length
        // Past the limit, keep counting but stop buffering.
        if messageBytes <= server.maxMessageBytes {
            var data = frame.unmaskedData
            message?.writeBuffer(&data)
        } else {
            message = nil
        }
    }

    private func closeConnection(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension WebSocketSignalingHandler: Sendable {}

/// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String { format(Date()) }

    static func format(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[Int(tm.tm_wday)], tm.tm_mday, months[Int(tm.tm_mon)],
            tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

/// Writes signaling frames on one WebSocket channel. Replies are flushed at once; call events (one per join, leave,
/// mute... to everyone in the call) are written and flushed within `eventFlushDelay` or with the next reply, so a
/// burst of roster events to one participant leaves in one system call instead of one each: filling a call of N sends
/// N² events in all, and their cost to the server is mostly those calls.
final class SignalingFrameWriter: @unchecked Sendable {
    // @unchecked: `flushScheduled` is only touched on the channel's event loop.
    private let channel: any Channel
    private var flushScheduled = false
    static let eventFlushDelay = TimeAmount.milliseconds(50)

    init(channel: any Channel) {
        self.channel = channel
    }

    func send(_ text: String, flushNow: Bool) {
        if channel.eventLoop.inEventLoop {
            write(text, flushNow: flushNow)
        } else {
            channel.eventLoop.execute { self.write(text, flushNow: flushNow) }
        }
    }

    private func write(_ text: String, flushNow: Bool) {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let frame = WebSocketFrame(fin: true, opcode: .text, data: buffer)
        if flushNow {
            channel.writeAndFlush(frame, promise: nil)
            return
        }
        channel.write(frame, promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        channel.eventLoop.scheduleTask(in: Self.eventFlushDelay) {
            self.flushScheduled = false
            self.channel.flush()
        }
    }
}
