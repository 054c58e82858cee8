import Foundation

/// What the running join tests must undo if the run is interrupted (Ctrl-C): leave the call and free the TURN
/// allocations. Each join registers its cleanup while it runs; `callsctl doctor` runs them all on SIGINT/SIGTERM
/// before it exits.
public enum JoinCleanup {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pending: [UUID: @Sendable () async -> Void] = [:]

    static func register(_ cleanup: @escaping @Sendable () async -> Void) -> UUID {
        let id = UUID()
        lock.withLock { pending[id] = cleanup }
        return id
    }

    static func unregister(_ id: UUID) {
        _ = lock.withLock { pending.removeValue(forKey: id) }
    }

    /// How many joins are live (for the interrupt message).
    public static var count: Int { lock.withLock { pending.count } }

    /// Runs every registered cleanup concurrently; returns when all finished or `timeout` passed.
    public static func runAll(timeout: Duration = .seconds(3)) async {
        let all = lock.withLock {
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskGroup(of: Void.self) { inner in
                    for cleanup in all { inner.addTask { await cleanup() } }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
