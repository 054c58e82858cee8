import ArgumentParser

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe STUN and TURN servers and NAT behaviour, with verdicts and exit codes.",
        subcommands: [ProbeSTUN.self, ProbeTURN.self, ProbeNAT.self])
}

struct ProbeSTUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stun", abstract: "Send STUN Binding requests and report the mapped address and RTT.",
        discussion: """
            Exit 0 when the server answered, 2 when it did not within the budget or the port is closed.

            Examples:
              callsctl probe stun stun.example.com
              callsctl probe stun stun:stun.example.com:3478 --transport tcp --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("Server as host[:port] or a stun: URI.", valueName: "server")) var server: String
    @Option(help: "udp, tcp or tls.") var transport: String = "udp"
    @Option(help: "Number of Binding requests.") var count: Int = 3
    @Option(help: ArgumentHelp("Overall time budget in seconds.", valueName: "seconds")) var timeout: Double = 5
    @Option(help: ArgumentHelp("Initial retransmission timeout in milliseconds.", valueName: "ms")) var rto: Int = 250
    @Option(help: "Retransmissions per request.") var retries: Int = 3

    func run() async throws { throw NotYet.fail("probe stun", issue: "the probes issue") }
}

struct ProbeTURN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turn", abstract: "Allocate on a TURN server and prove a relayed round trip.",
        discussion: """
            Examples:
              callsctl probe turn turn:turn.example.com:3478 --secret-file /etc/turn-secret
              callsctl probe turn turns:turn.example.com:5349 --user alice --password-file pw.txt --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("A turn: or turns: URI.", valueName: "uri")) var uri: String
    @Option(help: "Long-term credential user name.") var user: String?
    @Option(help: ArgumentHelp("File holding the password.", valueName: "file"), completion: .file()) var passwordFile: String?
    @Option(help: ArgumentHelp("File holding the TURN REST shared secret.", valueName: "file"), completion: .file())
    var secretFile: String?
    @Option(help: "User part of the TURN REST user name.") var restUser: String = "callsctl"
    @Option(help: ArgumentHelp("TURN REST credential lifetime in seconds.", valueName: "seconds")) var ttl: Int = 3600
    @Option(help: "Relayed round-trip packets.") var count: Int = 5
    @Option(help: ArgumentHelp("Overall time budget in seconds.", valueName: "seconds")) var timeout: Double = 10

    func run() async throws { throw NotYet.fail("probe turn", issue: "the probes issue") }
}

struct ProbeNAT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nat", abstract: "Classify NAT mapping and filtering behaviour (RFC 5780, RFC 4787).",
        discussion: """
            Examples:
              callsctl probe nat stun.example.com
              callsctl probe nat --servers stun1.example.com,stun2.example.com --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Argument(help: ArgumentHelp("An RFC 5780 STUN server.", valueName: "server")) var server: String?
    @Option(help: ArgumentHelp("Two servers to compare mappings (comma-separated).", valueName: "a,b")) var servers: String?
    @Flag(help: "Also test hairpinning.") var hairpin = false
    @Option(help: ArgumentHelp("Overall time budget in seconds.", valueName: "seconds")) var timeout: Double = 10

    func run() async throws { throw NotYet.fail("probe nat", issue: "the probes issue") }
}

struct Ports: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the deployment's ports locally or from outside.",
        subcommands: [PortsCheck.self])
}

struct PortsCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Tell open, closed and filtered ports apart, and how it was decided.",
        discussion: """
            Defaults are the deployment's: 8443 udp+tcp, 8045 tcp, 3478 udp.

            Examples:
              callsctl ports check --local
              callsctl ports check --host calls.example.com --json
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Flag(help: "Check that this machine can bind the ports.") var local = false
    @Option(help: ArgumentHelp("Check the ports of this host from here.", valueName: "host")) var host: String?
    @Option(help: ArgumentHelp("UDP ports (comma-separated).", valueName: "ports")) var udp: String?
    @Option(help: ArgumentHelp("TCP ports (comma-separated).", valueName: "ports")) var tcp: String?
    @Option(help: ArgumentHelp("Time budget per port in seconds.", valueName: "seconds")) var timeout: Double = 2

    func run() async throws { throw NotYet.fail("ports check", issue: "the probes issue") }
}
