import CallsMedia
import Foundation
import Glibc
import Logging
import NIOPosix

/// The SFU's audio fan-out end to end on real loopback sockets: a real `MediaServer` and real `MediaClient`s (UDP,
/// ICE, DTLS, SRTP) in one call, in this process.
///
/// Scenarios: one speaker to N listeners (N = 1, 10, 50) and S speakers in a call of N participants (3 of 20).
/// Listeners offer a listen-only audio section (`.inactive`) and the server's three audio slots; speakers send
/// Opus-sized packets (160-byte payload) in bursts under a window of packets in flight, so the server stays busy
/// without overflowing its receive buffer.
///
/// What is charged to the server: only its data-plane event-loop thread (`getrusage(RUSAGE_THREAD)` read on that
/// thread) and, with the LD_PRELOAD shim, the allocations made on that thread (`callsctl_alloc_count_thread`). The
/// clients run on their own event-loop group (one thread) and the driver on Swift's task pool, so their work never
/// lands on the server's thread. (On loopback the kernel delivers a datagram inside the sender's `sendmmsg`, so the
/// receive half of the kernel's UDP path is charged to the server thread, as it is in the ceiling.)
///
/// Reported per scenario: forwarded packets/s (wall) and per core (1 / server CPU per packet), server CPU and
/// allocations per forwarded packet, RSS per participant (server + its in-process client: an upper bound), p50/p99
/// forwarding latency from the server's own histogram (`MediaMetrics.forwardLatency*`, receive → `sendmmsg`), and
/// the ceiling measured in the same run (SRTP protect + `sendmmsg` of the same packets on one thread, with the same
/// protect backend as the scenario).
enum SFUBench {
    struct Scenario {
        var name: String
        var speakers: Int
        var participants: Int
        /// False: the path before this work: a `ByteBuffer` + NIO write per forwarded packet and libsrtp2 protect
        /// (instead of the `sendmmsg` arena and OpenSSL EVP GCM).
        var batched = true
        var listeners: Int { participants - speakers }
        /// Receivers of each speaker's audio.
        var fanOut: Int { participants - 1 }
    }

    static let scenarios = [
        Scenario(name: "1 speaker -> 1 listener", speakers: 1, participants: 2),
        Scenario(name: "1 speaker -> 10 listeners", speakers: 1, participants: 11),
        Scenario(name: "1 speaker -> 50 listeners", speakers: 1, participants: 51),
        Scenario(name: "3 speakers of 20 participants", speakers: 3, participants: 20),
        Scenario(name: "1 speaker -> 10 listeners, before", speakers: 1, participants: 11, batched: false),
        Scenario(name: "1 speaker -> 50 listeners, before", speakers: 1, participants: 51, batched: false),
    ]

    struct Figures {
        var scenario: Scenario
        var incoming = 0
        var forwarded = 0
        var wallSeconds = 0.0
        var serverCPUSeconds = 0.0
        var serverAllocations: Int?
        var rssPerParticipant = 0.0
        /// Heap bytes the server's event-loop thread allocated (net of its frees) per participant, under the shim.
        var serverHeapPerParticipant: Double?
        var p50 = 0.0
        var p99 = 0.0
        var received = 0
        var wrongSSRC = 0
        var cpuPerForwarded: Double { serverCPUSeconds * 1e9 / Double(max(forwarded, 1)) }
    }

