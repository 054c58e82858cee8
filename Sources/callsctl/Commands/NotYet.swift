/// Commands whose synopsis exists before their implementation say so plainly and exit 3.
enum NotYet {
    static func fail(_ command: String, issue: String) -> CLIError {
        CLIError(
            "`callsctl \(command)` is not built yet in this version (\(BuildInfo.version)); it arrives with \(issue).",
            exitCode: .undecided)
    }
}
