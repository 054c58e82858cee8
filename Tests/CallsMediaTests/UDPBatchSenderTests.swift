@testable import CallsMedia
import Glibc
import NIOCore
import Testing

/// `UDPBatchSender` on real loopback sockets: what is committed arrives intact and in order with one flush, a
/// datagram the kernel refuses is dropped without stopping the rest, and every sent datagram is timed.
@Suite struct UDPBatchSenderTests {
    /// A bound, non-blocking receiving socket on 127.0.0.1 and its address.
    static func receiver() throws -> (fd: CInt, address: SocketAddress) {
        let fd = try UDPBatchSender.makeBoundSocket(host: "127.0.0.1", port: 0)
        var storage = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: storage.sin_port))
        return (fd, try SocketAddress(ipAddress: "127.0.0.1", port: port))
    }

    /// Up to `limit` datagrams waiting on `fd` (bounded: stops at the first empty read after a short wait).
    static func drain(_ fd: CInt, limit: Int) async -> [[UInt8]] {
        var out: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var idle = 0
        while out.count < limit, idle < 50 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                out.append(Array(buffer[0..<n]))
                idle = 0
            } else {
                idle += 1
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        return out
    }

    static func payload(_ i: Int) -> [UInt8] { (0..<(20 + i * 7)).map { UInt8(truncatingIfNeeded: $0 &+ i) } }

    @Test func oneFlushDeliversEveryDatagramInOrder() async throws {
        let (rx, address) = try Self.receiver()
        defer { close(rx) }
        let tx = try UDPBatchSender.makeBoundSocket(host: "127.0.0.1", port: 0)
        defer { close(tx) }
        let sender = UDPBatchSender(descriptor: tx, capacity: 64)
        for i in 0..<64 {
            let p = Self.payload(i)
            p.withUnsafeBytes { sender.nextSlot.copyMemory(from: $0) }
            #expect(sender.commit(length: p.count, to: address, receivedAt: 0))
        }
        #expect(sender.isFull)
        var latency = ForwardLatencyHistogram()
        let result = sender.flush(latency: &latency, now: { 1_000 })
        #expect(result.sent == 64 && result.failed == 0 && result.bufferFull == 0)
        #expect(result.bytes == (0..<64).map { Self.payload($0).count }.reduce(0, +))
        #expect(sender.count == 0)
        #expect(latency.count == 64)
        var metrics = MediaMetrics()
        latency.write(into: &metrics)
        #expect(metrics.forwardLatencyBuckets.first == 64)  // 1 µs: the first bucket (≤ 10 µs)
        #expect(metrics.forwardLatencyBuckets.dropFirst().allSatisfy { $0 == 0 })  // per bucket, not cumulative
        #expect(metrics.forwardLatencySum == 64 * 1e-6)
        let got = await Self.drain(rx, limit: 64)
        #expect(got == (0..<64).map(Self.payload))
    }

    @Test func aRefusedDatagramIsDroppedAndTheRestStillGo() async throws {
        let (rx, address) = try Self.receiver()
        defer { close(rx) }
        let tx = try UDPBatchSender.makeBoundSocket(host: "127.0.0.1", port: 0)
        defer { close(tx) }
        let sender = UDPBatchSender(descriptor: tx, capacity: 8)
        // An IPv6 destination on an IPv4 socket: the kernel refuses that one message (EAFNOSUPPORT).
        let v6 = try SocketAddress(ipAddress: "::1", port: 9)
        for (i, to) in [address, v6, address, v6, address].enumerated() {
            let p = Self.payload(i)
            p.withUnsafeBytes { sender.nextSlot.copyMemory(from: $0) }
            #expect(sender.commit(length: p.count, to: to, receivedAt: 0))
        }
        var latency = ForwardLatencyHistogram()
        let result = sender.flush(latency: &latency, now: { 0 })
        #expect(result.sent == 3 && result.failed == 2)
        let got = await Self.drain(rx, limit: 3)
        #expect(got == [0, 2, 4].map(Self.payload))
    }

    @Test func controlDatagramsStayOutOfTheLatencyHistogram() async throws {
        let (rx, address) = try Self.receiver()
        defer { close(rx) }
        let tx = try UDPBatchSender.makeBoundSocket(host: "127.0.0.1", port: 0)
        defer { close(tx) }
        let sender = UDPBatchSender(descriptor: tx, capacity: 4)
        for (i, time) in [UInt64(500), UDPBatchSender.notForwarded, 700].enumerated() {
            let p = Self.payload(i)
            p.withUnsafeBytes { sender.nextSlot.copyMemory(from: $0) }
            #expect(sender.commit(length: p.count, to: address, receivedAt: time))
        }
        var latency = ForwardLatencyHistogram()
        let result = sender.flush(latency: &latency, now: { 1_000 })
        #expect(result.sent == 3)
        #expect(latency.count == 2)  // the STUN/DTLS/RTCP-like datagram is sent but not timed
        #expect(await Self.drain(rx, limit: 3).count == 3)
    }
}
