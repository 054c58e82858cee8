import Foundation
import CallsConfig
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Why the cluster database could not answer, in words for operators; never holds the password.
public struct ClusterDatabaseError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Refused, timed out, closed, or authentication failed: the database is not usable from here now.
        case unreachable
        /// It answered with an error (SQL, permissions, schema).
        case failed
        /// Its schema was written by a newer callsctl.
        case tooNew
    }

    public let kind: Kind
    public let detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }

    /// The detail of any error, as operators read it.
    public static func describe(_ error: any Error) -> String { from(error).detail }

    /// PostgresNIO's errors print a generic text on purpose; this says what happened from their parts.
    static func from(_ error: any Error) -> ClusterDatabaseError {
        if let e = error as? ClusterDatabaseError { return e }
        if let e = error as? PostgresTransactionError {
            return from(e.closureError ?? e.beginError ?? e.commitError ?? e.rollbackError ?? error)
        }
        guard let e = error as? PSQLError else { return ClusterDatabaseError(.unreachable, "\(error)") }
        if let info = e.serverInfo, let message = info[.message] {
            let state = info[.sqlState] ?? ""
            // Class 28: authentication; 3D000: no such database; 57P: the server is shutting down.
            let unreachable = state.hasPrefix("28") || state == "3D000" || state.hasPrefix("57P") || state.hasPrefix("08")
            return ClusterDatabaseError(unreachable ? .unreachable : .failed, "the server said: \(message) (SQLSTATE \(state))")
        }
        if let underlying = e.underlying { return ClusterDatabaseError(.unreachable, describeUnderlying(underlying)) }
        switch e.code {
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return ClusterDatabaseError(.unreachable, "the connection was closed")
        case .connectionError: return ClusterDatabaseError(.unreachable, "cannot connect")
        case .sslUnsupported: return ClusterDatabaseError(.unreachable, "the server does not offer TLS, and sslmode requires it")
        case .authMechanismRequiresPassword:
            return ClusterDatabaseError(.unreachable, "the server asks for a password and none was given (cluster.database_password_file)")
        default: return ClusterDatabaseError(.failed, "\(e.code)")
        }
    }

    private static func describeUnderlying(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") { return "connecting timed out" }
        return text
    }
}

/// A few connections to the cluster's PostgreSQL: made when needed, reused while healthy, dropped after any
/// error. Every use is bounded by `timeout`, so a database that stops answering refuses new calls in seconds
/// instead of holding joins, and a database that comes back is used again at the next query.
actor PostgresLink {
    let url: PostgresURL
    private let password: String?
    private let logger: Logger
    let timeout: Duration
    private var idle: [PostgresConnection] = []
    private var nextID = 0
    private static let maxIdle = 4
    /// The database connections' own event loop: not NIO's shared singleton, which other parts of the process (the
    /// load generator's clients, tests' servers) may keep busy; a stalled loop held every query past its bound.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(url: PostgresURL, password: String?, timeout: Duration, logger: Logger) {
        self.url = url
        self.password = password
        self.timeout = timeout
        self.logger = logger
    }

    private func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch url.sslMode {
        case .disable:
            tls = .disable
        case .prefer, .require:
            // As libpq: encrypted, certificate not checked (verify-full checks it).
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            let context = try NIOSSLContext(configuration: config)
            tls = url.sslMode == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var config = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: password ?? url.password, database: url.database,
            tls: tls)
        let c = timeout.components
        config.options.connectTimeout = .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
        return config
    }

    /// A new connection of its own (the LISTEN connection), bounded by the timeout.
    func connect() async throws(ClusterDatabaseError) -> PostgresConnection {
        nextID += 1
        let id = nextID
        let logger = self.logger
        do {
            let config = try configuration()
            return try await PostgresConnection.connect(on: Self.group.next(), configuration: config, id: id, logger: logger)
        } catch {
            throw ClusterDatabaseError.from(error)
        }
    }

    /// Runs `body` on a pooled connection within the timeout. After an error or a timeout the connection is closed.
    func run<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(ClusterDatabaseError) -> T {
        var connection: PostgresConnection?
        while let c = idle.popLast() {
            if !c.isClosed { connection = c; break }
        }
        let conn: PostgresConnection
        if let connection { conn = connection } else { conn = try await connect() }
        let limit = timeout ?? self.timeout
        // The work and a timer race; the caller is answered by the first. The work is not awaited after a timeout:
        // a query written to a connection that closed meanwhile is never answered by PostgresNIO, and awaiting it
        // (as a task group would) hung the caller for good.
        let race = Race<T>()
        let outcome: Result<T, any Error> = await withCheckedContinuation { continuation in
            race.start(continuation)
            let work = Task {
                do { race.finish(.success(try await body(conn))) } catch { race.finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                if Task.isCancelled { return }
                if race.finish(.failure(ClusterDatabaseError(.unreachable, "no answer within \(limit)"))) {
                    // Closing the connection ends the query that hangs on it.
                    Self.discard(conn)
                    work.cancel()
                }
            }
            race.onFinish { timer.cancel() }
        }
        switch outcome {
        case .success(let value):
            if idle.count < Self.maxIdle && !conn.isClosed { idle.append(conn) } else { Self.discard(conn) }
            return value
        case .failure(let error):
            Self.discard(conn)
            throw ClusterDatabaseError.from(error)
        }
    }

    /// Closes `connection` in the background, keeping it alive until it is closed (PostgresNIO asserts that).
    static func discard(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    deinit {
        // PostgresNIO requires every connection to be closed before it goes; closing keeps it alive until then.
        for c in idle { Self.discard(c) }
    }

    /// Closes the idle connections.
    func close() async {
        let all = idle
        idle = []
        for c in all { try? await c.close() }
    }
}

/// Reads every row of a result.
extension PostgresRowSequence {
    func all() async throws -> [PostgresRow] {
        var rows: [PostgresRow] = []
        for try await row in self { rows.append(row) }
        return rows
    }
}

/// The first of several outcomes resumes a continuation; the later ones are dropped.
final class Race<T: Sendable>: @unchecked Sendable {
    // @unchecked: every stored property is accessed only with `lock` held.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Result<T, any Error>, Never>?
    private var early: Result<T, any Error>?
    private var done = false
    private var finished: [@Sendable () -> Void] = []

    func start(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
        let ready: Result<T, any Error>? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(returning: ready) }
    }

    /// Runs `action` once the race is decided (at once if it is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let now = lock.withLock {
            if done { return true }
            finished.append(action)
            return false
        }
        if now { action() }
    }

    /// True when this outcome won.
    @discardableResult
    func finish(_ outcome: Result<T, any Error>) -> Bool {
        let (won, c, actions): (Bool, CheckedContinuation<Result<T, any Error>, Never>?, [@Sendable () -> Void]) = lock.withLock {
            guard !done else { return (false, nil, []) }
            done = true
            if continuation == nil { early = outcome }
            defer {
                continuation = nil
                finished = []
            }
            return (true, continuation, finished)
        }
        c?.resume(returning: outcome)
        for a in actions { a() }
        return won
    }
}
