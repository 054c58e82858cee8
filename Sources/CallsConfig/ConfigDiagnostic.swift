/// One finding about a configuration: an error (the config cannot be used) or a warning (it can, but
/// probably not as meant). Messages name the key, the bad value and what is allowed; `fix` says what to do.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case error, warning
    }

    public var severity: Severity
    /// The file the finding is in, when it comes from a file.
    public var file: String?
    /// The 1-based line in `file`.
    public var line: Int?
    /// The key (`rtc.ice_port_udp`), environment variable or flag concerned.
    public var key: String?
    public var message: String
    /// How to fix it, when there is more to say than the message.
    public var fix: String?

    public init(
        severity: Severity, file: String? = nil, line: Int? = nil, key: String? = nil, message: String,
        fix: String? = nil
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.fix = fix
    }

    public static func error(
        _ message: String, file: String? = nil, line: Int? = nil, key: String? = nil, fix: String? = nil
    ) -> ConfigDiagnostic {
        ConfigDiagnostic(severity: .error, file: file, line: line, key: key, message: message, fix: fix)
    }

    public static func warning(
        _ message: String, file: String? = nil, line: Int? = nil, key: String? = nil, fix: String? = nil
    ) -> ConfigDiagnostic {
        ConfigDiagnostic(severity: .warning, file: file, line: line, key: key, message: message, fix: fix)
    }

    /// `file:line: ` (or `file: `, or nothing) — where the finding is.
    public var location: String {
        switch (file, line) {
        case (let file?, let line?): "\(file):\(line): "
        case (let file?, nil): "\(file): "
        default: ""
        }
    }

    /// `file:line: error: key: message` and, on the next line, `  fix: ...`.
    public var description: String {
        var text = "\(location)\(severity.rawValue): "
        if let key { text += "\(key): " }
        text += message
        if let fix { text += "\n  fix: \(fix)" }
        return text
    }
}
