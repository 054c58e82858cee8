// HTTP request heads (and, after an upgrade, WebSocket frames) through the API server's pipeline as APIServer
// configures it: `configureHTTPServerPipeline` with a WebSocket upgrader for /ws, then a plain-HTTP handler.
//
// The project's own HTTPHandler/HTTPRouter cannot be built here without the whole server (the router needs the
// media backend, metrics and admin API), so `HeadReader` stands in for HTTPHandler: it reads heads, bodies and ends
// the way HTTPHandler does (method, URI split into path and query like HTTPRouter, Authorization, keep-alive) and
// answers each request. What is fuzzed is NIOHTTP1's HTTPRequestDecoder, the server pipeline's handlers
// (HTTPResponseEncoder, HTTPServerPipelineHandler, HTTPServerProtocolErrorHandler, the upgrade handler) and
// NIOWebSocket's frame decoder, as the server runs them.
import CallsServerDecoders
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket

enum HTTPFuzz {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        let channel = EmbeddedChannel()
        let reader = HeadReader(inputSize: bytes.count)
        let frames = FrameCounter(inputSize: bytes.count)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 16, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                channel.eventLoop.makeSucceededFuture(WebSocketUpgradePolicy.accepts(head) ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(frames) }
            })
        do {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withServerUpgrade: (
                    upgraders: [upgrader],
                    completionHandler: { context in _ = context.channel.pipeline.removeHandler(name: "fuzz.http") }
                ))
            try channel.pipeline.syncOperations.addHandler(reader, name: "fuzz.http")
        } catch {
            fatalError("pipeline setup failed: \(error)")
        }
        // An accepted connection: the HTTP handlers only act on an active channel.
        do {
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 40000)).wait()
        } catch {
            fatalError("EmbeddedChannel connect failed: \(error)")
        }
        // Two writes, to exercise heads split across reads.
        let cut = bytes.count / 2
        for part in [bytes[..<cut], bytes[cut...]] where channel.isActive {
            do {
                try channel.writeInbound(ByteBuffer(bytes: part))
            } catch {
                break  // a parse error: the protocol error handler answers 400 and the server closes
            }
        }
        var outbound = 0
        while let out = try? channel.readOutbound(as: IOData.self) {
            outbound += out.readableBytes
            if outbound > 64 * 1024 * 1024 { fatalError("unbounded output") }
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
        guard reader.ends <= reader.heads, reader.heads <= reader.ends + 1 else {
            fatalError("\(reader.heads) heads but \(reader.ends) ends")
        }
        guard reader.headBytes <= bytes.count, reader.bodyBytes <= bytes.count else {
            fatalError("decoded \(reader.headBytes) head bytes and \(reader.bodyBytes) body bytes from \(bytes.count)")
        }
        guard frames.payloadBytes <= bytes.count else { fatalError("WebSocket payloads exceed the input") }
    }
}

/// Reads requests the way HTTPHandler does and answers each with a small response.
private final class HeadReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let inputSize: Int
    var head: HTTPRequestHead?
    var heads = 0
    var ends = 0
    var headBytes = 0
    var bodyBytes = 0

    init(inputSize: Int) { self.inputSize = inputSize }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            heads += 1
            head = h
            // Counted in Unicode scalars: NIO repairs invalid UTF-8 in heads to U+FFFD (three UTF-8 bytes for one
            // input byte), so each scalar still stands for at least one input byte.
            headBytes += h.uri.unicodeScalars.count
                + h.headers.reduce(0) { $0 + $1.name.unicodeScalars.count + $1.value.unicodeScalars.count }
            // HTTPRouter's split of the URI: path and query put back together give the URI.
            let parts = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let path = parts.first.map(String.init) ?? h.uri
            let query = parts.dropFirst().first.map(String.init)
            guard path + (query.map { "?" + $0 } ?? "") == h.uri else { fatalError("URI split lost bytes: \(h.uri)") }
            _ = h.headers.first(name: "Authorization")
            _ = h.method.rawValue
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            ends += 1
            guard let request = head else { fatalError("end without head") }
            head = nil
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "2")
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !request.isKeepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// After an upgrade: counts WebSocket frames (the signaling handler would parse their text as JSON).
private final class FrameCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    let inputSize: Int
    var payloadBytes = 0
    init(inputSize: Int) { self.inputSize = inputSize }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        payloadBytes += frame.data.readableBytes
        if frame.opcode == .text { _ = String(buffer: frame.unmaskedData) }
    }
}
