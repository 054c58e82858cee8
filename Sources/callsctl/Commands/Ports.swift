import ArgumentParser
import Foundation
import Probes

struct Ports: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the deployment's ports locally or from outside.",
        subcommands: [PortsCheck.self])
}

struct PortsCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Tell open, closed and filtered ports apart, and how it was decided.",
        discussion: """
            --local: can this machine bind the ports, and who holds them if not (exit 2 if any is taken).
            --host H: per port open, closed, filtered or open|filtered: TCP by connecting (accepted = \
            open, RST = closed, silence = filtered); UDP with a STUN Binding (a reply = open, ICMP port \
            unreachable = closed, silence = open|filtered, because a media server may stay silent).
            Exit 0 when all are open (or free), 2 when any is closed, filtered or taken, 3 when the \
            rest is open|filtered and so undecided.

            Defaults are the deployment's: 8443 udp+tcp, 8045 tcp, 3478 udp.

            Examples:
              callsctl ports check --local
              callsctl ports check --host calls.example.com --json
              callsctl ports check --host 203.0.113.7 --udp 8443,3478 --tcp 8443,8045,5349
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Flag(help: "Check that this machine can bind the ports.") var local = false
    @Option(help: ArgumentHelp("Check the ports of this host from here.", valueName: "host")) var host: String?
    @Option(help: ArgumentHelp("UDP ports (comma-separated).", valueName: "ports")) var udp: String?
    @Option(help: ArgumentHelp("TCP ports (comma-separated).", valueName: "ports")) var tcp: String?
    @Option(help: ArgumentHelp("Address to bind for --local.", valueName: "ip")) var bindAddress: String = "0.0.0.0"
    @Option(help: ArgumentHelp("Time budget per port in seconds.", valueName: "seconds")) var timeout: Double = 2

    func validate() throws {
        if local == (host != nil) { throw ValidationError("choose one: --local, or --host HOST.") }
        _ = try ports()
        guard timeout > 0, timeout <= 60 else { throw ValidationError("--timeout must be between 0 and 60 seconds per port.") }
    }

    func ports() throws -> [Probes.PortsCheck.Port] {
        func parse(_ text: String?, _ proto: Probes.PortsCheck.Proto, flag: String) throws -> [Probes.PortsCheck.Port] {
            guard let text else { return [] }
            return try text.split(separator: ",").map { part in
                guard let n = UInt16(part.trimmingCharacters(in: .whitespaces)), n > 0 else {
                    throw ValidationError("\(flag): \"\(part)\" is not a port number from 1 to 65535.")
                }
                return Probes.PortsCheck.Port(proto, n)
            }
        }
        let chosen = try parse(udp, .udp, flag: "--udp") + parse(tcp, .tcp, flag: "--tcp")
        return chosen.isEmpty ? Probes.PortsCheck.defaultPorts : chosen
    }

    func run() async throws {
        let out = global.output
        let list = try ports()
        let results: [Probes.PortsCheck.Result]
        if local {
            results = Probes.PortsCheck.local(list, bindAddress: bindAddress)
        } else {
            out.note("checking \(list.count) port\(list.count == 1 ? "" : "s") of \(host!) (up to \(timeout) s each)")
            do {
                results = try Probes.PortsCheck.remote(host: host!, ports: list, timeout: .milliseconds(Int64(timeout * 1000)))
            } catch {
                throw CLIError("\(error.description)", exitCode: .undecided)
            }
        }
        let bad: Set<Probes.PortsCheck.State> = [.closed, .filtered, .inUse, .denied, .error]
        let exit: CallsExitCode =
            results.contains { bad.contains($0.state) }
            ? .negative : (results.contains { $0.state == .openOrFiltered } ? .undecided : .success)
        if global.json {
            out.emit(
                .object([
                    ("schema", .string("callsctl.ports/v1")), ("mode", .string(local ? "local" : "remote")),
                    ("host", .string(host ?? bindAddress)), ("exitCode", .int(Int64(exit.rawValue))),
                    ("ports", .array(results.map { r in
                        .object([
                            ("port", .int(Int64(r.port.number))), ("protocol", .string(r.port.proto.rawValue)),
                            ("role", .string(r.port.role)), ("state", .string(r.state.rawValue)),
                            ("method", .string(r.method)), ("detail", .string(r.detail)), ("holder", .string(r.holder)),
                            ("durationMs", ms(r.duration)),
                        ])
                    })),
                ]))
        } else {
            out.line(out.styled("PORT".padding(toLength: 11, withPad: " ", startingAt: 0) + "STATE".padding(toLength: 15, withPad: " ", startingAt: 0) + "HOW", .bold))
            for r in results {
                let state = r.state.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)
                let colored: String
                switch r.state {
                case .open, .free: colored = out.styled(state, .green)
                case .openOrFiltered: colored = out.styled(state, .yellow)
                default: colored = out.styled(state, .red)
                }
                out.line(r.port.label.padding(toLength: 11, withPad: " ", startingAt: 0) + colored + "\(r.method): \(r.detail)"
                    + (r.port.role.isEmpty ? "" : "  [\(r.port.role)]"))
            }
        }
        if exit != .success { throw ExitCode(exit.rawValue) }
    }
}
