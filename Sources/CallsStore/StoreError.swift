import Foundation

/// Why the settings store could not be used. Every message names the file and says how to fix it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file exists but is not a usable SQLite database (corrupt, or some other file).
        case corrupt
        /// The file or its folder cannot be read or written (permissions, a folder in its place, ...).
        case inaccessible
        /// The database was written by a newer callsctl with migrations this one does not know.
        case tooNew
        /// The file system holding the database is full.
        case diskFull
        /// The cluster's PostgreSQL cannot be reached (refused, timed out, authentication failed).
        case unreachable
        /// Another SQLite or PostgreSQL error.
        case other
    }

    public let kind: Kind
    public let path: String
    public let detail: String

    public init(kind: Kind, path: String, detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String {
        switch kind {
        case .corrupt:
            return """
                the settings database \(path) is damaged or is not a callsctl database (\(detail)). \
                It was left untouched. Fix: move it aside (mv '\(path)' '\(path).broken') and run the \
                command again to start an empty one, or restore it from a backup; \
                `sqlite3 '\(path)' .recover` may salvage its rows.
                """
        case .inaccessible:
            return """
                cannot open the settings database \(path) (\(detail)). Fix: check that the path is a \
                file that this user can read and write, and that its folder exists and is writable, \
                or choose another place with --data-dir or CALLSCTL_DATA_DIR.
                """
        case .tooNew:
            return """
                the settings database \(path) was written by a newer callsctl (\(detail)). It was left \
                untouched. Fix: upgrade callsctl, or use another --data-dir.
                """
        case .diskFull:
            let folder = (path as NSString).deletingLastPathComponent
            return """
                no space left on device: the settings database \(path) cannot be written (\(detail)). Nothing \
                was changed. Fix: free space on the file system that holds \(folder) (df -h '\(folder)'), then \
                run the command again, or choose another place with --data-dir or CALLSCTL_DATA_DIR.
                """
        case .unreachable:
            return """
                cannot reach the cluster database \(path) (\(detail)). Fix: check that PostgreSQL runs and accepts \
                connections from this host (listen_addresses, pg_hba.conf), and that the user, password and database \
                in the URL are right; `psql '\(path)'` tests the same connection.
                """
        case .other:
            return "the settings database \(path) failed: \(detail)"
        }
    }
}
