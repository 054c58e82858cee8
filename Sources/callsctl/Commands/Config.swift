import ArgumentParser
import CallsConfig
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write, check and show configs for a whole calls deployment.",
        subcommands: [ConfigGenerate.self, ConfigValidate.self, ConfigShow.self, ConfigImportRTCD.self])
}

struct ConfigValidate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check config files and report every error with file, line and fix.",
        discussion: """
            Checks callsctl.toml files: TOML syntax, unknown keys (with a suggestion), value types and ranges \
            (ports 1-65535, the media TCP port not the API port), addresses, TURN/STUN URLs, TURN URLs without a \
            secret file, and secret files (readable; readable by everyone is an error, by the group a warning). \
            With --resolve, host names must resolve. With --bundle, the configs of a generated bundle are \
            cross-checked. Exit 0 ok (or only warnings), 1 warnings with --strict, 2 errors.

            Examples:
              callsctl config validate /etc/callsctl/callsctl.toml
              callsctl config validate --resolve --strict a.toml b.toml --json
              callsctl config validate --bundle ./deploy
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("Config files.", valueName: "file"), completion: .file()) var files: [String] = []
    @Flag(help: "Exit 1 on warnings.") var strict = false
    @Flag(help: "Also check that hostnames resolve.") var resolve = false
    @Option(
        help: ArgumentHelp("Also cross-check the configs of a generated bundle folder.", valueName: "dir"),
        completion: .directory)
    var bundle: String?

    func validate() throws {
        if files.isEmpty && bundle == nil {
            throw ValidationError("give at least one config file, or --bundle DIR.")
        }
    }

    func run() async throws {
        var findings: [ConfigDiagnostic] = []
        for file in files {
            let resolution = CallsConfig.resolve(filePath: file)
            findings += resolution.diagnostics
            // A file that does not read or parse has no values worth checking.
            if !resolution.diagnostics.contains(where: { $0.severity == .error && $0.line == nil })
                && !resolution.diagnostics.contains(where: { $0.message.hasPrefix("TOML syntax") })
            {
                findings += resolution.config.validate(resolve: resolve)
            }
        }
        if let bundle { findings += crossCheckBundle(directory: bundle) }
        let checked = files + (bundle.map { ["bundle \($0)"] } ?? [])
        try ConfigReport.finish(findings, checked: checked, strict: strict, global: global, what: "config validate")
    }
}

/// Prints a list of findings (human or JSON) and ends with the matching exit code.
enum ConfigReport {
    static func json(_ d: ConfigDiagnostic) -> JSONValue {
        .object([
            ("severity", .string(d.severity.rawValue)), ("file", d.file.map { .string($0) } ?? .null),
            ("line", d.line.map { .int(Int64($0)) } ?? .null), ("key", d.key.map { .string($0) } ?? .null),
            ("message", .string(d.message)), ("fix", d.fix.map { .string($0) } ?? .null),
        ])
    }

    static func finish(
        _ findings: [ConfigDiagnostic], checked: [String], strict: Bool, global: GlobalOptions, what: String,
        extra: [(String, JSONValue)] = []
    ) throws {
        let out = global.output
        // In the order the files were given, then by line; findings without a line (the whole file) first.
        func rank(_ file: String?) -> Int { file.flatMap { checked.firstIndex(of: $0) } ?? checked.count }
        let findings = findings.enumerated().sorted { a, b in
            let ka = (rank(a.element.file), a.element.line ?? 0, a.offset)
            let kb = (rank(b.element.file), b.element.line ?? 0, b.offset)
            return ka < kb
        }.map(\.element)
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.count - errors
        if global.json {
            out.emit(
                .object(
                    [
                        ("ok", .bool(errors == 0 && (!strict || warnings == 0))), ("checked", .array(checked.map { .string($0) })),
                        ("errors", .int(Int64(errors))), ("warnings", .int(Int64(warnings))),
                        ("diagnostics", .array(findings.map(json))),
                    ] + extra))
        } else {
            for finding in findings {
                let text = finding.description
                let styled = out.styled(text, finding.severity == .error ? .red : .yellow)
                out.line(out.color ? styled : text)
            }
            let summary = "\(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")"
            if findings.isEmpty {
                out.info("ok: \(checked.joined(separator: ", "))")
            } else {
                out.line("\(summary) in \(checked.joined(separator: ", "))")
            }
        }
        if errors > 0 {
            throw CLIError("\(what): \(errors) error\(errors == 1 ? "" : "s")", exitCode: .negative)
        }
        if strict && warnings > 0 {
            throw CLIError("\(what): \(warnings) warning\(warnings == 1 ? "" : "s") (--strict)", exitCode: .internalError)
        }
    }
}

struct ConfigShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show the resolved config and where each value came from.",
        discussion: """
            Resolves defaults < config file < CALLSCTL_... environment, as `serve` does before its flags, and \
            prints each value with its source: default, FILE:LINE, or the environment variable. Secrets are \
            never printed (shown as <redacted>). The file is --config, else $CALLSCTL_CONFIG, else \
            callsctl.toml in the data directory if present. Exit 2 when the config has errors.

            Example: callsctl config show --effective --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Flag(help: "Include defaults, not only values that were set.") var effective = false
    @Option(help: ArgumentHelp("Config file to show.", valueName: "file"), completion: .file(extensions: ["toml"]))
    var config: String?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let location = ConfigFileLocation.find(flag: config, environment: env, dataDir: global.resolvedDataDir)
        let resolution = CallsConfig.resolve(filePath: location.path, environment: env)
        let resolved = resolution.config
        var findings = resolution.diagnostics
        findings += resolved.validate(resolve: false)
        let out = global.output
        let keys = ConfigKey.all.filter { effective || resolved.source(of: $0.name) != .default }

        if global.json {
            let settings: [JSONValue] = keys.map { key in
                let source = resolved.source(of: key.name)
                var src: [(String, JSONValue)] = [("kind", .string(source.kind))]
                switch source {
                case .file(let path, let line): src += [("file", .string(path)), ("line", .int(Int64(line)))]
                case .environment(let name), .flag(let name): src.append(("name", .string(name)))
                case .default: break
                }
                return .object([
                    ("key", .string(key.name)), ("value", Self.json(resolved, key)),
                    ("source", .object(src)), ("env", .string(key.environmentName)),
                    ("flags", .array(key.flags.map { .string($0) })), ("secret", .bool(key.isSecret)),
                ])
            }
            let errors = findings.filter { $0.severity == .error }.count
            out.emit(
                .object([
                    ("file", location.path.map { .string($0) } ?? .null), ("fileFrom", .string(location.how)),
                    ("dataDir", .string(global.resolvedDataDir)), ("settings", .array(settings)),
                    ("errors", .int(Int64(errors))), ("diagnostics", .array(findings.map(ConfigReport.json))),
                ]))
        } else {
            out.line("# config file: \(location.path.map { "\($0) (from \(location.how))" } ?? location.how)")
            out.line("# data directory: \(global.resolvedDataDir) (--data-dir or CALLSCTL_DATA_DIR; not a config key)")
            if keys.isEmpty { out.line("# every value is the default; --effective shows them") }
            var section = ""
            for key in keys {
                if key.section != section {
                    section = key.section
                    out.line("")
                    out.line("[\(section)]")
                }
                let value = resolved.displayValue(of: key.name) ?? "(unset)"
                out.line("\(key.keyInSection) = \(value)  # \(resolved.source(of: key.name))")
            }
            for finding in findings { out.line(finding.description) }
        }
        if findings.contains(where: { $0.severity == .error }) {
            throw CLIError("config show: the config has errors (listed above)", exitCode: .negative)
        }
    }

    static func json(_ config: CallsConfig, _ key: ConfigKey) -> JSONValue {
        guard let value = config[key.name] else { return .null }
        if key.name == "cluster.database_url", case .string(let url) = value { return .string(PostgresURL.redact(url)) }
        if key.isSecret { return .string("<redacted>") }
        switch value {
        case .string(let s): return .string(s)
        case .integer(let i): return .int(Int64(i))
        case .bool(let b): return .bool(b)
        case .list(let l): return .array(l.map { .string($0) })
        }
    }
}

