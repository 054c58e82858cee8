import Dispatch
import Foundation

/// Gives freed heap pages back to the system after a wave of frees (glibc `malloc_trim(0)`, off the media thread).
///
/// A session's handshake allocates about 80 KiB of OpenSSL state in small chunks, freed a few seconds later
/// (`MediaSession.dtls`); glibc keeps such pages in its arenas, so after 1,000 joins the process's RSS stayed about
/// 100 MiB above what it used. Trimming after the frees returns them. At most one trim per `interval`, and only when
/// something was freed since the last one.
final class HeapTrimmer {
    typealias TrimFunction = @convention(c) (Int) -> Int32
    private static let trim: TrimFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: TrimFunction.self)
    }()

    private var pending = 0
    private var last: DispatchTime = .now()
    private let interval: DispatchTimeInterval
    private(set) var trims = 0

    init(interval: DispatchTimeInterval = .seconds(5)) {
        self.interval = interval
    }

    /// `count` large objects were freed.
    func freed(_ count: Int = 1) { pending += count }

    /// Trims (asynchronously) when something was freed and the interval has passed. Called once a second.
    func tick() {
        guard pending > 0, let trim = Self.trim, DispatchTime.now() >= last + interval else { return }
        pending = 0
        last = .now()
        trims += 1
        DispatchQueue.global(qos: .utility).async { _ = trim(0) }
    }
}
