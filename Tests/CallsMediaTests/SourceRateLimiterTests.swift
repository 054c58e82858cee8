import NIOCore
import Testing

@testable import CallsMedia

/// The per-source limit on replies to unauthenticated STUN: bounded in memory without a cliff. Clearing the whole
/// table when it filled up used to give every source fresh tokens, so a flood from many addresses switched the
/// limit off for everyone; new sources now share one bucket while the table is full of active ones.
struct SourceRateLimiterTests {
    static func address(_ i: Int) -> SocketAddress {
        try! SocketAddress(ipAddress: "10.\(i >> 16 & 0xFF).\(i >> 8 & 0xFF).\(i & 0xFF)", port: 4000)
    }

    @Test func aFullTableDoesNotResetAnyonesLimit() {
        var limiter = SourceRateLimiter(ratePerSecond: 5, maximumSources: 4)
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        // Four sources use up their five tokens.
        for i in 0..<4 {
            #expect((0..<5).allSatisfy { _ in limiter.allow(Self.address(i), now: t0) })
            let more = limiter.allow(Self.address(i), now: t0)
            #expect(!more)
        }
        // A thousand new sources in the same instant: together they get one bucket's worth.
        let allowedNew = (4..<1004).filter { limiter.allow(Self.address($0), now: t0) }.count
        #expect(allowedNew == 5)
        #expect(limiter.trackedSources == 4)
        // The first four are still limited: nobody was reset.
        for i in 0..<4 {
            let again = limiter.allow(Self.address(i), now: t0)
            #expect(!again, "source \(i) got a fresh bucket")
        }
        // Three seconds on, the idle sources are forgotten and a new one gets its own bucket.
        let t3 = t0 + .seconds(3)
        let fresh = limiter.allow(Self.address(5000), now: t3)
        #expect(fresh)
        #expect(limiter.trackedSources == 1)
    }

    @Test func tokensComeBackAtTheRate() {
        var limiter = SourceRateLimiter(ratePerSecond: 10, maximumSources: 16)
        let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
        let a = Self.address(1)
        #expect((0..<10).allSatisfy { _ in limiter.allow(a, now: t0) })
        let r1 = limiter.allow(a, now: t0)
        let r2 = limiter.allow(a, now: t0 + .milliseconds(100))
        let r3 = limiter.allow(a, now: t0 + .milliseconds(100))
        #expect(!r1 && r2 && !r3)
    }
}
