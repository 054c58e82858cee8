/// Rate-limits key-frame requests (PLI, RFC 4585 §6.3.1; FIR, RFC 5104 §4.3.1) forwarded to a media source.
///
/// When many subscribers lose a picture at once, each sends a PLI; forwarding all of them makes the publisher
/// send a burst of key frames. The limiter lets at most one request per source through per `interval`
/// (default 500 ms), measured on a caller-supplied monotonic clock in nanoseconds
/// (e.g. `NIODeadline.now().uptimeNanoseconds`). The first request for a source always passes. Plain value;
/// keep one per room or publisher on its event loop. Memory grows with the number of sources seen; call
/// ``remove(source:)`` when a source leaves.
public struct KeyFrameRequestLimiter: Sendable {
    /// The minimum time between two forwarded requests for one source, in nanoseconds.
    public let intervalNanoseconds: UInt64
    private var lastForwarded: [UInt32: UInt64] = [:]

    /// A limiter allowing one request per source per `intervalNanoseconds` (default 500 ms).
    public init(intervalNanoseconds: UInt64 = 500_000_000) {
        self.intervalNanoseconds = intervalNanoseconds
    }

    /// Whether a key-frame request for `source` (the media SSRC) arriving at `now` should be forwarded; when it
    /// should, `now` is remembered as the last forward. A clock that goes backwards lets the request through.
    public mutating func shouldForward(source: UInt32, now: UInt64) -> Bool {
        if let last = lastForwarded[source], now >= last, now - last < intervalNanoseconds {
            return false
        }
        lastForwarded[source] = now
        return true
    }

    /// Nanoseconds until a request for `source` would pass at `now` (0 if it would pass now).
    public func delayUntilAllowed(source: UInt32, now: UInt64) -> UInt64 {
        guard let last = lastForwarded[source], now >= last, now - last < intervalNanoseconds else { return 0 }
        return intervalNanoseconds - (now - last)
    }

    /// Forgets `source` (its next request passes).
    public mutating func remove(source: UInt32) {
        lastForwarded[source] = nil
    }

    /// Number of sources remembered.
    public var sourceCount: Int { lastForwarded.count }
}
