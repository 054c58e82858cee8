import ArgumentParser
import CallsCluster
import CallsConfig
import CallsStore
import Foundation
import Logging

/// `callsctl channel ...`: per-channel call settings.
struct Channel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Allow or forbid calls per channel, and switch test mode.",
        discussion: """
            A channel's setting is enabled, disabled or unset. With test mode off, calls may start in \
            every channel that is not disabled; with test mode on, only in enabled channels (admins \
            may still test in unset ones). Disabled stops everyone, admins included. A running \
            `callsctl serve` applies changes to the next call start, with no restart. Every change \
            is kept in an audit log (`callsctl channel history`).

            Settings live in calls.db in the data directory; in a cluster (several `serve` nodes on one \
            PostgreSQL) they live in the cluster's database, given by --cluster-db, CALLSCTL_CLUSTER_DB, or \
            [cluster] database_url in the config file, and every node applies a change to its next call start.

            Examples:
              callsctl channel enable 4xp9fdt3pbdp7nrw7xjmrd8kkc
              callsctl channel disable 4xp9fdt3pbdp7nrw7xjmrd8kkc --actor alice
              callsctl channel status 4xp9fdt3pbdp7nrw7xjmrd8kkc --json
              callsctl channel list --enabled
              callsctl channel testmode on
              callsctl channel history
              callsctl channel disable 4xp9fdt3pbdp7nrw7xjmrd8kkc --cluster-db postgres://callsctl@db.internal/mattermost
            """,
        subcommands: [
            ChannelEnable.self, ChannelDisable.self, ChannelReset.self, ChannelStatusCommand.self,
            ChannelList.self, ChannelHistory.self, TestMode.self,
        ]
    )
}

/// Channel ids as positional arguments, validated as Mattermost ids (bad ones are usage errors).
struct ChannelIDArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Channel ids (26 characters of a-z and 0-9).", valueName: "channel-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one channel id.") }
        for id in ids {
            do { _ = try ChannelID(validating: id) } catch { throw ValidationError(error.description) }
        }
    }

    var channelIDs: [ChannelID] { ids.compactMap { try? ChannelID(validating: $0) } }
}

struct ActorOption: ParsableArguments {
    @Option(help: ArgumentHelp("Who is making the change, for the audit log. Default: the OS user.", valueName: "name"))
    var actor: String?

    func validate() throws {
        if let actor, actor.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--actor needs a name, not an empty string.")
        }
    }

    var resolved: String { actor ?? OSUser.name }
}

enum OSUser {
    static var name: String {
        let env = ProcessInfo.processInfo.environment
        if let user = env["USER"], !user.isEmpty { return user }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid:\(geteuid())"
    }
}

/// Opens the store in the data dir, turning its errors into exit 3 with the path and a fix.
/// Where `callsctl channel` keeps the settings: a cluster's PostgreSQL (`--cluster-db`, `CALLSCTL_CLUSTER_DB`, or
/// `[cluster] database_url` in the config file), else calls.db in the data directory.
struct ClusterDBOption: ParsableArguments {
    @Option(
        name: .customLong("cluster-db"),
        help: ArgumentHelp(
            "The cluster's PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.",
            valueName: "postgres://user@host/db"))
    var url: String?

    @Option(
        name: .customLong("cluster-db-password-file"),
        help: ArgumentHelp("File with the cluster database's password.", valueName: "file"), completion: .file())
    var passwordFile: String?

    @Option(
        help: ArgumentHelp(
            "Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.",
            valueName: "file"),
        completion: .file(extensions: ["toml"]))
    var config: String?

    func validate() throws {
        if let url {
            do { _ = try PostgresURL(parsing: url) } catch { throw ValidationError("--cluster-db \(error.description)") }
        }
    }

    /// The cluster database this command was pointed at, with its password, or nil for the local store.
    func resolve(global: GlobalOptions) throws -> (url: PostgresURL, password: String?)? {
        let location = ConfigFileLocation.find(flag: config, environment: ProcessInfo.processInfo.environment, dataDir: global.resolvedDataDir)
        let file = location.path.map { (settings: CallsConfig.resolve(filePath: $0).config, path: $0) }
        return try ClusterDatabaseSource.resolve(urlFlag: url, passwordFileFlag: passwordFile, config: file)
    }
}

