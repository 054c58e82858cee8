import CallsWire
import Glibc
import NIOCore

/// The outgoing SRTP datagrams of one event-loop tick, written into a preallocated arena and handed to the kernel
/// with one `sendmmsg` per flush on the media UDP socket's descriptor.
///
/// Why not `channel.write(AddressedEnvelope)`: NIO boxes every envelope into a pending-write node and the caller
/// allocates a `ByteBuffer` per receiver; for an audio fan-out (one incoming packet, N small outgoing ones) those
/// allocations and the per-write bookkeeping cost more than the send itself. Here a forwarded packet is copied into a
/// slot, rewritten and protected in place, and its destination is stored next to it: no allocation per packet.
///
/// The descriptor belongs to the NIO `DatagramChannel` (the server creates the socket and gives it to NIO with
/// `DatagramBootstrap.withBoundSocket`); NIO only reads it. Every datagram the server sends on it (forwarded media,
/// STUN, DTLS, RTCP) goes through here, on the media event loop: NIO closes a datagram channel when the kernel
/// refuses one write (EPERM from a firewall rule, ENETUNREACH, ...), which would end every session at once; here a
/// refused datagram is dropped and counted. When the kernel's send buffer is full (`EAGAIN`), the rest of the
/// batch is dropped (counted) rather than queued.
///
/// Confined to the media event loop.
final class UDPBatchSender {
    /// Bytes per slot: a 2048-byte datagram (the receive buffer's slice size) plus the SRTP trailer.
    static let slotSize = 2048 + 256
    /// Slots per arena; a full arena is flushed at once (within the tick). `sendmmsg` takes at most 1024 messages.
    static let defaultCapacity = 512
    /// A batch this large is sent after the datagram that filled it is handled, without waiting for the end of the
    /// read burst (see `MediaCore.datagramHandled`).
    static let earlyFlushCount = 32

    let descriptor: CInt
    let capacity: Int
    /// Datagrams waiting for the next flush.
    private(set) var count = 0

    private let arena: UnsafeMutableRawBufferPointer
    private let messages: UnsafeMutablePointer<MMsgHdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    /// Receive time (`NIODeadline.uptimeNanoseconds`) of the packet each slot forwards.
    private let receivedAt: UnsafeMutablePointer<UInt64>

