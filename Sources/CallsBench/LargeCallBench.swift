import CallsMedia
import CallsWire
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix

/// One call of many participants (default 1,000) with two speakers, on this machine, load generator included: a real
/// `MediaServer` and real `MediaClient`s (UDP, ICE, DTLS, SRTP) in this process.
///
/// - Joins: every participant makes one offer with the server's three audio slots and connects (ICE + DTLS), 16
///   at a time; reported: joins per second, join time p50/p99, failures, and renegotiation requests (none expected:
///   a join costs the others nothing).
/// - Memory: the server's heap growth per participant (allocations net of frees on the server's thread, under the
///   LD_PRELOAD shim of `scripts/bench.sh`), and the process RSS per participant (server + its in-process client:
///   an upper bound).
/// - Media: two speakers send a 160-byte Opus-sized packet every 20 ms with an RFC 6464 audio level (real time, not
///   a flood) for `duration`; every listener should receive both streams in two of its slots. Reported: packets
///   expected vs received per listener (loss: mean, worst listener, listeners above 0.5 %), the server's forwarding
///   latency p50/p99 (its own receive→`sendmmsg` histogram), server-thread CPU per forwarded packet, and that as a
///   multiple of the protect + `sendmmsg` ceiling measured in the same run.
enum LargeCallBench {
    /// `fanoutThreads`: the server's fan-out helpers (nil: its default for this machine).
    static func run(
        participants: Int = 1000, speakers: Int = 2, duration: Duration = .seconds(10), fanoutThreads: Int? = nil,
        realtimePriority: Int = 10
    ) async -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else {
            print("large: libsrtp2 failed to initialise; skipped")
            return []
        }
        raiseFileLimit(to: participants * 2 + 256)
        let listenerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let speakerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var rows: [BenchResult] = []
        rows = await runCall(
            participants: participants, speakers: speakers, duration: duration, fanoutThreads: fanoutThreads,
            realtimePriority: realtimePriority, listenerGroup: listenerGroup, speakerGroup: speakerGroup)
        try? await listenerGroup.shutdownGracefully()
        try? await speakerGroup.shutdownGracefully()
        return rows
    }

    static func runCall(
        participants: Int, speakers: Int, duration: Duration, fanoutThreads: Int?, realtimePriority: Int,
        listenerGroup: MultiThreadedEventLoopGroup,
        speakerGroup: MultiThreadedEventLoopGroup
    ) async -> [BenchResult] {
        var rows: [BenchResult] = []
        do {
            let (server, logger) = try await EchoPathBench.loopbackServer(label: "callsctl.bench.large") {
                if let fanoutThreads { $0.fanoutThreads = fanoutThreads }
                $0.realtimePriority = realtimePriority
            }
            let helpers = try await server.fanoutHelpers()
            print(
                "large: server data plane: \(helpers.threads) fan-out helper threads, "
                    + (realtimePriority == 0
                        ? "normal scheduling"
                        : server.realtimeApplied == true
                            ? "SCHED_RR priority \(realtimePriority) (serve --realtime-priority \(realtimePriority))"
                            : "normal scheduling (real-time priority \(realtimePriority) was refused)"))
            let rssBefore = SFUBench.residentBytes()
            let heapBefore = try await server.runOnDataPlaneThread { ThreadMallocCounter.bytes }

            var configuration = MediaClientConfiguration()
            configuration.eventLoopGroup = listenerGroup
            configuration.deliverReceivedPackets = false
            configuration.connectTimeout = .seconds(30)
            configuration.audioLevelExtensionID = 1

            // Joins, 16 in flight.
            let joinStart = ContinuousClock.now
            var clients: [MediaClient?] = Array(repeating: nil, count: participants)
            var joinSeconds: [Double] = []
            var failures: [String] = []
            try await withThrowingTaskGroup(of: (Int, MediaClient?, Double, String?).self) { group in
                var next = 0
                func add() {
                    let i = next
                    next += 1
                    var c = configuration
                    if i < speakers { c.eventLoopGroup = speakerGroup }
                    let clientConfiguration = c
                    group.addTask {
                        let t0 = ContinuousClock.now
                        do {
                            let client = try MediaClient(configuration: clientConfiguration, logger: logger)
                            let offer = client.callOffer(audioReceiveSlots: 3, audioDirection: i < speakers ? .sendonly : .inactive)
                            let (_, answer) = try await server.createSession(
                                offer: offer, label: "large-\(i)", route: .call("large"), participant: "p\(i)")
                            try await client.connect(answer: answer)
                            return (i, client, EchoPathBench.seconds(ContinuousClock.now - t0), nil)
                        } catch {
                            return (i, nil, EchoPathBench.seconds(ContinuousClock.now - t0), "\(error)")
                        }
                    }
                }
                for _ in 0..<min(16, participants) { add() }
                var done = 0
                while let (i, client, seconds, error) = try await group.next() {
                    clients[i] = client
                    joinSeconds.append(seconds)
                    if let error { failures.append("participant \(i): \(error)") }
                    done += 1
                    if done % 100 == 0 { print("large: \(done) joined", to: &standardError) }
                    if next < participants { add() }
                }
            }
            let joinWall = EchoPathBench.seconds(ContinuousClock.now - joinStart)
            let rssAfter = SFUBench.residentBytes()
            let heapAfter = try await server.runOnDataPlaneThread { ThreadMallocCounter.bytes }
            let joined = clients.compactMap { $0 }
            joinSeconds.sort()
            let renegotiations = server.metrics.renegotiationsRequested
            print(
                "large: \(joined.count) of \(participants) joined in \(EchoPathBench.fmt(joinWall)) s "
                    + "(\(Int(Double(joined.count) / joinWall)) joins/s), join time p50 \(ms(percentile(joinSeconds, 0.5))) ms, "
                    + "p99 \(ms(percentile(joinSeconds, 0.99))) ms; \(failures.count) failed; "
                    + "\(renegotiations) renegotiation requests")
            for f in failures.prefix(5) { print("large:   \(f)") }
            var heapPerParticipant: Double?
            if let a = heapAfter, let b = heapBefore { heapPerParticipant = Double(a - b) / Double(participants) }
            let rssPerParticipant = Double(max(rssAfter - rssBefore, 0)) / Double(participants)
            print(
                "large: server heap per participant \(heapPerParticipant.map { String(format: "%.1f KiB", $0 / 1024) } ?? "n/a (run under scripts/bench.sh)"), "
                    + "RSS per participant (server + client) \(String(format: "%.1f KiB", rssPerParticipant / 1024))")
            guard joined.count == participants else {
                await shutdown(clients: joined, server: server)
                return rows
            }

            // Media: real-time speakers.
            let speakerClients = Array(joined.prefix(speakers))
            let payload = [UInt8](repeating: 0xA5, count: 160)
            try await Task.sleep(for: .milliseconds(500))
            let before = server.metrics
            let countsBefore = await counts(joined)
            let cpuBefore = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
            let helpersBefore = try await server.fanoutHelpers()
            let processBefore = EchoPathBench.processCPUSeconds()
            let start = ContinuousClock.now
            let frames = Int(EchoPathBench.seconds(duration) * 50)
            // Speakers are not in phase (real microphones are not): speaker k sends k/speakers of a frame later.
            let step = Duration.milliseconds(20) / speakers
            var deadline = start
            for n in 0..<frames {
                for c in speakerClients {
                    c.sendAudio(payload: payload, timestamp: UInt32(truncatingIfNeeded: n * 960), audioLevel: 30)
                    deadline = deadline + step
                    try? await Task.sleep(until: deadline, clock: .continuous)
                }
            }
            // Let the last packets arrive (bounded).
            var quiet = ContinuousClock.now
            var last = server.metrics.audioPacketsForwarded
            while ContinuousClock.now - quiet < .milliseconds(1000) {
                try? await Task.sleep(for: .milliseconds(10))
                let now = server.metrics.audioPacketsForwarded
                if now != last {
                    last = now
                    quiet = .now
                }
            }
            let wall = EchoPathBench.seconds(ContinuousClock.now - start)
            // Heap once every session is settled: listeners that send nothing have their DTLS state freed 10 s
            // after their handshake (speakers at their first packet).
            let heapSettled = try await server.runOnDataPlaneThread { ThreadMallocCounter.bytes }
            let cpuAfter = try await server.runOnDataPlaneThread { EchoPathBench.threadCPUSeconds() }
            let helpersAfter = try await server.fanoutHelpers()
            let processCPU = EchoPathBench.processCPUSeconds() - processBefore
            let after = server.metrics
            let countsAfter = await counts(joined)

            let sent = frames * speakers
            let forwarded = Int(after.audioPacketsForwarded - before.audioPacketsForwarded)
            // The media thread and the fan-out helpers together.
            let helperCPU = helpersAfter.cpuSeconds - helpersBefore.cpuSeconds
            let serverCPU = cpuAfter - cpuBefore + helperCPU
            let cpuPerForwarded = serverCPU * 1e9 / Double(max(forwarded, 1))
            var losses: [Double] = []
            for i in joined.indices {
                let expected = i < speakers ? frames * (speakers - 1) : frames * speakers
                let got = countsAfter[i] - countsBefore[i]
                losses.append(expected > 0 ? max(0, Double(expected - got)) / Double(expected) : 0)
            }
            let meanLoss = losses.reduce(0, +) / Double(max(losses.count, 1))
            let worstLoss = losses.max() ?? 0
            let above = losses.filter { $0 > 0.005 }.count
            let perBucket = zip(after.forwardLatencyBuckets, before.forwardLatencyBuckets).map { $0 - $1 }
            var running: UInt64 = 0
            let buckets = perBucket.map { running += $0; return running }
            let total = Double(max(running, 1))
            print(
                "large: latency per bucket (upper bound: share): "
                    + zip(after.forwardLatencyBucketBounds.map { "\(Int($0 * 1e6)) µs" } + ["+Inf"], perBucket)
                    .filter { $0.1 > 0 }.map { "\($0.0): \(String(format: "%.1f", 100 * Double($0.1) / total)) %" }
                    .joined(separator: ", "))
            let p50 = SFUBench.quantile(0.5, cumulative: buckets, bounds: after.forwardLatencyBucketBounds)
            let p99 = SFUBench.quantile(0.99, cumulative: buckets, bounds: after.forwardLatencyBucketBounds)
            let ceiling = try EchoPathBench.measureCeiling(packets: 200_000, unprotectToo: false)
            let ceilingNs = ceiling.row.nanosPerOp
            // The ceiling at the call's pace (what the ratio is read against) and back to back (every context hot).
            let fanOut = try await fanOutCeiling(receivers: participants - 1, pacing: .milliseconds(10))
            let fanOutNs = fanOut.nanosPerOp
            let fanOutHot = try await fanOutCeiling(receivers: participants - 1)
            print(
                "large: \(sent) packets sent by \(speakers) speakers, \(forwarded) forwarded in \(EchoPathBench.fmt(wall)) s "
                    + "(\(Int(Double(forwarded) / wall)) pkt/s); loss per listener mean \(pct(meanLoss)), worst \(pct(worstLoss)), "
                    + "\(above) listeners above 0.5 %; latency p50 \(Int(p50 * 1e6)) µs, p99 \(Int(p99 * 1e6)) µs; "
                    + "server thread busy \(Int(100 * serverCPU / wall)) %, \(Int(cpuPerForwarded)) ns per forwarded packet = "
                    + "\(EchoPathBench.fmt(cpuPerForwarded / fanOutNs)) x the fan-out ceiling (own key and socket per receiver, a round every 10 ms, \(Int(fanOutNs)) ns; "
                    + "back to back \(Int(fanOutHot.nanosPerOp)) ns, \(EchoPathBench.fmt(cpuPerForwarded / fanOutHot.nanosPerOp)) x), "
                    + "\(EchoPathBench.fmt(cpuPerForwarded / ceilingNs)) x the one-destination ceiling (\(Int(ceilingNs)) ns), same run; "
                    + "\(helpersAfter.threads) fan-out helper threads: \(Int(100 * helperCPU / wall)) % busy, "
                    + "\(helpersAfter.chunks - helpersBefore.chunks) fan-out chunks sent by them; the whole process (server and "
                    + "load generator) used \(String(format: "%.2f", processCPU / wall)) of \(System.coreCount) cores, "
                    + "\(String(format: "%.1f", processCPU * 1e3 / Double(max(sent, 1)))) ms of CPU per speaker packet")
            var heapSettledPerParticipant: Double?
            if let a = heapSettled, let b = heapBefore { heapSettledPerParticipant = Double(a - b) / Double(participants) }
            print(
                "large: server heap per participant once settled (DTLS states freed: \(after.dtlsReleased)): "
                    + "\(heapSettledPerParticipant.map { String(format: "%.1f KiB", $0 / 1024) } ?? "n/a")")
            print(
                "large: server counters in the window: \(after.packetsIn - before.packetsIn) datagrams in, "
                    + "\(after.droppedPackets - before.droppedPackets) dropped, \(after.mutedDropped - before.mutedDropped) muted, "
                    + "\(after.sendBufferFull - before.sendBufferFull) send buffer full, \(after.sendErrors - before.sendErrors) send errors")
            print("")
            print("| participants | speakers | joins/s | join p50 / p99 (ms) | failed joins | renegotiations | server heap/participant after joins / settled (KiB) | RSS/participant, server+client (KiB) | fwd pkt/s | loss mean / worst | listeners > 0.5 % loss | latency p50 / p99 (µs) | server CPU/fwd (ns) | fan-out ceiling, paced / back to back (ns) | x fan-out ceiling, paced / back to back | x one-destination ceiling |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            print(
                "| \(participants) | \(speakers) | \(Int(Double(joined.count) / joinWall)) | \(ms(percentile(joinSeconds, 0.5))) / \(ms(percentile(joinSeconds, 0.99))) "
                    + "| \(failures.count) | \(renegotiations) | \(heapPerParticipant.map { String(format: "%.1f", $0 / 1024) } ?? "n/a") / \(heapSettledPerParticipant.map { String(format: "%.1f", $0 / 1024) } ?? "n/a") "
                    + "| \(String(format: "%.1f", rssPerParticipant / 1024)) | \(Int(Double(forwarded) / wall)) | \(pct(meanLoss)) / \(pct(worstLoss)) "
                    + "| \(above) | \(Int(p50 * 1e6)) / \(Int(p99 * 1e6)) | \(Int(cpuPerForwarded)) | \(Int(fanOutNs)) / \(Int(fanOutHot.nanosPerOp)) "
                    + "| \(EchoPathBench.fmt(cpuPerForwarded / fanOutNs)) / \(EchoPathBench.fmt(cpuPerForwarded / fanOutHot.nanosPerOp)) | \(EchoPathBench.fmt(cpuPerForwarded / ceilingNs)) |")
            print("")
            rows.append(BenchResult(name: "large \(participants)x\(speakers): joins", operations: joined.count, seconds: joinWall))
            rows.append(BenchResult(name: "large \(participants)x\(speakers): server CPU / fwd pkt", operations: max(forwarded, 1), seconds: serverCPU))
            rows.append(ceiling.row)
            rows.append(fanOut)
            rows.append(fanOutHot)
            await shutdown(clients: joined, server: server)
        } catch {
            print("large: failed: \(error)")
        }
        return rows
    }

    static func counts(_ clients: [MediaClient]) async -> [Int] {
        var out: [Int] = []
        for c in clients { out.append(await c.receivedPacketCounts().values.reduce(0, +)) }
        return out
    }

    static func shutdown(clients: [MediaClient], server: MediaServer) async {
        await withTaskGroup(of: Void.self) { group in
            for c in clients { group.addTask { await c.close() } }
        }
        await server.shutdown()
    }

    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))]
    }

    static func ms(_ s: Double) -> String { String(format: "%.1f", s * 1000) }
    static func pct(_ f: Double) -> String { String(format: "%.2f %%", f * 100) }

    static func raiseFileLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Standard error as a `TextOutputStream` (progress lines stay out of the tables on standard output).