enum StoreAccess {
    /// The cluster's store when one is configured, else the local SQLite file (created if needed).
    static func open(_ global: GlobalOptions, cluster: ClusterDBOption) async throws -> any ChannelSettingsStoring {
        if let store = try await openCluster(global, cluster: cluster) { return store }
        return try open(global)
    }

    /// As ``open(_:cluster:)``, for commands that only read.
    static func openForReading(_ global: GlobalOptions, cluster: ClusterDBOption) async throws -> any ChannelSettingsStoring {
        if let store = try await openCluster(global, cluster: cluster) { return store }
        return try openForReading(global)
    }

    private static func openCluster(_ global: GlobalOptions, cluster: ClusterDBOption) async throws -> (any ChannelSettingsStoring)? {
        guard let (url, password) = try cluster.resolve(global: global) else { return nil }
        do {
            return try await ClusterSettingsStore.open(
                url: url, password: password, logger: Logger(label: "callsctl.channel", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            throw CLIError(error.description, exitCode: .undecided)
        }
    }

    static func open(_ global: GlobalOptions) throws -> SettingsStore {
        let path = (global.resolvedDataDir as NSString).appendingPathComponent(SettingsStore.fileName)
        do {
            return try SettingsStore(path: path)
        } catch {
            throw CLIError(error.description, exitCode: .undecided)
        }
    }

    /// For commands that only read: the usual open, and when that cannot write (a read-only data directory or file
    /// system, another user's folder), the store opened read-only, so that reading still works.
    static func openForReading(_ global: GlobalOptions) throws -> SettingsStore {
        let path = (global.resolvedDataDir as NSString).appendingPathComponent(SettingsStore.fileName)
        do {
            return try SettingsStore(path: path)
        } catch let error where error.kind == .inaccessible || error.kind == .diskFull {
            do {
                let store = try SettingsStore(readingOnly: path)
                var note = "the data directory cannot be written; read \(path) read-only"
                let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int ?? 0
                if wal > 0 { note += " (without the \(wal) bytes of \(path)-wal, which only a writer can fold in)" }
                global.output.note(note)
                return store
            } catch {
                throw CLIError(error.description, exitCode: .undecided)
            }
        } catch {
            throw CLIError(error.description, exitCode: .undecided)
        }
    }

    static func run<T>(_ body: () async throws(StoreError) -> T) async throws -> T {
        do { return try await body() } catch { throw CLIError(error.description, exitCode: .undecided) }
    }

    /// Closes a cluster store's connections (nothing for SQLite).
    static func close(_ store: any ChannelSettingsStoring) async {
        if let cluster = store as? ClusterSettingsStore { await cluster.close() }
    }
}

/// Shared by enable, disable and reset.
protocol ChannelSettingCommand: AsyncParsableCommand {
    static var target: ChannelSetting { get }
    var global: GlobalOptions { get }
    var channels: ChannelIDArguments { get }
    var actor: ActorOption { get }
    var cluster: ClusterDBOption { get }
}

extension ChannelSettingCommand {
    func run() async throws {
        let store = try await StoreAccess.open(global, cluster: cluster)
        let changes = try await StoreAccess.run { () async throws(StoreError) in
            try await store.set(Self.target, for: channels.channelIDs, actor: actor.resolved, at: Date())
        }
        var statuses: [ChannelStatus] = []
        for change in changes {
            statuses.append(try await StoreAccess.run { () async throws(StoreError) in try await store.status(of: change.channel) })
        }
        await StoreAccess.close(store)
        let out = global.output
        if global.json {
            out.emit(
                .array(
                    zip(changes, statuses).map { change, status in
                        ChannelRender.json(status, extra: [
                            ("previous", .string(change.oldSetting.rawValue)), ("changed", .bool(change.changed)),
                        ])
                    }))
            return
        }
        for (change, status) in zip(changes, statuses) {
            let verb = change.changed ? "\(change.oldSetting.rawValue) → \(change.newSetting.rawValue)" : "already \(change.newSetting.rawValue)"
            out.line("\(change.channel)  \(verb)  (calls \(status.callsAllowed ? "allowed" : "not allowed"))")
        }
    }
}

struct ChannelEnable: ChannelSettingCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Allow calls in channels, also under test mode.",
        discussion: "Example: callsctl channel enable 4xp9fdt3pbdp7nrw7xjmrd8kkc 9ue8d3m7tb8rjpuejhbcxxyaqe")
    static let target = ChannelSetting.enabled
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup var channels: ChannelIDArguments
    @OptionGroup var actor: ActorOption
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption
}

