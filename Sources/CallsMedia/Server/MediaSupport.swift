import CallsWire
import NIOCore

/// Fans one session's events out to any number of `AsyncStream`s, replaying what already happened to late
/// subscribers, and finishing every stream after `.closed`.
final class SessionEventHub: Sendable {
    private struct State {
        var history: [MediaSessionEvent] = []
        /// The latest renegotiation request, replayed to a subscriber that comes later: the signaling layer
        /// subscribes only after the answer, and a request made in between must not be lost.
        var latestRenegotiation: MediaSessionEvent?
        /// The latest speaker map, likewise.
        var latestSpeakers: MediaSessionEvent?
        var continuations: [Int: AsyncStream<MediaSessionEvent>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }

    private let state = Locked(State())

    func subscribe() -> AsyncStream<MediaSessionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: MediaSessionEvent.self, bufferingPolicy: .bufferingNewest(64))
        let id: Int? = state.withLock { s in
            for e in s.history { continuation.yield(e) }
            if let r = s.latestRenegotiation, !s.finished { continuation.yield(r) }
            if let r = s.latestSpeakers, !s.finished { continuation.yield(r) }
            if s.finished { return nil }
            s.nextID += 1
            s.continuations[s.nextID] = continuation
            return s.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: MediaSessionEvent) {
        let targets: [AsyncStream<MediaSessionEvent>.Continuation] = state.withLock { s in
            guard !s.finished else { return [] }
            // Renegotiation requests are not history: only the latest one matters to a late subscriber.
            if case .speakers = event {
                s.latestSpeakers = event
            } else if event.isTransient {
                s.latestRenegotiation = event
            } else if s.history.count < 32 {
                s.history.append(event)
            }
            if case .closed = event { s.finished = true }
            return Array(s.continuations.values)
        }
        for c in targets {
            c.yield(event)
            if case .closed = event { c.finish() }
        }
    }

    /// A stream that ends at once (for unknown sessions).
    static func finishedStream() -> AsyncStream<MediaSessionEvent> {
        AsyncStream { $0.finish() }
    }
}

/// Per-source-IP token buckets for answers to unauthenticated traffic (plain Binding responses, 401s), so the port
/// cannot be used as a reflector. Bounded: when full, idle buckets are dropped, then everything if needed.
struct SourceRateLimiter {
    private struct Bucket {
        var tokens: Double
        var last: NIODeadline
    }

    let ratePerSecond: Double
    let maximumSources: Int
    private var buckets: [[UInt8]: Bucket] = [:]
    /// Shared by new sources while the table is full of active ones: they are limited together, and nobody's own
    /// bucket is reset (clearing the table when it filled up gave every source fresh tokens: a flood from many
    /// addresses turned the limit off for everyone).
    private var overflow: Bucket?
    private var lastSweep: NIODeadline?

    init(ratePerSecond: Int, maximumSources: Int = 16_384) {
        self.ratePerSecond = Double(ratePerSecond)
        self.maximumSources = maximumSources
    }

    /// Sources with a bucket of their own now.
    var trackedSources: Int { buckets.count }

    mutating func allow(_ address: SocketAddress, now: NIODeadline = .now()) -> Bool {
        let key = Self.key(address)
        if var bucket = buckets[key] {
            let allowed = take(&bucket, now: now)
            buckets[key] = bucket
            return allowed
        }
        if buckets.count >= maximumSources, lastSweep.map({ now - $0 >= .seconds(1) }) ?? true {
            // Forget sources idle for 2 s, at most once a second (the sweep is linear in the table).
            lastSweep = now
            buckets = buckets.filter { now - $0.value.last < .seconds(2) }
        }
        if buckets.count >= maximumSources {
            var shared = overflow ?? Bucket(tokens: ratePerSecond, last: now)
            let allowed = take(&shared, now: now)
            overflow = shared
            return allowed
        }
        var bucket = Bucket(tokens: ratePerSecond, last: now)
        let allowed = take(&bucket, now: now)
        buckets[key] = bucket
        return allowed
    }

    /// Refills `bucket` for the time since its last use and takes a token if there is one.
    private func take(_ bucket: inout Bucket, now: NIODeadline) -> Bool {
        let elapsed = Double((now - bucket.last).nanoseconds) / 1e9
        bucket.tokens = min(ratePerSecond, bucket.tokens + max(0, elapsed) * ratePerSecond)
        bucket.last = now
        guard bucket.tokens >= 1 else { return false }
        bucket.tokens -= 1
        return true
    }

    private static func key(_ address: SocketAddress) -> [UInt8] {
        switch address {
        case .v4(let a):
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        default:
            return []
        }
    }
}

/// Random identifiers from the system CSPRNG.
enum MediaRandom {
    private static let iceAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// ICE characters (RFC 8839 §5.4 ice-char), `count` of them.
    static func iceString(_ count: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return String(decoding: (0..<count).map { _ in iceAlphabet.randomElement(using: &g)! }, as: UTF8.self)
    }

    /// Letters and digits only (for ufrags, which end up in logs and URLs).
    static func alphanumeric(_ count: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return String(decoding: (0..<count).map { _ in iceAlphabet[Int.random(in: 0..<62, using: &g)] }, as: UTF8.self)
    }

    static func hex(_ count: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return String(decoding: (0..<count).map { _ in hexDigits.randomElement(using: &g)! }, as: UTF8.self)
    }

    /// A non-zero SSRC.
    static func ssrc() -> UInt32 { UInt32.random(in: 1...UInt32.max) }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

extension SocketAddress {
    /// The STUN form, for XOR-MAPPED-ADDRESS; nil for Unix sockets.
    var stunAddress: STUNAddress? {
        guard let ip = ipAddress, let port else { return nil }
        return STUNAddress(ip: ip, port: UInt16(clamping: port))
    }

    /// `ip:port` (`[ip]:port` for IPv6).
    var endpointDescription: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