    init(descriptor: CInt, capacity: Int = UDPBatchSender.defaultCapacity) {
        precondition(capacity > 0 && capacity <= 1024)
        self.descriptor = descriptor
        self.capacity = capacity
        arena = .allocate(byteCount: capacity * Self.slotSize, alignment: 16)
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: MMsgHdr(), count: capacity)
        vectors = .allocate(capacity: capacity)
        vectors.initialize(repeating: iovec(), count: capacity)
        names = .allocate(capacity: capacity)
        names.initialize(repeating: sockaddr_in6(), count: capacity)
        receivedAt = .allocate(capacity: capacity)
        receivedAt.initialize(repeating: 0, count: capacity)
    }

    deinit {
        arena.deallocate()
        messages.deallocate()
        vectors.deallocate()
        names.deallocate()
        receivedAt.deallocate()
    }

    var isFull: Bool { count == capacity }

    /// The memory of the next free slot (`slotSize` bytes). Write a packet there, then `commit` it.
    /// - Precondition: `!isFull`.
    var nextSlot: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: arena[count * Self.slotSize..<(count + 1) * Self.slotSize])
    }

    /// Queues the first `length` bytes of `nextSlot` for `destination` (IPv4 or IPv6). Returns false (and queues
    /// nothing) for other address families.
    /// `receivedAt` of a datagram that is not a forwarded packet (STUN, DTLS, RTCP): not in the latency histogram.
    static let notForwarded = UInt64.max

    func commit(length: Int, to destination: SocketAddress, receivedAt time: UInt64) -> Bool {
        precondition(count < capacity && length <= Self.slotSize)
        let i = count
        let nameLength: Int
        switch destination {
        case .v4(let a):
            nameLength = MemoryLayout<sockaddr_in>.size
            UnsafeMutableRawPointer(names + i).storeBytes(of: a.address, as: sockaddr_in.self)
        case .v6(let a):
            nameLength = MemoryLayout<sockaddr_in6>.size
            names[i] = a.address
        default:
            return false
        }
        vectors[i] = iovec(iov_base: arena.baseAddress! + i * Self.slotSize, iov_len: length)
        messages[i].msg_hdr = msghdr(
            msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: socklen_t(nameLength), msg_iov: vectors + i,
            msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
        messages[i].msg_len = 0
        receivedAt[i] = time
        count += 1
        return true
    }

    /// `commit(length:to:receivedAt:)` for a destination already in kernel form.
    func commit(length: Int, to destination: UDPDestination, receivedAt time: UInt64) {
        precondition(count < capacity && length <= Self.slotSize)
        let i = count
        names[i] = destination.storage
        vectors[i] = iovec(iov_base: arena.baseAddress! + i * Self.slotSize, iov_len: length)
        messages[i].msg_hdr = msghdr(
            msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: destination.length, msg_iov: vectors + i,
            msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
        messages[i].msg_len = 0
        receivedAt[i] = time
        count += 1
    }

    struct FlushResult {
        /// Datagrams the kernel took.
        var sent = 0
        /// Bytes of those datagrams.
        var bytes = 0
        /// Datagrams the kernel refused with an error other than "try again" (dropped).
        var failed = 0
        /// Datagrams dropped because the socket's send buffer was full (`EAGAIN`/`ENOBUFS`).
        var bufferFull = 0
    }

    /// Sends every queued datagram (`sendmmsg`, repeated until all are taken), records each one's receive→send time
    /// in `latency` (the clock read when the `sendmmsg` that took it returned), and empties the arena. On `EAGAIN`/`ENOBUFS` the rest are dropped and counted in `bufferFull`.
    /// A datagram the kernel rejects with another error (`EPERM`, `EMSGSIZE`, `ENETUNREACH`, ...) is dropped and
    /// counted in `failed`; the loop goes on with the next one. Nothing here can close the socket.
    func flush(
        latency: inout ForwardLatencyHistogram, now clock: () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }
    ) -> FlushResult {
        var result = FlushResult()
        var done = 0
        // Bounded: every iteration sends at least one datagram, drops one, or drops the rest.
        while done < count {
            let r = CallsSendMMsg.call(descriptor, messages + done, UInt32(count - done))
            if r > 0 {
                let now = clock()
                for k in done..<(done + Int(r)) {
                    result.bytes += vectors[k].iov_len
                    if receivedAt[k] != Self.notForwarded { latency.record(nanoseconds: now &- receivedAt[k]) }
                }
                result.sent += Int(r)
                done += Int(r)
                continue
            }
            let error = errno
            if r < 0 && error == EINTR { continue }
            if r == 0 || error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS {
                // The socket's send buffer is full. Real-time media is better late-dropped than queued, and a
                // queued datagram would go out through NIO, which closes the whole socket if the kernel then
                // refuses it (EPERM from a firewall, ENETUNREACH, ...): drop the rest of the batch and count it.
                result.bufferFull += count - done
                done = count
            } else {
                result.failed += 1
                done += 1
            }
        }
        count = 0
        return result
    }

    /// Drops every queued datagram (the socket is gone).
    func discard() {
        count = 0
    }

    /// The receive buffer the media socket asks for.
    static let requestedReceiveBuffer: CInt = 16 << 20

    /// The receive buffer the kernel granted `fd` (it reports twice the usable size; this is its figure).
    static func receiveBufferBytes(_ fd: CInt) -> Int {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, &length) == 0 else { return 0 }
        return Int(value)
    }

    /// Datagrams the kernel dropped at socket `fd` because its receive queue was full (or for a bad checksum):
    /// the `drops` column of /proc/net/udp and /proc/net/udp6 for the socket's inode. nil when not found.
    static func kernelReceiveDrops(_ fd: CInt) -> UInt64? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let inode = String(st.st_ino)
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            guard let file = fopen(table, "r") else { continue }
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            // Bounded by the table's size; each line is one socket.
            while getline(&line, &capacity, file) > 0 {
                guard let line else { break }
                let fields = String(cString: line).split(separator: " ", omittingEmptySubsequences: true)
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                if fields.count >= 13, fields[9] == inode { return UInt64(fields[12].trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        return nil
    }

    /// Creates a non-blocking, close-on-exec UDP socket bound to `host:port` (SO_REUSEADDR), for
    /// `DatagramBootstrap.withBoundSocket`. The caller owns the descriptor until NIO takes it.
    static func makeBoundSocket(host: String, port: Int) throws -> CInt {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let rc = address.withSockAddr { pointer, length -> CInt in
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
                return -1
            }
            // A fan-out burst is many datagrams at once; ask for 4 MiB of send buffer (the kernel caps it at
            // net.core.wmem_max, which the generated systemd drop-in raises). Best effort.
            var sendBuffer: CInt = 4 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<CInt>.size))
            // A junk flood must not push the calls' packets out of the receive queue: ask for 16 MiB (as rtcd does).
            // SO_RCVBUFFORCE passes net.core.rmem_max where the process may (CAP_NET_ADMIN); else the kernel caps
            // SO_RCVBUF at rmem_max, which the generated sysctl drop-in raises. What was granted is reported.
            var receiveBuffer: CInt = Self.requestedReceiveBuffer
            if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receiveBuffer, socklen_t(MemoryLayout<CInt>.size)) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<CInt>.size))
            }
            return bind(fd, pointer, socklen_t(length))
        }
        guard rc == 0 else {
            let error = errno
            close(fd)
            throw IOError(errnoCode: error, reason: "bind")
        }
        return fd
    }
}

