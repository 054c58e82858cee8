import NIOCore
import NIOPosix

/// The thread the API server's asynchronous work runs on: every signaling session (an actor), the loops that
/// feed it WebSocket messages, and the bridges from media events.
///
/// Without it that work would run on Swift's shared cooperative pool, which has one thread per core. Anything
/// else in the process that holds those threads, such as CPU-bound work or a blocking call, would then stop the
/// server from answering joins, even though its sockets live on their own event loops. Tasks made with
/// ``task(_:)`` prefer this executor (SE-0417), and so the default actors they call run here too.
///
/// One thread serves every API server in the process and lives as long as the process: a job enqueued after its
/// loop shut down would never run, leaving its task suspended for good.
final class ControlExecutor: TaskExecutor, Sendable {
    static let shared = ControlExecutor()

    private let loop: any EventLoop

    private init() {
        loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Starts `operation` as an unstructured task on this executor.
    @discardableResult
    func task<T: Sendable>(_ operation: sending @escaping () async -> T) -> Task<T, Never> {
        Task(executorPreference: self, operation: operation)
    }

    /// True on the executor's thread.
    var inControlThread: Bool { loop.inEventLoop }
}
