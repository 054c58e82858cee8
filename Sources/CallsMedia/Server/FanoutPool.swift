import CallsWire
import Glibc
import Synchronization

/// Splits one large audio fan-out (a speaker's packet to hundreds of listeners) between the media event loop's thread
/// and a few helper threads, so that the last copy leaves sooner: the copies are cut into chunks of `chunkSize`
/// listeners that every taker claims from one atomic counter, protects with each listener's own SRTP context and
/// sends with its own `sendmmsg` arena on the same UDP descriptor.
///
/// Fork and join on the media thread: `run` publishes the job, wakes the helpers, takes chunks itself, closes the job
/// when no chunk is left and waits only for the helpers that had already entered it (each holds at most one chunk).
/// A helper that wakes after the job closed does nothing, so a helper the scheduler keeps off the CPU never delays the
/// fan-out: the media thread then sends every chunk itself.
///
/// Thread safety: while a job is open the media thread runs nothing but its own chunks, and every listener (its slot
/// rewriting, its SRTP context, its destination) belongs to exactly one chunk; so the sessions touched by a helper are
/// touched by no other thread until the join, and the job's state word orders the hand-over both ways.
final class FanoutPool: @unchecked Sendable {
    /// Listeners per claimed chunk: one `sendmmsg` per chunk.
    static let defaultChunkSize = 32
    /// Fan-outs smaller than this stay on the media thread alone (waking a helper costs more than it saves).
    static let defaultMinimumFanout = 128

    /// How a pool splits its work (tests make it small, and can leave every chunk to the helpers).
    struct Tuning: Sendable {
        var chunkSize = FanoutPool.defaultChunkSize
        var minimumFanout = FanoutPool.defaultMinimumFanout
        /// Tests only: the media thread takes no chunk and waits until the helpers claimed them all.
        var helpersOnly = false
    }

    let tuning: Tuning

    /// One taker's arena and counts (merged into the media core's counters after each join).
    final class Lane {
        let sender: UDPBatchSender
        var latency = ForwardLatencyHistogram()
        var forwarded: UInt64 = 0
        var bytesForwarded: UInt64 = 0
        var packetsOut: UInt64 = 0
        var bytesOut: UInt64 = 0
        var failed: UInt64 = 0
        var bufferFull: UInt64 = 0
        var dropped: UInt64 = 0
        /// Fan-out indexes this lane could not send on the UDP socket (ICE-TCP listeners): the media thread forwards
        /// them after the join through the ordinary path.
        var deferred: [Int] = []

        init(descriptor: CInt, chunkSize: Int) {
            sender = UDPBatchSender(descriptor: descriptor, capacity: chunkSize)
            deferred.reserveCapacity(64)
        }
    }

    /// The fan-out being run (written by the media thread before the job opens, read by takers while it is open).
    private var source: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    private var header: RTPHeader?
    private var speaker: MediaSession?
    private var fanout: UnsafeBufferPointer<(listener: MediaSession, slot: Int)> = .init(start: nil, count: 0)
    private var receivedAt: UInt64 = 0
    private var nowNanos: UInt64 = 0
    /// Next fan-out index to claim.
    private let next = Atomic<Int>(0)
    /// `closedBit` plus the number of helpers inside the open job.
    private let state = Atomic<Int>(FanoutPool.closedBit)
    private static let closedBit = 1 << 40

    private let mediaLane: Lane
    private var helperLanes: [Lane] = []
    private var threads: [pthread_t] = []
    private let wake: [Semaphore]
    private let joined = Semaphore()
    private let stopping = Atomic<Bool>(false)
    private let realtimePriority: Int
    private let started = Semaphore()
    private let startProblems = Locked<[String]>([])
    /// Why a helper could not get `realtimePriority` (nil: all did, or none was asked).
    private(set) var realtimeProblem: String?

    /// Jobs run and jobs in which at least one helper took a chunk (for tests and benchmarks).
    private(set) var jobs: UInt64 = 0
    private let helperChunks = Atomic<Int>(0)