    static func run(duration: Duration = .seconds(3)) async -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else {
            print("sfu: libsrtp2 failed to initialise; skipped")
            return []
        }
        // Listeners on one event-loop thread, speakers on another: a speaker's sends never wait behind the listeners'
        // receive work (which would throttle the offered load).
        let clients = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let speakerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var rows: [BenchResult] = []
        var figures: [Figures] = []
        for s in scenarios {
            do {
                let f = try await measure(s, duration: duration, group: clients, speakerGroup: speakerGroup)
                figures.append(f)
                rows.append(
                    BenchResult(
                        name: "sfu \(s.name): server CPU / fwd pkt", operations: max(f.forwarded, 1),
                        seconds: f.serverCPUSeconds))
                rows.append(
                    BenchResult(name: "sfu \(s.name): wall / fwd pkt", operations: max(f.forwarded, 1), seconds: f.wallSeconds))
            } catch {
                print("sfu: \(s.name) failed: \(error)")
            }
        }
        do {
            try await receiveOnlyAllocations()
        } catch {
            print("sfu: receive-only allocation count failed: \(error)")
        }
        var ceilingNs = 0.0
        var ceilingLibsrtpNs = 0.0
        do {
            let ceiling = try EchoPathBench.measureCeiling(packets: 200_000, unprotectToo: false)
            let libsrtp = try EchoPathBench.measureCeiling(packets: 200_000, unprotectToo: false, backend: .libsrtp)
            rows.append(ceiling.row)
            rows.append(libsrtp.row)
            ceilingNs = ceiling.row.nanosPerOp
            ceilingLibsrtpNs = libsrtp.row.nanosPerOp
            print(
                "sfu: ceiling allocations per packet: OpenSSL EVP \(ceiling.allocationsPerPacket.map(EchoPathBench.fmt) ?? "n/a"), "
                    + "libsrtp2 \(libsrtp.allocationsPerPacket.map(EchoPathBench.fmt) ?? "n/a")")
        } catch {
            print("sfu: ceiling failed: \(error)")
        }
        print("")
        print(
            "| scenario | incoming pkt | forwarded pkt | fwd pkt/s (wall) | fwd pkt/s per core | server CPU/fwd (ns) "
                + "| x ceiling | allocs/fwd (server thread) | server heap/participant (KiB) | RSS/participant, server+client (KiB) "
                + "| server thread busy | latency p50 / p99 (µs) | received / wrong SSRC |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for f in figures {
            let c = f.scenario.batched ? ceilingNs : ceilingLibsrtpNs
            let ratio = c > 0 ? EchoPathBench.fmt(f.cpuPerForwarded / c) : "?"
            let allocs = f.serverAllocations.map { EchoPathBench.fmt(Double($0) / Double(max(f.forwarded, 1))) } ?? "n/a"
            print(
                "| \(f.scenario.name) | \(f.incoming) | \(f.forwarded) | \(Int(Double(f.forwarded) / f.wallSeconds)) "
                    + "| \(Int(1e9 / f.cpuPerForwarded)) | \(Int(f.cpuPerForwarded)) | \(ratio) | \(allocs) "
                    + "| \(f.serverHeapPerParticipant.map { String(format: "%.1f", $0 / 1024) } ?? "n/a") "
                    + "| \(Int(f.rssPerParticipant / 1024)) | \(Int(100 * f.serverCPUSeconds / f.wallSeconds))% "
                    + "| \(f.scenario.batched ? "\(Int(f.p50 * 1e6)) / \(Int(f.p99 * 1e6))" : "n/a") "
                    + "| \(f.received) / \(f.wrongSSRC) |")
        }
        print(
            "sfu: ceiling (SRTPSession protect + sendmmsg(32), 160 B payload, same run) = \(Int(ceilingNs)) ns/pkt "
                + "(OpenSSL EVP GCM), \(Int(ceilingLibsrtpNs)) ns/pkt (libsrtp2 GCM; the ceiling of the 'before' rows)")
        print("")
        try? await clients.shutdownGracefully()
        try? await speakerGroup.shutdownGracefully()
        return rows
    }

    static func measure(
        _ s: Scenario, duration: Duration, group: MultiThreadedEventLoopGroup, speakerGroup: MultiThreadedEventLoopGroup
    ) async throws -> Figures {
        let (server, logger) = try await EchoPathBench.loopbackServer(label: "callsctl.bench.sfu") {
            $0.batchUDPSends = s.batched
            $0.rtpProtectBackend = s.batched ? .automatic : .libsrtp
        }
        let rssBefore = residentBytes()
        let heapBefore = try await server.runOnDataPlaneThread { ThreadMallocCounter.bytes }

        var clientConfiguration = MediaClientConfiguration()
        clientConfiguration.eventLoopGroup = group
        clientConfiguration.deliverReceivedPackets = false
        clientConfiguration.connectTimeout = .seconds(20)
        var clients: [MediaClient] = []
        var sessions: [String] = []
        // Every first offer carries the server's three audio slots; nobody renegotiates.
        for i in 0..<s.participants {
            let speaks = i < s.speakers
            var c = clientConfiguration
            if speaks { c.eventLoopGroup = speakerGroup }
            let client = try MediaClient(configuration: c, logger: logger)
            let offer = client.callOffer(audioReceiveSlots: 3, audioDirection: speaks ? .sendonly : .inactive)
            let (id, answer) = try await server.createSession(
                offer: offer, label: "bench-\(i)", route: .call("bench"), participant: "p\(i)")
            clients.append(client)
            sessions.append(id)
            try await client.connect(answer: answer)
        }
        let rssAfter = residentBytes()
        let heapAfter = try await server.runOnDataPlaneThread { ThreadMallocCounter.bytes }
        let speakers = Array(clients.prefix(s.speakers))
        for (i, c) in clients.enumerated() {
            guard c.announcedSSRCs.count == 3 else {
                throw EchoPathBench.SetupFailed(description: "participant \(i) has slots \(c.receiveSlots)")
            }
        }

        let payload = [UInt8](repeating: 0xA5, count: 160)
        let burst = 16
        let window = 160  // incoming packets in flight at the server
        var timestamps = [UInt32](repeating: 0, count: s.speakers)

        /// Sends bursts round robin until `deadline`; returns incoming packets sent.
        func drive(until deadline: ContinuousClock.Instant) async -> Int {
            var sent = 0
            let base = Int(server.metrics.audioPacketsForwarded)
            var lost = 0
            var lastForwarded = base
            var lastProgress = ContinuousClock.now
            var k = 0
            while ContinuousClock.now < deadline {
                let forwarded = Int(server.metrics.audioPacketsForwarded)
                if forwarded != lastForwarded {
                    lastForwarded = forwarded
                    lastProgress = .now
                }
                let done = (forwarded - base) / s.fanOut
                if sent - done - lost + burst <= window {
                    speakers[k].sendAudioBurst(payload: payload, count: burst, firstTimestamp: timestamps[k])
                    timestamps[k] &+= UInt32(burst * 960)
                    k = (k + 1) % s.speakers
                    sent += burst
                } else if ContinuousClock.now - lastProgress > .milliseconds(100) {
                    lost = sent - done  // dropped somewhere (a full socket buffer): stop waiting for them
                    lastProgress = .now
                } else {
                    try? await Task.sleep(for: .microseconds(50))
                }
            }
            // Let the server finish what is in flight (bounded: 300 ms without progress).
            var quiet = ContinuousClock.now
            var last = Int(server.metrics.audioPacketsForwarded)
            while ContinuousClock.now - quiet < .milliseconds(300) {
                try? await Task.sleep(for: .milliseconds(5))
                let now = Int(server.metrics.audioPacketsForwarded)
                if now != last {
                    last = now
                    quiet = .now
                }
            }
            return sent
        }

        _ = await drive(until: .now + .milliseconds(500))  // warm-up: caches, replay windows, arena

        let before = server.metrics
        let countsBefore = await totalReceived(clients)
        let cpuBefore = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
        let allocBefore = try await server.runOnDataPlaneThread { ThreadMallocCounter.count }
        let start = ContinuousClock.now
        let incoming = await drive(until: start + duration)
        let wall = EchoPathBench.seconds(ContinuousClock.now - start)
        let cpuAfter = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
        let allocAfter = try await server.runOnDataPlaneThread { ThreadMallocCounter.count }
        let after = server.metrics
        let countsAfter = await totalReceived(clients)

        var f = Figures(scenario: s)
        f.incoming = incoming
        f.forwarded = Int(after.audioPacketsForwarded - before.audioPacketsForwarded)
        f.wallSeconds = wall
        f.serverCPUSeconds = cpuAfter - cpuBefore
        if let a = allocAfter, let b = allocBefore { f.serverAllocations = a - b }
        f.rssPerParticipant = Double(max(rssAfter - rssBefore, 0)) / Double(s.participants)
        if let a = heapAfter, let b = heapBefore { f.serverHeapPerParticipant = Double(a - b) / Double(s.participants) }
        let perBucket = zip(after.forwardLatencyBuckets, before.forwardLatencyBuckets).map { $0 - $1 }
        var running: UInt64 = 0
        let buckets = perBucket.map { running += $0; return running }  // cumulative, for the quantiles
        f.p50 = quantile(0.5, cumulative: buckets, bounds: after.forwardLatencyBucketBounds)
        f.p99 = quantile(0.99, cumulative: buckets, bounds: after.forwardLatencyBucketBounds)
        f.received = countsAfter.total - countsBefore.total
        f.wrongSSRC = countsAfter.wrong
        print(
            "sfu: \(s.name): \(incoming) in, \(f.forwarded) forwarded, \(f.received) received by clients in "
                + "\(EchoPathBench.fmt(wall)) s; server thread busy \(Int(100 * f.serverCPUSeconds / wall))%; "
                + "latency buckets (cumulative) \(buckets)")

        for c in clients { await c.close() }
        await server.shutdown()
        return f
    }

    /// Allocations on the server thread per datagram that is only read and demultiplexed: RTP-looking datagrams from
    /// an address with no session (dropped right after the RFC 7983 classification and the 5-tuple lookup). This
    /// isolates the receive path (NIO's datagram read and `MediaCore.receive`) from SRTP and forwarding.
    static func receiveOnlyAllocations(datagrams: Int = 20_000) async throws {
        let (server, _) = try await EchoPathBench.loopbackServer(label: "callsctl.bench.sfu")
        defer { Task { await server.shutdown() } }
        guard let port = server.udpPort else { return }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        var packet = [UInt8](repeating: 0xA5, count: 188)
        packet[0] = 0x80
        packet[1] = 111
        func blast(_ count: Int) async {
            var sent = 0
            while sent < count {
                for _ in 0..<64 where sent < count {
                    _ = packet.withUnsafeBytes { bytes in
                        withUnsafePointer(to: &address) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                            }
                        }
                    }
                    sent += 1
                }
                try? await Task.sleep(for: .microseconds(200))  // stay below the socket's receive buffer
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        await blast(2000)
        let droppedBefore = server.metrics.droppedPackets
        let before = try await server.runOnDataPlaneThread { ThreadMallocCounter.count }
        await blast(datagrams)
        let after = try await server.runOnDataPlaneThread { ThreadMallocCounter.count }
        let handled = Int(server.metrics.droppedPackets - droppedBefore)
        if let a = after, let b = before, handled > 0 {
            print(
                "sfu: receive path only (NIO datagram read + demux, no session): \(handled) datagrams, "
                    + "\(EchoPathBench.fmt(Double(a - b) / Double(handled))) allocations per datagram on the server thread")
        }
    }

    /// Packets the clients counted, and packets on an SSRC a client should not have received (its own, or one not
    /// on its audio slots).
    static func totalReceived(_ clients: [MediaClient]) async -> (total: Int, wrong: Int) {
        var total = 0
        var wrong = 0
        for c in clients {
            let counts = await c.receivedPacketCounts()
            let allowed = c.announcedSSRCs
            for (ssrc, n) in counts {
                total += n
                if ssrc == c.audioSSRC || !allowed.contains(ssrc) { wrong += n }
            }
        }
        return (total, wrong)
    }

    /// The `q` quantile from cumulative bucket counts, interpolated linearly inside the bucket (the +Inf bucket
    /// reports its lower bound).
    static func quantile(_ q: Double, cumulative: [UInt64], bounds: [Double]) -> Double {
        guard let total = cumulative.last, total > 0 else { return 0 }
        let rank = q * Double(total)
        var previousCount = 0.0
        var lower = 0.0
        for (i, c) in cumulative.enumerated() {
            let count = Double(c)
            if count >= rank {
                guard i < bounds.count else { return lower }
                let inBucket = count - previousCount
                let fraction = inBucket > 0 ? (rank - previousCount) / inBucket : 0
                return lower + fraction * (bounds[i] - lower)
            }
            previousCount = count
            lower = i < bounds.count ? bounds[i] : lower
        }
        return lower
    }

    /// Resident set size of the process (`/proc/self/statm`), in bytes.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Allocation calls made by the calling thread, under the LD_PRELOAD shim (`benchmarks/alloccount.c`); nil otherwise.
enum ThreadMallocCounter {
    typealias CountFunction = @convention(c) () -> Int
    static let function: CountFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "callsctl_alloc_count_thread") else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
    }()

    static var count: Int? { function?() }

    static let bytesFunction: CountFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "callsctl_alloc_bytes_thread") else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
    }()

    /// Heap bytes allocated minus freed by the calling thread (`malloc_usable_size`), under the shim.
    static var bytes: Int? { bytesFunction?() }
}
