import CallsMedia
import Foundation
import Glibc
import Logging
import Synchronization

/// The echo path end to end on real loopback sockets: a real `MediaServer` in `.echo` mode and a real `MediaClient`
/// (UDP) in this process. The client blasts Opus-sized (160-byte payload) RTP packets under a small in-flight window;
/// the server receives (NIO vector reads), SRTP-unprotects, rewrites the SSRC, protects and sends each one back.
///
/// Both sides share the process, so the figures are split:
/// - server thread CPU: `getrusage(RUSAGE_THREAD)` read on the server's data-plane event-loop thread before and after
///   the blast (the client's NIO loop is a different thread of the same group), divided by packets the server
///   forwarded: the cost of receive → unprotect → protect → send, NIO included;
/// - process CPU (`RUSAGE_SELF`): server + client (protect/unprotect, its loop, the sending and counting tasks);
/// - wall time per echoed packet.
///
/// In the same run, the ceiling: libsrtp2 protect of the same packets plus batched `sendmmsg` (32 per call) to a
/// loopback UDP socket, on one thread with no event loop (and a variant that also unprotects, i.e. the crypto of the
/// echo path without any receive). The ratio echo-path server CPU / ceiling is printed.
///
/// Allocations: when run under the LD_PRELOAD counting shim documented at `MallocCounter`, every allocation call of
/// the process is counted; the delta across the blast divided by packets echoed includes the client's and the sending
/// task's allocations (an upper bound for the server's). The ceiling loop's count is printed for comparison.
/// (`mallinfo2()` reports heap totals, not calls, and Swift's Glibc module does not import it, nor
/// `sendmmsg`/`RUSAGE_THREAD`, without `_GNU_SOURCE`; those two are reached by `dlsym`/value below.)
enum EchoPathBench {
    static func run(packets: Int = 200_000, timeLimit: Duration = .seconds(10)) async -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else {
            print("echo: libsrtp2 failed to initialise; skipped")
            return []
        }
        do {
            let echo = try await echoPath(packets: packets, timeLimit: timeLimit)
            let ceiling = try measureCeiling(packets: packets, unprotectToo: false)
            let ceilingFull = try measureCeiling(packets: packets, unprotectToo: true)
            var rows = echo.rows
            rows.append(ceiling.row)
            rows.append(ceilingFull.row)
            let echoNs = echo.serverCPUNanosPerPacket
            print(
                "echo: sent \(echo.sent), server forwarded \(echo.forwarded), client received \(echo.received) "
                    + "in \(fmt(echo.wallSeconds)) s wall; server thread CPU \(fmt(echo.serverCPUSeconds)) s, "
                    + "process CPU \(fmt(echo.processCPUSeconds)) s")
            print(
                "echo: ratio echo-path server CPU / ceiling (protect + sendmmsg) = "
                    + "\(fmt(echoNs)) / \(fmt(ceiling.row.nanosPerOp)) ns = \(fmt(echoNs / ceiling.row.nanosPerOp))x; "
                    + "/ ceiling (unprotect + protect + sendmmsg) = \(fmt(echoNs / ceilingFull.row.nanosPerOp))x")
            if let perPacket = echo.allocationsPerPacket, let ceilingPerPacket = ceiling.allocationsPerPacket {
                print(
                    "echo: allocations (LD_PRELOAD counting shim: malloc+calloc+realloc+*memalign, whole process) "
                        + "per echoed packet = \(fmt(perPacket)) (client + server + sending task); ceiling loop = "
                        + "\(fmt(ceilingPerPacket)) per packet, of which SRTPSession.protectRTP alone "
                        + "\(ceiling.protectAllocationsPerPacket.map(fmt) ?? "?")")
            } else {
                print("echo: allocations not counted (run under the LD_PRELOAD shim documented in EchoPathBench.swift)")
            }
            return rows
        } catch {
            print("echo: benchmark failed: \(error)")
            return []
        }
    }

    static func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

    struct EchoFigures {
        var rows: [BenchResult]
        var sent: Int
        var forwarded: Int
        var received: Int
        var wallSeconds: Double
        var serverCPUSeconds: Double
        var processCPUSeconds: Double
        var allocationsPerPacket: Double?
        var serverCPUNanosPerPacket: Double { serverCPUSeconds * 1e9 / Double(max(forwarded, 1)) }
    }

    struct SetupFailed: Error, CustomStringConvertible { var description: String }

    static func echoPath(packets: Int, timeLimit: Duration) async throws -> EchoFigures {
        let (server, logger) = try await loopbackServer(label: "callsctl.bench.echo")
        // Created right after the server: the group hands out loops round robin, so the client gets the other one.
        let client = try MediaClient(logger: logger)
        let (sessionID, answer) = try await server.createSession(offer: client.offer, label: "bench")
        try await client.connect(answer: answer)

        let received = AtomicCount()
        let counter = Task { [stream = client.receivedAudio] in
            for await _ in stream { received.value.wrappingAdd(1, ordering: .relaxed) }
        }
        func receivedCount() -> Int { received.value.load(ordering: .relaxed) }

        let payload = [UInt8](repeating: 0xA5, count: 160)
        let window = 256
        let burst = 32

        /// Sends `count` packets under the window; returns (sent, finished wall time).
        func blast(_ count: Int, deadline: ContinuousClock.Instant) async -> Int {
            var sent = 0
            var assumedLost = 0
            var lastProgress = ContinuousClock.now
            let base = receivedCount()
            var lastReceived = 0
            while sent < count, ContinuousClock.now < deadline {
                let got = receivedCount() - base
                if got != lastReceived {
                    lastReceived = got
                    lastProgress = .now
                }
                if sent - got - assumedLost < window {
                    for _ in 0..<min(burst, count - sent) {
                        client.sendAudio(payload: payload, timestamp: UInt32(truncatingIfNeeded: sent &* 960))
                        sent += 1
                    }
                } else if ContinuousClock.now - lastProgress > .milliseconds(250) {
                    assumedLost = sent - got  // stalled: whatever is in flight was dropped somewhere
                } else {
                    try? await Task.sleep(for: .microseconds(100))
                }
            }
            // Drain: wait until every packet came back or nothing moved for 300 ms.
            var last = receivedCount()
            var quietSince = ContinuousClock.now
            while receivedCount() - base < sent, ContinuousClock.now - quietSince < .milliseconds(300) {
                try? await Task.sleep(for: .milliseconds(1))
                let now = receivedCount()
                if now != last {
                    last = now
                    quietSince = .now
                }
            }
            return sent
        }

        // Warm-up (JIT-free, but caches, NIO buffers and libsrtp's replay window).
        _ = await blast(2000, deadline: .now + .seconds(2))

        let forwardedBefore = Int(server.metrics.mediaPacketsForwarded)
        let receivedBefore = receivedCount()
        let serverCPUBefore = try await server.runOnDataPlaneThread { threadCPUSeconds() }
        let processBefore = processCPUSeconds()
        let allocationsBefore = MallocCounter.count
        let start = ContinuousClock.now

        let sent = await blast(packets, deadline: start + timeLimit)

        let elapsed = ContinuousClock.now - start
        let allocations = MallocCounter.count.flatMap { now in allocationsBefore.map { now - $0 } }
        let processAfter = processCPUSeconds()
        let serverCPUAfter = try await server.runOnDataPlaneThread { threadCPUSeconds() }
        // Metrics are published once per loop tick; the submit above ran after the last forwarded packet's tick.
        let forwarded = Int(server.metrics.mediaPacketsForwarded) - forwardedBefore
        let got = receivedCount() - receivedBefore

        counter.cancel()
        await client.close()
        await server.closeSession(sessionID)
        await server.shutdown()

        let wall = seconds(elapsed)
        let echoed = max(got, 1)
        let serverCPU = serverCPUAfter - serverCPUBefore
        let processCPU = processAfter - processBefore
        let rows = [
            BenchResult(
                name: "echo path: server thread CPU / forwarded pkt", operations: max(forwarded, 1),
                seconds: serverCPU),
            BenchResult(
                name: "echo path: process CPU (client+server) / echoed", operations: echoed, seconds: processCPU),
            BenchResult(name: "echo path: wall time / echoed pkt (window 256)", operations: echoed, seconds: wall),
        ]
        return EchoFigures(
            rows: rows, sent: sent, forwarded: forwarded, received: got, wallSeconds: wall,
            serverCPUSeconds: serverCPU, processCPUSeconds: processCPU,
            allocationsPerPacket: allocations.map { Double($0) / Double(echoed) })
    }

    struct CeilingFigures {
        var row: BenchResult
        var allocationsPerPacket: Double?
        var protectAllocationsPerPacket: Double?
    }

    /// libsrtp2 protect (optionally preceded by unprotect of a packet protected by the peer) + `sendmmsg` of 32
    /// packets per call to a bound loopback UDP socket that is never read (the kernel drops what overflows its
    /// buffer; the sender's cost is the same).
    static func measureCeiling(
        packets: Int, unprotectToo: Bool, backend: SRTPSession.RTPProtectBackend = .automatic
    ) throws -> CeilingFigures {
        let clientContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-client"))
        let serverContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-server"))
        let keys = try MediaBench.handshake(clientContext: clientContext, serverContext: serverContext)
        let peer = try SRTPSession(keyingMaterial: keys)  // the "client" protecting what the server unprotects
        let session = try SRTPSession(keyingMaterial: keys.swapped, rtpProtectBackend: backend)

        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let sink = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard sender >= 0, sink >= 0 else { throw SetupFailed(description: "socket() failed") }
        defer {
            close(sender)
            close(sink)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sink, $0, length) }
        }
        guard bound == 0 else { throw SetupFailed(description: "bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sink, $0, &length) }
        }

        let batch = 32
        let plainLength = 12 + 160
        let stride = plainLength + SRTPSession.maxTrailerLength
        var slots = [UInt8](repeating: 0, count: batch * stride)
        var iovecs = [iovec](repeating: iovec(), count: batch)
        var headers = [MMsgHdr](repeating: MMsgHdr(), count: batch)
        var sequence: UInt16 = 0
        var index = 0
        let suffix = backend == .libsrtp ? " (libsrtp2)" : ""
        let name = unprotectToo
            ? "ceiling: unprotect+protect+sendmmsg(32) 160 B\(suffix)" : "ceiling: srtp protect + sendmmsg(32) 160 B\(suffix)"
        let allocationsBefore = MallocCounter.count
        let row = try slots.withUnsafeMutableBytes { all in
            try iovecs.withUnsafeMutableBufferPointer { iov in
                try headers.withUnsafeMutableBufferPointer { hdr in
                    try withUnsafeMutablePointer(to: &address) { to in
                        try measure(name, operations: packets) {
                            while index < packets {
                                let n = min(batch, packets - index)
                                for k in 0..<n {
                                    let slot = UnsafeMutableRawBufferPointer(rebasing: all[k * stride..<(k + 1) * stride])
                                    sequence &+= 1
                                    MediaBench.writeRTPHeader(
                                        slot, sequence: sequence, timestamp: UInt32(truncatingIfNeeded: index &* 960))
                                    var plain = plainLength
                                    if unprotectToo {
                                        let protected = try peer.protectRTP(slot, length: plainLength)
                                        plain = try session.unprotectRTP(slot, length: protected)
                                    }
                                    let out = try session.protectRTP(slot, length: plain)
                                    iov[k] = iovec(iov_base: slot.baseAddress, iov_len: out)
                                    hdr[k] = MMsgHdr()
                                    hdr[k].msg_hdr.msg_name = UnsafeMutableRawPointer(to)
                                    hdr[k].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
                                    hdr[k].msg_hdr.msg_iov = iov.baseAddress! + k
                                    hdr[k].msg_hdr.msg_iovlen = 1
                                }
                                var done = 0
                                while done < n {
                                    let r = sendmmsg(sender, UnsafeMutableRawPointer(hdr.baseAddress! + done), UInt32(n - done), 0)
                                    if r <= 0 { break }
                                    done += Int(r)
                                }
                                index += n
                            }
                        }
                    }
                }
            }
        }
        let allocations = MallocCounter.count.flatMap { now in allocationsBefore.map { now - $0 } }
        // Where the ceiling's allocations come from: 1000 protects alone (no socket).
        var protectAllocations: Double?
        if let before = MallocCounter.count {
            try slots.withUnsafeMutableBytes { all in
                let slot = UnsafeMutableRawBufferPointer(rebasing: all[0..<stride])
                for _ in 0..<1000 {
                    sequence &+= 1
                    MediaBench.writeRTPHeader(slot, sequence: sequence, timestamp: 0)
                    _ = try session.protectRTP(slot, length: plainLength)
                }
            }
            protectAllocations = MallocCounter.count.map { Double($0 - before) / 1000 }
        }
        return CeilingFigures(
            row: row, allocationsPerPacket: allocations.map { Double($0) / Double(packets) },
            protectAllocationsPerPacket: protectAllocations)
    }

    /// `struct mmsghdr` (Linux): a `msghdr` and the bytes sent; stride 64 as in C.
    struct MMsgHdr {
        var msg_hdr = msghdr()
        var msg_len: UInt32 = 0
    }

    typealias SendMMsg = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32) -> Int32
    static let sendmmsgFunction: SendMMsg = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sendmmsg") else {
            fatalError("sendmmsg not found in libc")
        }
        return unsafeBitCast(symbol, to: SendMMsg.self)
    }()

    static func sendmmsg(_ fd: Int32, _ vector: UnsafeMutableRawPointer, _ count: UInt32, _ flags: Int32) -> Int32 {
        sendmmsgFunction(fd, vector, count, flags)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// A started media server on 127.0.0.1 (UDP only, ephemeral port), logging nothing but critical errors.
    static func loopbackServer(label: String, configure: (inout MediaServerConfiguration) -> Void = { _ in })
        async throws -> (MediaServer, Logger)
    {
        var logger = Logger(label: label)
        logger.logLevel = .critical
        var configuration = MediaServerConfiguration()
        configuration.udpListen = "127.0.0.1:0"
        configuration.tcpListen = nil
        configuration.offerTCPCandidates = false
        configuration.advertisedAddresses = ["127.0.0.1"]
        configure(&configuration)
        let server = try MediaServer(configuration: configuration, logger: logger)
        try await server.start()
        return (server, logger)
    }

    static func threadCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD
        return cpuSeconds(usage)
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return cpuSeconds(usage)
    }

    static func cpuSeconds(_ u: rusage) -> Double {
        Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec)
            + Double(u.ru_stime.tv_usec) / 1e6
    }
}