@available(*, unavailable)
extension UDPBatchSender: Sendable {}

/// `struct mmsghdr` (Linux): one `msghdr` and the byte count the kernel fills in; 64 bytes, as in C.
struct MMsgHdr {
    var msg_hdr = msghdr()
    var msg_len: UInt32 = 0
}

/// `sendmmsg(2)`, found with `dlsym`: Swift's Glibc module declares it only under `_GNU_SOURCE`.
enum CallsSendMMsg {
    typealias Function = @convention(c) (CInt, UnsafeMutableRawPointer?, UInt32, CInt) -> CInt
    static let function: Function = {
        precondition(MemoryLayout<MMsgHdr>.stride == 64, "struct mmsghdr layout")
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sendmmsg") else {
            fatalError("sendmmsg is missing from the C library")
        }
        return unsafeBitCast(symbol, to: Function.self)
    }()

    static func call(_ fd: CInt, _ messages: UnsafeMutablePointer<MMsgHdr>, _ count: UInt32) -> CInt {
        function(fd, UnsafeMutableRawPointer(messages), count, CInt(MSG_DONTWAIT))
    }
}

/// Receive→send times of forwarded packets in fixed buckets, recorded with no allocation (a fixed-size tuple).
/// Confined to the media event loop (or to one fan-out lane); published into `MediaMetrics` once per tick.
struct ForwardLatencyHistogram {
    /// Upper bounds of the buckets in nanoseconds (the last bucket, above 20 ms, is unbounded). Millisecond steps
    /// from 1 to 6 ms, where a large call's fan-out ends, so that its p99 is read from a narrow bucket.
    static let boundsNanoseconds: [UInt64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000,
        6_000_000, 8_000_000, 10_000_000, 20_000_000,
    ]
    static let boundsSeconds: [Double] = boundsNanoseconds.map { Double($0) / 1e9 }
    /// Buckets: the bounds and +Inf.
    static let bucketCount = 16

    /// Per-bucket (not cumulative) counts.
    private var counts: (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    private(set) var sumNanoseconds: UInt64 = 0
    private(set) var count: UInt64 = 0

    static func bucket(_ v: UInt64) -> Int {
        if v <= 100_000 {
            return v <= 10_000 ? 0 : v <= 25_000 ? 1 : v <= 50_000 ? 2 : 3
        } else if v <= 1_000_000 {
            return v <= 250_000 ? 4 : v <= 500_000 ? 5 : 6
        } else if v <= 6_000_000 {
            // 1 ms steps: (1, 2] -> 7 ... (5, 6] -> 11.
            return 6 + Int((v - 1) / 1_000_000)
        } else {
            return v <= 8_000_000 ? 12 : v <= 10_000_000 ? 13 : v <= 20_000_000 ? 14 : 15
        }
    }

    mutating func record(nanoseconds n: UInt64) {
        // A clock that went backwards (it cannot with the monotonic clock) would wrap: count it as zero.
        let v = n > (1 << 62) ? 0 : n
        sumNanoseconds &+= v
        count &+= 1
        let index = Self.bucket(v)
        withUnsafeMutableBytes(of: &counts) { raw in
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
            p[index] &+= 1
        }
    }

    /// Adds the counts of `other`.
    mutating func merge(_ other: ForwardLatencyHistogram) {
        guard other.count > 0 else { return }
        sumNanoseconds &+= other.sumNanoseconds
        count &+= other.count
        withUnsafeMutableBytes(of: &counts) { mine in
            withUnsafeBytes(of: other.counts) { theirs in
                for i in 0..<Self.bucketCount {
                    let v = mine.load(fromByteOffset: i * 8, as: UInt64.self) &+ theirs.load(fromByteOffset: i * 8, as: UInt64.self)
                    mine.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
                }
            }
        }
    }

    /// Fills the `forwardLatency*` fields of `metrics` (per-bucket counts, not cumulative).
    func write(into metrics: inout MediaMetrics) {
        writeCounts(into: &metrics.forwardLatencyBuckets)
        metrics.forwardLatencyBucketBounds = Self.boundsSeconds
        metrics.forwardLatencySum = Double(sumNanoseconds) / 1e9
        metrics.forwardLatencyCount = count
    }

    /// Writes the per-bucket counts (the last is +Inf) into `buckets`, in place when it already has `bucketCount`
    /// elements and is uniquely referenced.
    func writeCounts(into buckets: inout [UInt64]) {
        if buckets.count != Self.bucketCount { buckets = Array(repeating: 0, count: Self.bucketCount) }
        withUnsafeBytes(of: counts) { raw in
            for i in 0..<Self.bucketCount { buckets[i] = raw.load(fromByteOffset: i * 8, as: UInt64.self) }
        }
    }
}
