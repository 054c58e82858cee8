import ArgumentParser

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write, check and show configs for a whole calls deployment.",
        subcommands: [ConfigGenerate.self, ConfigValidate.self, ConfigShow.self])
}

struct ConfigValidate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check config files and report every error with file, line and fix.",
        discussion: "Example: callsctl config validate /etc/callsctl/callsctl.toml")
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("Config files.", valueName: "file"), completion: .file()) var files: [String]
    @Flag(help: "Exit 1 on warnings.") var strict = false
    @Flag(help: "Also check that hostnames resolve.") var resolve = false

    func run() async throws { throw NotYet.fail("config validate", issue: "the configuration issue") }
}

struct ConfigShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show the resolved config and where each value came from.",
        discussion: "Example: callsctl config show --effective --json")
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Flag(help: "Include defaults, not only values that were set.") var effective = false

    func run() async throws { throw NotYet.fail("config show", issue: "the configuration issue") }
}
