import ArgumentParser
import Foundation

/// The root of the command tree.
@main
struct CallsCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callsctl",
        abstract: "Run, check and configure self-hosted WebRTC calls (Mattermost Calls style).",
        discussion: """
            callsctl embeds an SFU media server (ICE-lite, DTLS-SRTP, RTP forwarding on UDP/TCP 8443, \
            API on 8045), probes STUN/TURN servers and ports, writes configs for a whole deployment \
            and keeps per-channel call settings.

            Exit codes: 0 success; 2 a negative answer or failed check; 3 could not decide or not \
            available; 64 usage error; 1 unexpected internal error.

            Examples:
              callsctl serve
              callsctl channel enable 4xp9fdt3pbdp7nrw7xjmrd8kkc
              callsctl channel list --disabled --json
              callsctl calls list
              callsctl probe stun stun.example.com:3478
              callsctl ports check --host calls.example.com
            """,
        version: BuildInfo.version,
        subcommands: [
            Serve.self, Doctor.self, Probe.self, Ports.self, Config.self, Channel.self, Calls.self, Token.self,
            Loadtest.self, Version.self, GenerateDocs.self,
        ]
    )

    /// Runs the command tree with callsctl's exit codes: ``CLIError`` carries its own code, other
    /// failures are internal errors (1), and ArgumentParser's usage errors stay 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            Terminal.standardError.write(error.rendered(color: Terminal.standardError.useColor) + "\n")
            Foundation.exit(error.exitCode.rawValue)
        } catch let error as InvalidArgumentError {
            exit(withError: ValidationError(error.message))
        } catch {
            exit(withError: error)
        }
    }
}

/// Thrown from `run()` when an argument is bad in a way ArgumentParser could not see (exit 64).
struct InvalidArgumentError: Error {
    let message: String
}