    var helperCount: Int { wake.count }


    /// Starts `helpers` threads (named `callsctl-fanN`) that send on `descriptor`, each at `realtimePriority`
    /// (`SCHED_RR`; 0: normal scheduling). Returns once every helper is running.
    init(helpers: Int, descriptor: CInt, tuning: Tuning = Tuning(), realtimePriority: Int = 0) {
        precondition(tuning.chunkSize >= 1 && tuning.chunkSize <= 1024)
        self.tuning = tuning
        self.realtimePriority = realtimePriority
        mediaLane = Lane(descriptor: descriptor, chunkSize: tuning.chunkSize)
        wake = (0..<max(helpers, 0)).map { _ in Semaphore() }
        for index in 0..<wake.count {
            let lane = Lane(descriptor: descriptor, chunkSize: tuning.chunkSize)
            helperLanes.append(lane)
            let box = Unmanaged.passRetained(HelperStart(pool: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<HelperStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.helperLoop(start.index)
                return nil
            }, box.toOpaque())
            if rc != 0 {
                box.release()
                continue
            }
            threads.append(thread)
        }
        // Each helper reports once it set its scheduling (bounded: one wait per started thread).
        for _ in threads { started.wait() }
        realtimeProblem = startProblems.withLock { $0.first }
    }

    private final class HelperStart {
        let pool: FanoutPool
        let index: Int
        init(pool: FanoutPool, index: Int) {
            self.pool = pool
            self.index = index
        }
    }

