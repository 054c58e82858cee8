import ArgumentParser

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write, check and show configs for a whole calls deployment.",
        subcommands: [ConfigGenerate.self, ConfigValidate.self, ConfigShow.self])
}

struct ConfigGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Write consistent configs for callsctl, rtcd, coturn, nginx, Kubernetes, systemd, ...",
        discussion: """
            Targets: callsctl, rtcd, mattermost-plugin, coturn, nginx, kubernetes, systemd, firewall, \
            calls-offloader, bundle.

            Example:
              callsctl config generate bundle --domain calls.example.com --public-ip 203.0.113.7 --out ./deploy
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("What to generate.", valueName: "target")) var target: String
    @Option(help: ArgumentHelp("Public DNS name of the media server.", valueName: "name")) var domain: String?
    @Option(help: ArgumentHelp("Public IP of the media server.", valueName: "ip")) var publicIP: String?
    @Option(help: ArgumentHelp("Output folder (bundle).", valueName: "dir"), completion: .directory) var out: String?
    @Flag(help: "Overwrite existing files.") var force = false

    func run() async throws { throw NotYet.fail("config generate", issue: "the configuration issue") }
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
