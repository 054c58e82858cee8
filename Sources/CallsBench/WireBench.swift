import CallsWire
import NIOCore

/// Micro-benchmarks for the CallsWire hot paths the SFU hits per packet: decoding and authenticating an
/// ICE connectivity check, answering it, and RFC 7983 demultiplexing.
enum WireBench {
    /// Runs each benchmark `iterations` times (classification: `iterations * 64` packets).
    static func run(iterations: Int) -> [BenchResult] {
        let n = max(1, iterations)
        let clock = ContinuousClock()
        var results = [BenchResult]()

        // A check as browsers send it (RFC 8445 §7.1.2): USERNAME "remote:local" ufrags, PRIORITY,
        // ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY keyed with our ice-pwd, FINGERPRINT.
        let key = STUNKey.shortTerm(password: "sI1kxqUFzTbVQ3rjNhZpTm0b")
        let request = STUNMessage(
            method: .binding, messageClass: .request,
            attributes: [
                .username("zRlH7v6b1pQ9cX2e:Wq3x"), .priority(0x6E00_01FF), .iceControlling(0x1234_5678_9ABC_DEF0),
                .useCandidate,
            ])
        guard let requestBuffer = try? request.encodedBuffer(integrity: .sha1(key), fingerprint: true) else {
            return results
        }
        let requestBytes = Array(requestBuffer.readableBytesView)

        // 1. Decode + verify MI and FINGERPRINT from a ByteBuffer (what a NIO datagram handler receives).
        var ok = 0
        var start = clock.now
        for _ in 0..<n {
            if let m = try? STUNMessage(decoding: requestBuffer) {
                let v = m.verify(key: key)
                if v.isAuthenticated && v.fingerprint == .passed && m.useCandidate { ok &+= 1 }
            }
        }
        results.append(BenchResult(
            name: "wire.stun.decode+verify.bytebuffer(\(requestBytes.count)B)", operations: n,
            seconds: seconds(clock.now - start)))
        precondition(ok == n, "benchmark request failed to verify")

        // 2. The same from [UInt8] (one extra copy into a ByteBuffer).
        ok = 0
        start = clock.now
        for _ in 0..<n {
            if let m = try? STUNMessage(decoding: requestBytes), m.verifyIntegrity(key: key) { ok &+= 1 }
        }
        results.append(BenchResult(
            name: "wire.stun.decode+verifyMI.array", operations: n, seconds: seconds(clock.now - start)))

        // 3. Decode only (no HMAC/CRC), to separate parsing cost from crypto.
        ok = 0
        start = clock.now
        for _ in 0..<n {
            if let m = try? STUNMessage(decoding: requestBuffer), m.priority != nil { ok &+= 1 }
        }
        results.append(BenchResult(name: "wire.stun.decode", operations: n, seconds: seconds(clock.now - start)))

        // 4. Encode + sign a Binding success response (XOR-MAPPED-ADDRESS, MI, FINGERPRINT) into a reused buffer.
        let peer = STUNAddress(ipv4: 0xC633_6407, port: 54_321)
        var out = ByteBufferAllocator().buffer(capacity: 128)
        var written = 0
        start = clock.now
        for i in 0..<n {
            let response = STUNMessage(
                method: .binding, messageClass: .successResponse,
                transactionID: STUNTransactionID(high: UInt64(i), low: 7),
                attributes: [.xorMappedAddress(peer)])
            out.clear()
            written &+= (try? out.writeSTUNMessage(response, integrity: .sha1(key), fingerprint: true)) ?? 0
        }
        results.append(BenchResult(
            name: "wire.stun.encode+sign.success", operations: n, seconds: seconds(clock.now - start)))
        precondition(written == n * 64, "unexpected response size")

        // 5. RFC 7983 first-byte classification over a mix of packet types.
        let firstBytes: [UInt8] = (0..<64).map { i in [0x00, 0x01, 0x16, 0x17, 0x40, 0x80, 0x90, 0xBF][i % 8] }
        let packets = firstBytes.map { ByteBuffer(bytes: [$0, 0x60, 0, 0]) }
        var stun = 0, dtls = 0, turn = 0, media = 0, other = 0
        start = clock.now
        for _ in 0..<n {
            for i in packets.indices {
                switch PacketClass.classify(packets[i]) {
                case .stun: stun &+= 1
                case .dtls: dtls &+= 1
                case .turnChannel: turn &+= 1
                case .rtpOrRTCP: media &+= 1
                default: other &+= 1
                }
            }
        }
        results.append(BenchResult(
            name: "wire.rfc7983.classify", operations: n * packets.count, seconds: seconds(clock.now - start)))
        precondition(stun + dtls + turn + media + other == n * packets.count)
        return results
    }

    private static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return max(1e-9, Double(c.seconds) + Double(c.attoseconds) * 1e-18)
    }
}
