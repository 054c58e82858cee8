import ArgumentParser

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
