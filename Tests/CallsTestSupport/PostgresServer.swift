import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL (Debian's `postgresql` package) on 127.0.0.1 for tests: its own data folder, a free port, and a
/// user `callsctl` with a password (scram-sha-256 over TCP), so every connection is a real, authenticated one.
///
/// As root (CI) the server runs as the `postgres` user, since `initdb` and `postgres` refuse to run as root.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked: `process` changes only in stop()/start(), which tests call from one task at a time.
    public private(set) var port: UInt16 = 0
    public let user = "callsctl"
    public let password = "pw-\(UInt32.random(in: 0...UInt32.max))"
    public let directory: URL
    private var process: Process?
    private let lock = NSLock()
    private var databases = 0

    /// One server shared by the tests of this process that do not stop it (each uses its own database).
    public static let shared: Result<PostgresServer, PostgresServerError> = {
        do { return .success(try PostgresServer()) } catch { return .failure(error as? PostgresServerError ?? PostgresServerError("\(error)")) }
    }()

    public var dataDirectory: String { directory.appendingPathComponent("data").path }
    public var logFile: String { directory.appendingPathComponent("postgres.log").path }

    /// `postgres://callsctl:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable`.
    public func url(database: String, withPassword: Bool = true) -> String {
        "postgres://\(user)\(withPassword ? ":\(password)" : "")@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    public static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let v = versions.last else { return nil }
        let dir = "\(root)/\(v)/bin"
        return FileManager.default.isExecutableFile(atPath: "\(dir)/postgres") ? dir : nil
    }

    public static var isInstalled: Bool { binDirectory != nil }

    public init() throws(PostgresServerError) {
        guard let bin = Self.binDirectory else {
            throw PostgresServerError("PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/postgres); run scripts/install-deps.sh --test")
        }
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("callsctl-pg-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let pwfile = directory.appendingPathComponent("pw").path
            try password.write(toFile: pwfile, atomically: true, encoding: .utf8)
            if getuid() == 0 { try Self.run(["/bin/chown", "-R", "postgres:postgres", directory.path]) }
            try Self.run(
                Self.asPostgres([
                    "\(bin)/initdb", "-D", directory.appendingPathComponent("data").path, "-U", user, "--pwfile=\(pwfile)",
                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync", "--locale=C",
                ]))
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw PostgresServerError("initdb failed: \(error)")
        }
        for attempt in 1...4 {
            let candidate = (try? freePort(tcpAndUDP: false)) ?? UInt16.random(in: 20000...30000)
            do {
                port = candidate
                try start(port: candidate)
                break
            } catch {
                if attempt == 4 {
                    try? FileManager.default.removeItem(at: directory)
                    throw error
                }
            }
        }
    }

    /// Starts the server (again, after ``stop()``) on its port.
    public func start() throws(PostgresServerError) { try start(port: port) }

    private func start(port: UInt16) throws(PostgresServerError) {
        guard let bin = Self.binDirectory else { throw PostgresServerError("PostgreSQL is not installed") }
        let p = Process()
        let args = Self.asPostgres([
            "\(bin)/postgres", "-D", dataDirectory, "-h", "127.0.0.1", "-p", "\(port)", "-k", directory.path,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            "-c", "shared_buffers=16MB", "-c", "logging_collector=off",
        ])
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        FileManager.default.createFile(atPath: logFile, contents: nil)
        if getuid() == 0 { chown(logFile, Self.postgresUID, Self.postgresGID) }
        let log = FileHandle(forWritingAtPath: logFile)
        log?.seekToEndOfFile()
        p.standardOutput = log ?? FileHandle.nullDevice
        p.standardError = log ?? FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw PostgresServerError("cannot start postgres: \(error)") }
        // A static server is never deinitialised, and a crashed test process runs no cleanup: a watcher stops
        // postgres (and removes its folder) once this process is gone.
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: "/bin/sh")
        watcher.arguments = [
            "-c",
            "while kill -0 \(getpid()) 2>/dev/null && kill -0 \(p.processIdentifier) 2>/dev/null; do sleep 1; done; "
                + "kill -0 \(getpid()) 2>/dev/null || { kill -INT \(p.processIdentifier) 2>/dev/null; sleep 3; kill -KILL \(p.processIdentifier) 2>/dev/null; rm -rf '\(directory.path)'; }",
        ]
        watcher.standardOutput = FileHandle.nullDevice
        watcher.standardError = FileHandle.nullDevice
        watcher.standardInput = FileHandle.nullDevice
        try? watcher.run()
        lock.withLock { process = p }
        // Ready when it accepts TCP connections and a query (bounded: 30 s).
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !p.isRunning {
                throw PostgresServerError("postgres exited at start (status \(p.terminationStatus)): \(String(logText.suffix(1500)))")
            }
            if (try? psql("postgres", "SELECT 1")) != nil { return }
            usleep(100_000)
        }
        kill(p.processIdentifier, SIGKILL)
        throw PostgresServerError("postgres did not accept connections on 127.0.0.1:\(port) within 30 s: \(String(logText.suffix(1500)))")
    }

    /// Stops the server (fast shutdown: clients are disconnected), as an outage would.
    public func stop() {
        guard let p = lock.withLock({ process }) else { return }
        kill(p.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        lock.withLock { process = nil }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var logText: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// A new empty database for one test.
    public func createDatabase(prefix: String = "t") throws(PostgresServerError) -> String {
        let n = lock.withLock {
            databases += 1
            return databases
        }
        let name = "\(prefix)_\(getpid())_\(n)_\(UInt16.random(in: 0...9999))"
        _ = try psql("postgres", "CREATE DATABASE \(name)")
        return name
    }

    /// Runs one SQL command with psql over TCP; returns its unaligned output.
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws(PostgresServerError) -> String {
        guard let bin = Self.binDirectory else { throw PostgresServerError("PostgreSQL is not installed") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "\(bin)/psql")
        p.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql]
        var env = ProcessInfo.processInfo.environment
        env["PGPASSWORD"] = password
        env["PGCONNECT_TIMEOUT"] = "5"
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw PostgresServerError("cannot run psql: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw PostgresServerError("psql \(sql.prefix(80)) failed: \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Running as postgres

    private static let postgresUID: uid_t = getpwnam("postgres")?.pointee.pw_uid ?? 0
    private static let postgresGID: gid_t = getpwnam("postgres")?.pointee.pw_gid ?? 0

    private static func asPostgres(_ command: [String]) -> [String] {
        getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command : command
    }

    private static func run(_ command: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            throw PostgresServerError("\(command.first ?? "") exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))")
        }
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