struct ConfigImportRTCD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-rtcd", abstract: "Convert an rtcd config.toml (and RTCD_... environment) into a callsctl config.",
        discussion: """
            Reads rtcd's config.toml and the RTCD_... environment variables (which override it, as in rtcd), \
            writes the callsctl.toml to --out (or standard output), and lists every rtcd setting it dropped and \
            why. Secrets are never printed: with --out, rtcd's turn.static_auth_secret goes to turn-secret and \
            its admin_secret_key (when the admin was on) to admin-key beside it, mode 0600, and the config \
            points there. Existing files are only replaced with --force; each is written whole or not at all. \
            Exit 2 when the converted config would not be valid (nothing is written), 3 when FILE cannot be read.

            Examples:
              callsctl config import-rtcd /opt/rtcd/bin/config/config.toml --out /etc/callsctl/callsctl.toml
              RTCD_RTC_ICEHOSTOVERRIDE=203.0.113.7 callsctl config import-rtcd config.toml --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("rtcd's config.toml.", valueName: "file"), completion: .file(extensions: ["toml"]))
    var file: String
    @Option(help: ArgumentHelp("Where to write callsctl.toml. Default: standard output.", valueName: "file"), completion: .file())
    var out: String?
    @Flag(help: "Replace --out if it exists.") var force = false

    func run() async throws {
        let output = global.output
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw CLIError("cannot read the rtcd config \(file): \(Self.reason(file))", exitCode: .undecided)
        }
        // rtcd keeps the TURN secret inline; callsctl reads it from a file beside --out.
        func beside(_ name: String) -> String? {
            out.map { (URL(fileURLWithPath: $0).deletingLastPathComponent().path as NSString).appendingPathComponent(name) }
        }
        let secretPath = beside("turn-secret")
        let adminKeyPath = beside("admin-key")
        let converted: RTCDImport
        do {
            converted = try RTCDImport(
                text: text, path: file, environment: ProcessInfo.processInfo.environment, turnSecretFile: secretPath,
                adminKeyFile: adminKeyPath)
        } catch {
            throw CLIError("the rtcd config is not valid TOML: \(error.description)", exitCode: .negative)
        }
        let target = out ?? "callsctl.toml"
        var resolution = CallsConfig.resolve(fileText: converted.toml, filePath: target)
        // The secret file is written below; check the rest now.
        resolution.diagnostics += resolution.config.validate(resolve: false).filter {
            !(converted.turnSecret != nil && $0.key == "rtc.turn.static_auth_secret_file")
                && !(converted.adminKey != nil && $0.key == "api.security.admin_key_file")
        }
        let errors = resolution.diagnostics.filter { $0.severity == .error }

        if let out, errors.isEmpty {
            let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) || !isDir.boolValue {
                throw CLIError(
                    "--out \(out): the folder \(folder) \(isDir.boolValue || !FileManager.default.fileExists(atPath: folder) ? "does not exist" : "is not a folder"); nothing was written",
                    exitCode: .negative, hint: "Create it first (mkdir -p \(folder)), or choose another --out.")
            }
            if FileManager.default.fileExists(atPath: out) && !force {
                throw CLIError(
                    "\(out) exists; not replacing it", exitCode: .negative, hint: "Pass --force to replace it, or choose another --out.")
            }
            let secrets = [
                (converted.turnSecret, secretPath, "rtcd's TURN secret"), (converted.adminKey, adminKeyPath, "rtcd's admin secret"),
            ].compactMap { value, path, what in value.flatMap { v in path.map { (v, $0, what) } } }
            // Check every target before writing any, so a refusal leaves nothing half-done.
            for (_, path, what) in secrets where FileManager.default.fileExists(atPath: path) && !force {
                throw CLIError(
                    "\(path) exists; not replacing it (it would receive \(what))", exitCode: .negative,
                    hint: "Pass --force to replace it, or choose another --out folder.")
            }
            for (value, path, _) in secrets { try Self.writeAtomically(value + "\n", to: path, mode: 0o600) }
            try Self.writeAtomically(converted.toml, to: out, mode: 0o644)
        }

        if global.json {
            output.emit(
                .object([
                    ("ok", .bool(errors.isEmpty)), ("source", .string(file)), ("out", out.map { .string($0) } ?? .null),
                    ("written", .bool(out != nil && errors.isEmpty)), ("toml", .string(converted.toml)),
                    ("mapped", .array(converted.mapped.map { m in
                        .object([("rtcd", .string(m.rtcdKey)), ("key", .string(m.key)), ("from", .string(m.origin))])
                    })),
                    ("dropped", .array(converted.dropped.map { d in
                        .object([("rtcd", .string(d.key)), ("from", .string(d.origin)), ("reason", .string(d.reason))])
                    })),
                    ("diagnostics", .array(resolution.diagnostics.map(ConfigReport.json))),
                ]))
        } else {
            if out == nil && errors.isEmpty { Terminal.standardOutput.write(converted.toml) }
            for d in converted.dropped { output.note("dropped \(d.key) (\(d.origin)): \(d.reason)") }
            for d in resolution.diagnostics { output.note(d.description) }
            if out == nil && !errors.isEmpty && converted.dropped.contains(where: { $0.key == "rtc.turn.static_auth_secret" }) {
                output.note("hint: with --out FILE the TURN secret is written to turn-secret beside it (mode 0600)")
            }
            if let secretPath, converted.turnSecret != nil, errors.isEmpty {
                output.note("wrote rtcd's TURN secret to \(secretPath) (mode 0600)")
            }
            if let adminKeyPath, converted.adminKey != nil, errors.isEmpty {
                output.note("wrote rtcd's admin secret to \(adminKeyPath) (mode 0600); send it as \"Authorization: Bearer KEY\"")
            }
            if let out, errors.isEmpty {
                output.note("wrote \(out): \(converted.mapped.count) setting(s) converted, \(converted.dropped.count) dropped")
            }
        }
        if !errors.isEmpty {
            throw CLIError("import-rtcd: the converted config has \(errors.count) error(s); nothing was written", exitCode: .negative)
        }
    }

    static func reason(_ path: String) -> String {
        var st = stat()
        if stat(path, &st) != 0 { return String(cString: strerror(errno)) }
        return "not a readable UTF-8 text file"
    }

    /// Writes to a temporary file beside `path` (created with O_EXCL and `mode`, so a secret is never
    /// readable by others, not even for a moment), then renames it over `path`: readers see the old file or
    /// the whole new one.
    static func writeAtomically(_ text: String, to path: String, mode: Int) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let temp = (dir as NSString).appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            // The temporary file is ours; what the user chose is the file and its folder.
            throw CLIError("cannot write \(path) (in the folder \(dir)): \(why)", exitCode: .undecided)
        }
        let bytes = Array(text.utf8)
        var offset = 0
        var failure: String?
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                break
            }
            offset += n
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(temp)
            throw CLIError("cannot write \(temp): \(failure)", exitCode: .undecided)
        }
        if rename(temp, path) != 0 {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw CLIError("cannot move the new file into place at \(path): \(why)", exitCode: .undecided)
        }
    }
}