    /// Stops and joins the helper threads. Call once, from the media thread, with no job open.
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        for w in wake { w.signal() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    /// CPU time the helper threads used so far (seconds).
    func helperCPUSeconds() -> Double {
        var total = 0.0
        for t in threads {
            var clock = clockid_t()
            guard pthread_getcpuclockid(t, &clock) == 0 else { continue }
            var ts = timespec()
            guard clock_gettime(clock, &ts) == 0 else { continue }
            total += Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        return total
    }

    /// Chunks that helpers (not the media thread) sent, since the start.
    var chunksSentByHelpers: Int { helperChunks.load(ordering: .relaxed) }

    private func helperLoop(_ index: Int) {
        let name = "callsctl-fan\(index)"
        Self.setThreadName(name)
        let lane = helperLanes[index]
        if realtimePriority > 0, let problem = RealtimeScheduling.applyToCurrentThread(priority: realtimePriority) {
            startProblems.withLock { $0.append(problem) }
        }
        started.signal()
        while true {
            wake[index].wait()
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            // Enter the job unless it is already closed.
            var current = state.load(ordering: .acquiring)
            var entered = false
            while current & Self.closedBit == 0 {
                let (exchanged, original) = state.compareExchange(
                    expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged {
                    entered = true
                    break
                }
                current = original
            }
            guard entered else { continue }
            var chunks = 0
            while let range = claim() {
                send(range, lane: lane)
                chunks += 1
            }
            if chunks > 0 { helperChunks.add(chunks, ordering: .relaxed) }
            let after = state.subtract(1, ordering: .acquiringAndReleasing).newValue
            if after == Self.closedBit { joined.signal() }
        }
    }

    /// `pthread_setname_np`, found with `dlsym` (Swift's Glibc module declares it only under `_GNU_SOURCE`), so the
    /// helpers show up by name in `top -H` and `perf`.
    private static func setThreadName(_ name: String) {
        typealias Function = @convention(c) (pthread_t, UnsafePointer<CChar>) -> CInt
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pthread_setname_np") else { return }
        let function = unsafeBitCast(symbol, to: Function.self)
        _ = name.withCString { function(pthread_self(), $0) }
    }

    private func claim() -> Range<Int>? {
        let size = tuning.chunkSize
        let start = next.add(size, ordering: .relaxed).oldValue
        guard start < fanout.count else { return nil }
        return start..<min(start + size, fanout.count)
    }

    /// Forwards the plain audio packet `packet` (`header`) of `speaker` to every listener of `fanout`, on this thread
    /// and the helpers. Returns the indexes (into `fanout`) that could not go out on the UDP socket (ICE-TCP paths),
    /// which the caller forwards itself. Runs on the media thread.
    func run(
        packet: UnsafeRawBufferPointer, header: RTPHeader, speaker: MediaSession,
        fanout: UnsafeBufferPointer<(listener: MediaSession, slot: Int)>, receivedAt: UInt64, nowNanos: UInt64,
        merge: (Lane) -> Void
    ) -> [Int] {
        source = packet
        self.header = header
        self.speaker = speaker
        self.fanout = fanout
        self.receivedAt = receivedAt
        self.nowNanos = nowNanos
        next.store(0, ordering: .relaxed)
        jobs &+= 1
        state.store(0, ordering: .releasing)
        for w in wake { w.signal() }
        if tuning.helpersOnly && !threads.isEmpty {
            // Tests: leave every chunk to the helpers (bounded by their progress; they were just woken).
            while next.load(ordering: .relaxed) < fanout.count { usleep(50) }
        }
        while let range = claim() { send(range, lane: mediaLane) }
        let before = state.bitwiseOr(Self.closedBit, ordering: .acquiringAndReleasing).oldValue
        if before != 0 { joined.wait() }
        var deferred: [Int] = []
        for lane in [mediaLane] + helperLanes {
            merge(lane)
            if !lane.deferred.isEmpty {
                deferred.append(contentsOf: lane.deferred)
                lane.deferred.removeAll(keepingCapacity: true)
            }
            lane.reset()
        }
        self.speaker = nil
        self.header = nil
        source = UnsafeRawBufferPointer(start: nil, count: 0)
        self.fanout = .init(start: nil, count: 0)
        return deferred
    }

    /// Rewrites, protects and sends the copies of `range` on `lane`'s arena.
    private func send(_ range: Range<Int>, lane: Lane) {
        guard let header, let speaker else { return }
        let length = source.count
        for k in range {
            let (q, i) = fanout[k]
            // `isReady`, in the order that reads the least: a selected UDP path implies a selected path.
            guard !q.isClosed, let srtp = q.srtp else { continue }
            guard let destination = q.selectedUDPName, length + SRTPSession.maxTrailerLength <= UDPBatchSender.slotSize
            else {
                if q.selected != nil { lane.deferred.append(k) }
                continue
            }
            guard let rewrite = q.audioSlots[i].forwarding(header, from: speaker, nowNanos: nowNanos) else { continue }
            let slot = lane.sender.nextSlot
            slot.copyMemory(from: source)
            guard Optional(rewrite).apply(
                payloadType: q.slotAudioPayloadType, to: UnsafeMutableRawBufferPointer(rebasing: slot[0..<length])),
                let newLength = try? srtp.protectRTP(slot, length: length)
            else {
                lane.dropped += 1
                continue
            }
            lane.sender.commit(length: newLength, to: destination, receivedAt: receivedAt)
            lane.forwarded += 1
            lane.bytesForwarded += UInt64(newLength)
        }
        guard lane.sender.count > 0 else { return }
        let result = lane.sender.flush(latency: &lane.latency)
        lane.packetsOut += UInt64(result.sent)
        lane.bytesOut += UInt64(result.bytes)
        lane.failed += UInt64(result.failed)
        lane.bufferFull += UInt64(result.bufferFull)
    }
}

extension FanoutPool.Lane {
    func reset() {
        latency = ForwardLatencyHistogram()
        forwarded = 0
        bytesForwarded = 0
        packetsOut = 0
        bytesOut = 0
        failed = 0
        bufferFull = 0
        dropped = 0
    }
}

/// A counting semaphore on a futex-backed POSIX semaphore.
final class Semaphore: @unchecked Sendable {
    private let raw = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() {
        sem_init(raw, 0, 0)
    }

    deinit {
        sem_destroy(raw)
        raw.deallocate()
    }

    func signal() {
        sem_post(raw)
    }

    func wait() {
        while sem_wait(raw) != 0 && errno == EINTR {}
    }
}