struct ChannelDisable: ChannelSettingCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Forbid calls in channels, for everyone including admins.",
        discussion: "Example: callsctl channel disable 4xp9fdt3pbdp7nrw7xjmrd8kkc --actor alice")
    static let target = ChannelSetting.disabled
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup var channels: ChannelIDArguments
    @OptionGroup var actor: ActorOption
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption
}

struct ChannelReset: ChannelSettingCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Return channels to unset, so test mode decides.",
        discussion: "Example: callsctl channel reset 4xp9fdt3pbdp7nrw7xjmrd8kkc")
    static let target = ChannelSetting.unset
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @OptionGroup var channels: ChannelIDArguments
    @OptionGroup var actor: ActorOption
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption
}

struct ChannelStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a channel's setting and whether calls may start there.",
        discussion: """
            Exit code 0 when a regular participant may start a call in the channel now, 2 when not.

            Example: callsctl channel status 4xp9fdt3pbdp7nrw7xjmrd8kkc --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("The channel id.", valueName: "channel-id")) var id: String
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption

    func validate() throws {
        do { _ = try ChannelID(validating: id) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let channel = try ChannelID(validating: id)
        let store = try await StoreAccess.openForReading(global, cluster: cluster)
        let status = try await StoreAccess.run { () async throws(StoreError) in try await store.status(of: channel) }
        let testMode = try await StoreAccess.run { () async throws(StoreError) in try await store.testMode() }
        await StoreAccess.close(store)
        let out = global.output
        if global.json {
            out.emit(ChannelRender.json(status, extra: [("testMode", .bool(testMode))]))
        } else {
            out.line("channel      \(status.id)")
            out.line("setting      \(status.setting.rawValue)")
            out.line("test mode    \(testMode ? "on" : "off")")
            let allowed =
                status.callsAllowed
                ? out.styled("yes", .green)
                : (status.adminCallsAllowed ? out.styled("admins only (test mode)", .yellow) : out.styled("no", .red))
            out.line("calls        \(allowed)")
            if let at = status.updatedAt {
                out.info("updated      \(RFC3339.format(at)) by \(status.updatedBy ?? "?")")
            }
            if !status.callsAllowed {
                out.info("hint: `callsctl channel enable \(status.id)` allows calls here")
            }
        }
        if !status.callsAllowed { throw ExitCode(CallsExitCode.negative.rawValue) }
    }
}

struct ChannelList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List channels with an explicit setting.",
        discussion: """
            Channels that were reset stay listed as unset, with the time of the reset.

            Examples:
              callsctl channel list
              callsctl channel list --disabled --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Flag(help: "Only channels where calls are enabled.") var enabled = false
    @Flag(help: "Only channels where calls are disabled.") var disabled = false
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption

    func validate() throws {
        if enabled && disabled {
            throw ValidationError("--enabled and --disabled cannot be used together; leave both out to list all.")
        }
    }

    func run() async throws {
        let store = try await StoreAccess.openForReading(global, cluster: cluster)
        let filter: ChannelSetting? = enabled ? .enabled : (disabled ? .disabled : nil)
        let rows = try await StoreAccess.run { () async throws(StoreError) in try await store.list(setting: filter) }
        let testMode = try await StoreAccess.run { () async throws(StoreError) in try await store.testMode() }
        await StoreAccess.close(store)
        let out = global.output
        if global.json {
            out.emit(.array(rows.map { ChannelRender.json($0) }))
            return
        }
        out.info("test mode: \(testMode ? "on (calls only in enabled channels)" : "off (calls everywhere except disabled channels)")")
        if rows.isEmpty {
            out.line(filter == nil ? "no channel has a setting yet" : "no \(filter!.rawValue) channels")
            return
        }
        out.line(out.styled(pad("CHANNEL", 28) + pad("SETTING", 10) + pad("CALLS", 8) + "UPDATED", .bold))
        for row in rows {
            out.line(
                pad(row.id.rawValue, 28) + pad(row.setting.rawValue, 10) + pad(row.callsAllowed ? "yes" : "no", 8)
                    + (row.updatedAt.map(RFC3339.format) ?? "-"))
        }
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}