// MARK: - Allocation counting

/// Calls of `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc` and `memalign` in this process, when the
/// bench runs under a counting shim (below); nil otherwise. Interposing from Swift does not work: the Swift runtime,
/// NIO and libsrtp bind to glibc's versioned `malloc@GLIBC_2.2.5`, so only an LD_PRELOADed library sees their calls.
/// Build and use the shim:
///
/// ```c
/// // alloccount.c — cc -O2 -shared -fPIC -o /tmp/liballoccount.so alloccount.c
/// #include <stddef.h>
/// #include <errno.h>
/// extern void *__libc_malloc(size_t); extern void *__libc_calloc(size_t, size_t);
/// extern void *__libc_realloc(void *, size_t); extern void *__libc_memalign(size_t, size_t);
/// static unsigned long counter;
/// long callsctl_alloc_count(void) { return (long)__atomic_load_n(&counter, __ATOMIC_RELAXED); }
/// #define COUNT() __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED)
/// void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
/// void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
/// void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
/// void *aligned_alloc(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
/// void *memalign(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
/// int posix_memalign(void **out, size_t a, size_t n) {
///     COUNT();
///     if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0) return EINVAL;
///     void *p = __libc_memalign(a, n);
///     if (!p) return ENOMEM;
///     *out = p;
///     return 0;
/// }
/// ```
///
/// `LD_PRELOAD=/tmp/liballoccount.so swift run -c release callsctl-bench echo`
final class AtomicCount: Sendable {
    let value = Atomic<Int>(0)
}

enum MallocCounter {
    typealias CountFunction = @convention(c) () -> Int
    static let function: CountFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "callsctl_alloc_count") else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
    }()

    static var count: Int? { function?() }
}
