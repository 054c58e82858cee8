import CallsMedia
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// `callsctl-bench flood`: a running call while the media port takes a junk flood and both cores are kept busy.
///
/// - A real `MediaServer` (default settings) and two real `MediaClient`s in one call; one speaks a 160-byte packet
///   every 20 ms for `seconds`, the other counts what it receives.
/// - Junk: `rate` datagrams per second of random sizes (1-1,200 bytes) and random bytes (so some look like STUN,
///   DTLS or RTP to the demultiplexer), from 2 × 32 sockets (64 source ports), paced in `sendmmsg` batches of 64 by two threads.
/// - A CPU hog: one thread per core spinning for the whole run.
/// - Reports: the call's packets received / sent (target: at least 99 %), junk sent, the kernel's drops at the
///   media socket, the receive buffer granted and the server thread's CPU.
enum FloodBench {
    static func run(
        rate: Int = 200_000, seconds: Int = 10, hogs: Int = System.coreCount, realtimePriority: Int = 0
    ) async -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else {
            print("flood: libsrtp2 failed to initialise; skipped")
            return []
        }
        do {
            let (server, logger) = try await EchoPathBench.loopbackServer(label: "callsctl.bench.flood") {
                $0.realtimePriority = realtimePriority
            }
            print("flood: server at \(realtimePriority == 0 ? "normal scheduling" : server.realtimeApplied == true ? "SCHED_RR \(realtimePriority)" : "normal scheduling (SCHED_RR refused)")")
            guard let port = server.udpPort else {
                print("flood: the server has no UDP port")
                return []
            }
            var configuration = MediaClientConfiguration()
            configuration.deliverReceivedPackets = false
            configuration.audioLevelExtensionID = 1
            var clients: [MediaClient] = []
            for i in 0..<2 {
                let client = try MediaClient(configuration: configuration, logger: logger)
                let offer = client.callOffer(audioReceiveSlots: 3, audioDirection: i == 0 ? .sendonly : .inactive)
                let (_, answer) = try await server.createSession(
                    offer: offer, label: "flood-\(i)", route: .call("flood"), participant: "p\(i)")
                try await client.connect(answer: answer)
                clients.append(client)
            }
            let speaker = clients[0], listener = clients[1]
            let stop = Flag()
            let flooded = Counter()
            var threads: [Thread] = []
            for _ in 0..<hogs {
                let t = Thread {
                    var x: UInt64 = 1
                    while !stop.value.load(ordering: .relaxed) {
                        for _ in 0..<10_000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
                    }
                    if x == 42 { print("") }
                }
                threads.append(t)
            }
            // Two sending threads (one per core): one alone cannot reach 200k/s beside the hogs.
            for _ in 0..<2 {
                threads.append(Thread { flooded.value.add(flood(port: port, rate: rate / 2, stop: stop), ordering: .relaxed) })
            }
            let before = server.metrics
            let receivedBefore = await listener.receivedPacketCounts().values.reduce(0, +)
            let cpuBefore = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
            let floodStart = ContinuousClock.now
            for t in threads { t.start() }
            try await Task.sleep(for: .milliseconds(500))
            let frames = seconds * 50
            let start = ContinuousClock.now
            let payload = [UInt8](repeating: 0x5A, count: 160)
            for n in 0..<frames {
                speaker.sendAudio(payload: payload, timestamp: UInt32(truncatingIfNeeded: n * 960), audioLevel: 30)
                try? await Task.sleep(until: start + .milliseconds(20 * (n + 1)), clock: .continuous)
            }
            try await Task.sleep(for: .milliseconds(500))
            stop.value.store(true, ordering: .relaxed)
            let floodSeconds = EchoPathBench.seconds(ContinuousClock.now - floodStart)
            // Let the threads see the flag (bounded: they check it every few microseconds).
            for _ in 0..<200 where threads.contains(where: { $0.isExecuting }) { try await Task.sleep(for: .milliseconds(10)) }
            let wall = EchoPathBench.seconds(ContinuousClock.now - start)
            // The last call packets may still be in flight.
            var received = 0
            for _ in 0..<100 {
                received = await listener.receivedPacketCounts().values.reduce(0, +) - receivedBefore
                if received >= frames { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let cpuAfter = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
            let after = server.metrics
            let junk = flooded.value.load(ordering: .relaxed)
            let share = Double(received) / Double(frames)
            print(
                "flood: \(junk) junk datagrams in \(EchoPathBench.fmt(floodSeconds)) s (\(Int(Double(junk) / floodSeconds)) /s, "
                    + "1-1200 bytes, 64 source ports), \(hogs) CPU hog threads; the call: \(received) of \(frames) packets "
                    + "(\(String(format: "%.2f", 100 * share)) %, target >= 99 %); kernel drops at the media socket "
                    + "\(after.udpReceiveDrops - before.udpReceiveDrops), receive buffer \(after.udpReceiveBufferBytes / 1024) KiB; "
                    + "server: \(after.packetsIn - before.packetsIn) datagrams read, "
                    + "\(after.droppedPackets - before.droppedPackets) dropped as junk, thread busy "
                    + "\(Int(100 * (cpuAfter - cpuBefore) / floodSeconds)) %, "
                    + "\(Int((cpuAfter - cpuBefore) * 1e9 / Double(max(after.packetsIn - before.packetsIn, 1)))) ns per datagram read")
            for c in clients { await c.close() }
            await server.shutdown()
            return [
                BenchResult(name: "flood: junk datagrams read by the server", operations: max(Int(after.packetsIn - before.packetsIn), 1), seconds: max(cpuAfter - cpuBefore, 1e-9)),
                BenchResult(name: "flood: call packets delivered (per 10,000)", operations: max(Int(share * 10_000), 1), seconds: 1),
            ]
        } catch {
            print("flood: failed: \(error)")
            return []
        }
    }

    /// Sends junk to 127.0.0.1:`port` at `rate` per second until `stop`; returns how many went out.
    final class Flag: Sendable { let value = Atomic<Bool>(false) }
    final class Counter: Sendable { let value = Atomic<Int>(0) }

    static func flood(port: Int, rate: Int, stop: Flag) -> Int {
        // The attacker stands for another machine: at SCHED_RR 5 (where allowed) it reaches its rate beside the hogs.
        var parameters = sched_param(sched_priority: 5)
        _ = sched_setscheduler(0, 2, &parameters)
        let sockets = (0..<32).map { _ in socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
        defer { for s in sockets { close(s) } }
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &destination.sin_addr)
        let batch = 64
        var generator = SystemRandomNumberGenerator()
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * 1200, alignment: 16)
        defer { data.deallocate() }
        for k in 0..<data.count { data[k] = UInt8.random(in: 0...255, using: &generator) }
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let messages = UnsafeMutablePointer<EchoPathBench.MMsgHdr>.allocate(capacity: batch)
        defer {
            vectors.deallocate()
            messages.deallocate()
        }
        var sent = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var round = 0
        return withUnsafeMutablePointer(to: &destination) { name in
            while !stop.value.load(ordering: .relaxed) {
                // Paced: batch k leaves at k * batch / rate seconds.
                let due = start + UInt64(round) * UInt64(batch) * 1_000_000_000 / UInt64(rate)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now {
                    usleep(UInt32(min((due - now) / 1000, 100_000)))
                    continue
                }
                let fd = sockets[round % sockets.count]
                round += 1
                for i in 0..<batch {
                    let base = data.baseAddress! + i * 1200
                    base.storeBytes(of: UInt8.random(in: 0...255, using: &generator), as: UInt8.self)
                    vectors[i] = iovec(iov_base: base, iov_len: Int.random(in: 1...1200, using: &generator))
                    messages[i] = EchoPathBench.MMsgHdr(
                        msg_hdr: msghdr(
                            msg_name: UnsafeMutableRawPointer(name), msg_namelen: socklen_t(MemoryLayout<sockaddr_in>.size),
                            msg_iov: vectors + i, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0),
                        msg_len: 0)
                }
                let n = EchoPathBench.sendmmsg(fd, UnsafeMutableRawPointer(messages), UInt32(batch), 0)
                if n > 0 { sent += Int(n) }
            }
            return sent
        }
    }
}