nonisolated(unsafe) var standardError = StandardErrorStream()

struct StandardErrorStream: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}

extension LargeCallBench {
    /// The ceiling of a fan-out to `receivers` listeners on one core: each packet SRTP-protected with the receiver's
    /// own session (so `receivers` distinct key states, as the server has) and sent with `sendmmsg` (32 per call)
    /// to the receiver's own loopback socket (`receivers` distinct sockets), each a NIO datagram channel on another
    /// event loop that reads and discards, as the listeners' loop does (on loopback, waking the reader is part of the
    /// sender's send).
    /// Nothing else: no receive, no routing.
    /// The single-context, single-socket ceiling of `EchoPathBench.measureCeiling` keeps every key and socket hot in
    /// the cache; a fan-out to 1,000 cannot.
    /// The fan-out ceiling: each packet protected with the receiver's own SRTP context and sent with `sendmmsg(32)` to
    /// the receiver's own loopback socket, read by NIO datagram channels on another thread as the listeners are.
    /// `pacing`: one round (a packet to every receiver) per interval, as the call's speakers send, timed by this
    /// thread's CPU (as the server is); nil: rounds back to back, timed by the clock (every context and the readers
    /// stay hot, which a call with pauses between packets never has).
    static func fanOutCeiling(receivers: Int, rounds: Int = 200, pacing: Duration? = nil) async throws -> BenchResult {
        let clientContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-client"))
        let serverContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-server"))
        let keys = try MediaBench.handshake(clientContext: clientContext, serverContext: serverContext)
        let sessions = try (0..<receivers).map { _ in try SRTPSession(keyingMaterial: keys.swapped) }
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard sender >= 0 else { throw EchoPathBench.SetupFailed(description: "socket() failed") }
        defer { close(sender) }
        let readers = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var sinks: [any Channel] = []
        var addresses: [sockaddr_in] = []
        for _ in 0..<receivers {
            let channel = try await DatagramBootstrap(group: readers)
                .channelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
                .bind(host: "127.0.0.1", port: 0).get()
            sinks.append(channel)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(channel.localAddress?.port ?? 0).bigEndian)
            addresses.append(address)
        }
        defer {
            for c in sinks { c.close(promise: nil) }
            readers.shutdownGracefully { _ in }
        }
        let batch = 32
        let plainLength = 12 + 160
        let stride = plainLength + SRTPSession.maxTrailerLength
        var slots = [UInt8](repeating: 0, count: batch * stride)
        var iovecs = [iovec](repeating: iovec(), count: batch)
        var headers = [EchoPathBench.MMsgHdr](repeating: EchoPathBench.MMsgHdr(), count: batch)
        let packets = receivers * rounds
        let name = pacing == nil
            ? "ceiling: fan-out to \(receivers) back to back (own key + socket each) 160 B"
            : "ceiling: fan-out to \(receivers) every 10 ms, thread CPU (own key + socket each) 160 B"
        return try slots.withUnsafeMutableBytes { all in
            try iovecs.withUnsafeMutableBufferPointer { iov in
                try headers.withUnsafeMutableBufferPointer { hdr in
                    try addresses.withUnsafeMutableBufferPointer { to in
                        func sendRound(_ round: Int) throws {
                            var r = 0
                            while r < receivers {
                                let n = min(batch, receivers - r)
                                for k in 0..<n {
                                    let slot = UnsafeMutableRawBufferPointer(rebasing: all[k * stride..<(k + 1) * stride])
                                    MediaBench.writeRTPHeader(
                                        slot, sequence: UInt16(truncatingIfNeeded: round),
                                        timestamp: UInt32(truncatingIfNeeded: round &* 960))
                                    let out = try sessions[r + k].protectRTP(slot, length: plainLength)
                                    iov[k] = iovec(iov_base: slot.baseAddress, iov_len: out)
                                    hdr[k] = EchoPathBench.MMsgHdr()
                                    hdr[k].msg_hdr.msg_name = UnsafeMutableRawPointer(to.baseAddress! + r + k)
                                    hdr[k].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
                                    hdr[k].msg_hdr.msg_iov = iov.baseAddress! + k
                                    hdr[k].msg_hdr.msg_iovlen = 1
                                }
                                var done = 0
                                while done < n {
                                    let sent = EchoPathBench.sendmmsg(
                                        sender, UnsafeMutableRawPointer(hdr.baseAddress! + done), UInt32(n - done), 0)
                                    if sent <= 0 { break }
                                    done += Int(sent)
                                }
                                r += n
                            }
                        }
                        guard let pacing else {
                            return try measure(name, operations: packets) {
                                for round in 0..<rounds { try sendRound(round) }
                            }
                        }
                        let pause = UInt32(max(pacing.components.seconds * 1_000_000 + pacing.components.attoseconds / 1_000_000_000_000, 0))
                        let cpu0 = EchoPathBench.threadCPUSeconds()
                        for round in 0..<rounds {
                            try sendRound(round)
                            usleep(pause)
                        }
                        return BenchResult(name: name, operations: packets, seconds: EchoPathBench.threadCPUSeconds() - cpu0)
                    }
                }
            }
        }
    }
}
