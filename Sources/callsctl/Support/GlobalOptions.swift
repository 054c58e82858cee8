import ArgumentParser
import Foundation

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "Where callsctl keeps its data (calls.db, secrets).",
            discussion: "Default: $CALLSCTL_DATA_DIR, else $XDG_DATA_HOME/callsctl, else ~/.local/share/callsctl.",
            valueName: "dir"),
        completion: .directory)
    var dataDir: String?

    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false

    @Flag(name: .customLong("no-color"), help: "Never use colour (also when NO_COLOR is set).")
    var noColor = false

    @Flag(name: [.short, .long], help: "Print only errors and the essential result.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Print more detail about what is being done.")
    var verbose = false

    func validate() throws {
        if quiet && verbose {
            throw ValidationError("--quiet and --verbose cannot be used together; choose one.")
        }
        if let dataDir, dataDir.isEmpty {
            throw ValidationError("--data-dir needs a folder path, not an empty string.")
        }
    }

    /// The resolved data directory.
    var resolvedDataDir: String {
        DataDirectory.resolve(flag: dataDir, environment: ProcessInfo.processInfo.environment)
    }

    /// The output sink configured by these options.
    var output: Output {
        Output(json: json, quiet: quiet, verbose: verbose, noColor: noColor)
    }
}

enum DataDirectory {
    /// `--data-dir`, else `$CALLSCTL_DATA_DIR`, else `$XDG_DATA_HOME/callsctl`, else `~/.local/share/callsctl`.
    static func resolve(flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return absolute(flag) }
        if let env = environment["CALLSCTL_DATA_DIR"], !env.isEmpty { return absolute(env) }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty, xdg.hasPrefix("/") {
            return (xdg as NSString).appendingPathComponent("callsctl")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".local/share/callsctl")
    }

    private static func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
        let cwd = FileManager.default.currentDirectoryPath
        return ((cwd as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
    }
}
