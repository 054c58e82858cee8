import CallsConfig
import Foundation

/// Where a command finds the cluster's database: the flag, else `CALLSCTL_CLUSTER_DB` (or
/// `CALLSCTL_CLUSTER_DATABASE_URL`), else `[cluster] database_url` of a config file; the password from the URL or
/// from a password file (flag, config, `CALLSCTL_CLUSTER_DATABASE_PASSWORD_FILE`). One rule for `channel`, `doctor`
/// and the password file of `serve` (whose URL comes through its own config resolution).
enum ClusterDatabaseSource {
    /// The database and its password, or nil when none is configured (one node on SQLite).
    /// - Parameter config: the config file's settings, and its path for messages.
    static func resolve(urlFlag: String?, passwordFileFlag: String?, config: (settings: CallsConfig, path: String)?) throws
        -> (url: PostgresURL, password: String?)?
    {
        let env = ProcessInfo.processInfo.environment
        var text = urlFlag
        var how = "--cluster-db"
        if text == nil, let v = env["CALLSCTL_CLUSTER_DB"] ?? env["CALLSCTL_CLUSTER_DATABASE_URL"], !v.isEmpty {
            text = v
            how = "CALLSCTL_CLUSTER_DB"
        }
        if text == nil, let config, let v = config.settings.clusterDatabaseURL {
            text = v
            how = "\(config.path) cluster.database_url"
        }
        guard let text else { return nil }
        let url: PostgresURL
        do { url = try PostgresURL(parsing: text) } catch { throw CLIError("\(how) \(error.description)", exitCode: .usage) }
        let file =
            passwordFileFlag ?? config?.settings.clusterDatabasePasswordFile
            ?? env["CALLSCTL_CLUSTER_DATABASE_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        return (url, try file.map(readPassword))
    }

    /// The password file's first line (exit 3 when it cannot be read).
    static func readPassword(_ file: String) throws -> String {
        let path = (file as NSString).expandingTildeInPath
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError(
                "cannot read the cluster database password file \(path)", exitCode: .undecided,
                hint: "Check the path and that this user may read it.")
        }
        return text.trimmingCharacters(in: .newlines)
    }
}