struct ChannelHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show the audit log of setting and test-mode changes, newest first.",
        discussion: """
            Examples:
              callsctl channel history
              callsctl channel history 4xp9fdt3pbdp7nrw7xjmrd8kkc --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("Only this channel's changes.", valueName: "channel-id")) var id: String?
    @Option(help: "At most this many entries.") var limit: Int = 100
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption

    func validate() throws {
        if let id {
            do { _ = try ChannelID(validating: id) } catch { throw ValidationError(error.description) }
        }
        if limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit).") }
    }

    func run() async throws {
        let channel = try id.map { try ChannelID(validating: $0) }
        let store = try await StoreAccess.openForReading(global, cluster: cluster)
        let entries = try await StoreAccess.run { () async throws(StoreError) in try await store.history(channel: channel, limit: limit) }
        await StoreAccess.close(store)
        let out = global.output
        if global.json {
            out.emit(
                .array(
                    entries.map { e in
                        .object([
                            ("sequence", .int(e.sequence)), ("subject", .string(e.subject.rawValue)),
                            ("channel", .string(e.channel?.rawValue)), ("old", .string(e.oldValue)),
                            ("new", .string(e.newValue)), ("at", .date(e.changedAt)), ("actor", .string(e.actor)),
                        ])
                    }))
            return
        }
        if entries.isEmpty {
            out.line("no changes recorded")
            return
        }
        for e in entries {
            let what = e.subject == .testMode ? "test mode" : (e.channel?.rawValue ?? "?")
            out.line("\(RFC3339.format(e.changedAt))  \(what)  \(e.oldValue) → \(e.newValue)  by \(e.actor)")
        }
    }
}

struct TestMode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testmode", abstract: "Turn test mode on or off, or show it.",
        discussion: """
            With test mode on, calls start only in enabled channels (admins may still test in unset \
            ones). `status` exits 0 and prints {"testMode": bool} with --json.

            Examples:
              callsctl channel testmode on
              callsctl channel testmode status --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("on, off or status.", valueName: "on|off|status")) var action: Action
    @OptionGroup var actor: ActorOption
    @OptionGroup(title: "Cluster") var cluster: ClusterDBOption

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case on, off, status
    }

    func run() async throws {
        let store = try await (action == .status ? StoreAccess.openForReading(global, cluster: cluster) : StoreAccess.open(global, cluster: cluster))
        defer { Task { await StoreAccess.close(store) } }
        let out = global.output
        switch action {
        case .status:
            let on = try await StoreAccess.run { () async throws(StoreError) in try await store.testMode() }
            if global.json { out.emit(.object([("testMode", .bool(on))])) } else { out.line("test mode is \(on ? "on" : "off")") }
        case .on, .off:
            let on = action == .on
            let old = try await StoreAccess.run { () async throws(StoreError) in try await store.setTestMode(on, actor: actor.resolved, at: Date()) }
            if global.json {
                out.emit(.object([("testMode", .bool(on)), ("previous", .bool(old)), ("changed", .bool(old != on))]))
            } else {
                out.line(old == on ? "test mode is already \(on ? "on" : "off")" : "test mode \(old ? "on" : "off") → \(on ? "on" : "off")")
            }
        }
    }
}

enum ChannelRender {
    static func json(_ s: ChannelStatus, extra: [(String, JSONValue)] = []) -> JSONValue {
        .object(
            [
                ("id", .string(s.id.rawValue)), ("setting", .string(s.setting.rawValue)),
                ("callsAllowed", .bool(s.callsAllowed)), ("adminCallsAllowed", .bool(s.adminCallsAllowed)),
                ("updatedAt", .date(s.updatedAt)), ("updatedBy", .string(s.updatedBy)),
            ] + extra)
    }
}
