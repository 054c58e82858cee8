import ArgumentParser
import CallsServer
import CallsStore
import Foundation

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create join tokens signed with the server's secret.",
        subcommands: [TokenCreate.self])
}

struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Print an HS256 token that lets USER join calls in CHANNEL.",
        discussion: """
            The token is a JWT (HS256) with the claims channel, user, role, iat and exp, signed with \
            the secret in token-secret in the data directory (created with mode 0600 on first use), \
            or with --token-secret-file ($CALLSCTL_TOKEN_SECRET_FILE). `callsctl serve` must use \
            the same secret to accept it.

            Example:
              callsctl token create --channel 4xp9fdt3pbdp7nrw7xjmrd8kkc --user alice --ttl 3600
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions
    @Option(help: ArgumentHelp("Channel id.", valueName: "channel-id")) var channel: String
    @Option(help: ArgumentHelp("User name.", valueName: "name")) var user: String
    @Option(help: ArgumentHelp("Role: user or admin.", valueName: "role")) var role: String = "user"
    @Option(help: ArgumentHelp("Lifetime in seconds.", valueName: "seconds")) var ttl: Int = 3600
    @Option(
        help: ArgumentHelp(
            "File with the signing secret (base64). Default: token-secret in the data directory.", valueName: "file"),
        completion: .file())
    var tokenSecretFile: String?

    static let maximumTTL = 366 * 24 * 3600

    func validate() throws {
        do { _ = try ChannelID(validating: channel) } catch { throw ValidationError(error.description) }
        if user.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--user needs a name, not an empty string.")
        }
        if let (position, scalar) = UntrustedText.firstControl(in: user) {
            throw ValidationError(
                "--user has the control character \(UntrustedText.describe(scalar)) at position \(position); user names go into logs and must be plain text without newlines, tabs, NUL or escape sequences. Give the name as plain text.")
        }
        if JoinTokenClaims.Role(rawValue: role) == nil {
            throw ValidationError("--role \"\(role)\" is not a role; use user or admin.")
        }
        if ttl < 1 || ttl > Self.maximumTTL {
            throw ValidationError("--ttl \(ttl) is out of range; give 1 to \(Self.maximumTTL) seconds (366 days).")
        }
    }

    func run() async throws {
        let out = global.output
        let env = ProcessInfo.processInfo.environment
        let file = tokenSecretFile ?? env["CALLSCTL_TOKEN_SECRET_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = try TokenSecretAccess.load(file: file, global: global)
        for warning in secret.warnings { out.warning(warning) }
        if secret.created { out.note("created the token secret \(secret.path) (mode 0600)") }
        let channelID = try ChannelID(validating: channel)
        let claims = JoinTokenClaims(
            channel: channelID, user: user, role: JoinTokenClaims.Role(rawValue: role) ?? .user, ttl: Int64(ttl))
        let token = secret.signer.sign(claims)
        if global.json {
            out.emit(
                .object([
                    ("token", .string(token)), ("expiresAt", .date(claims.expiryDate)),
                    ("channel", .string(channelID.rawValue)), ("user", .string(user)), ("role", .string(role)),
                    ("secretFile", .string(secret.path)),
                ]))
        } else {
            out.line(token)
            out.note("expires \(RFC3339.format(claims.expiryDate)); signed with \(secret.path)")
        }
    }
}
