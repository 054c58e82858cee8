import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// One participant's signaling WebSocket (`ws://HOST:PORT/ws`) on a shared event loop: text messages in and out,
/// pings answered, fragmented messages reassembled. Messages arrive on ``messages`` as their JSON text (call
/// events, `"type":"event"`, are left out).
final class SignalingClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private enum Upgrade {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    let messages: AsyncStream<String>
    private let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
    private let channel: any Channel
    private let reader: Task<Void, Never>

    /// Connects and upgrades; throws ``Failure`` when the server is unreachable or refuses the upgrade.
    init(host: String, port: Int, path: String, group: any EventLoopGroup, timeout: Duration) async throws {
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000)))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                        maxFrameSize: 1 << 20,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                Upgrade.websocket(
                                    try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel))
                            }
                        })
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: "\(host):\(port)")
                    headers.add(name: "User-Agent", value: "callsctl-loadtest")
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head, upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { .refused } })
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
        guard case .websocket(let ws) = try await upgrade.get() else {
            throw Failure(description: "ws://\(host):\(port)\(path) did not upgrade to a WebSocket (is it the media server's API port?)")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        self.messages = stream
        self.channel = ws.channel
        // The channel lives inside `executeThenClose` (NIO's scoped API) in the reader task; the writer comes out.
        let (writers, writerContinuation) = AsyncStream.makeStream(of: NIOAsyncChannelOutboundWriter<WebSocketFrame>.self)
        self.reader = Task {
            try? await ws.executeThenClose { inbound, outbound in
                writerContinuation.yield(outbound)
                writerContinuation.finish()
                var text: [UInt8] = []
                loop: for try await frame in inbound {
                    switch frame.opcode {
                    case .text, .continuation:
                        text += frame.unmaskedData.readableBytesView
                        guard frame.fin else { continue }
                        let message = String(decoding: text, as: UTF8.self)
                        // Call events (one per join and leave, to everyone) are not used by the load generator: dropped
                        // here, before they cost a stream element and a task wake-up each.
                        if messageType(message) != "event" { continuation.yield(message) }
                        text.removeAll(keepingCapacity: true)
                    case .ping:
                        try await outbound.write(
                            WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData))
                    case .connectionClose:
                        break loop
                    default:
                        continue
                    }
                }
            }
            writerContinuation.finish()
            continuation.finish()
        }
        var iterator = writers.makeAsyncIterator()
        guard let outbound = await iterator.next() else {
            throw Failure(description: "the WebSocket to \(host):\(port) closed at once")
        }
        self.outbound = outbound
    }

    /// Sends one JSON text message (a client frame, masked).
    func send(_ json: String) async throws {
        var buffer = channel.allocator.buffer(capacity: json.utf8.count)
        buffer.writeString(json)
        try await outbound.write(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer))
    }

    /// Closes the socket (without waiting for the server's close frame) and waits until the reader has let go of the
    /// channel, so that the event loop can be shut down after it without NIO's "cannot schedule tasks" complaint.
    func close() async {
        outbound.finish()
        try? await channel.close()
        reader.cancel()
        await reader.value
    }
}
