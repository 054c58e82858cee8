import ArgumentParser
import CallsMedia

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print callsctl's version and the system libraries it runs on.",
        discussion: "Example: callsctl version --json")
    @OptionGroup(title: "Global options") var global: GlobalOptions

    func run() async throws {
        let out = global.output
        if global.json {
            out.emit(
                .object([
                    ("version", .string(BuildInfo.version)), ("openssl", .string(MediaLibraries.openSSLVersion)),
                    ("srtp", .string(MediaLibraries.srtpVersion)),
                ]))
        } else {
            out.line("callsctl \(BuildInfo.version)")
            out.info("OpenSSL  \(MediaLibraries.openSSLVersion)")
            out.info("libsrtp  \(MediaLibraries.srtpVersion)")
        }
    }
}
