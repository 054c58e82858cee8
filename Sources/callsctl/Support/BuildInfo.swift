/// The version this binary reports. Bump at release.
enum BuildInfo {
    static let version = "0.1.0"
    /// A schema tag for JSON reports.
    static let tool = "callsctl"
}
