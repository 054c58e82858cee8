import ArgumentParser
import CallsStore
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the embedded media server (SFU) on embedded defaults or the given settings.",
        discussion: """
            Listens for media on UDP and TCP 8443 (ICE-lite, DTLS-SRTP, RTP/RTCP) and serves the \
            WebSocket signaling, admin API and metrics on TCP 8045. With no flags it uses embedded \
            defaults: settings in calls.db and generated secrets in the data directory.

            Every flag has an environment twin: CALLSCTL_RTC_LISTEN, CALLSCTL_API_LISTEN, \
            CALLSCTL_ICE_HOST_OVERRIDE, CALLSCTL_STUN_SERVERS (comma-separated).

            Examples:
              callsctl serve
              callsctl serve --ice-host-override calls.example.com --stun-server stun.example.com
              callsctl serve --rtc-listen 0.0.0.0:8443 --api-listen 127.0.0.1:8045
            """)
    @OptionGroup(title: "Global options") var global: GlobalOptions

    @Option(help: ArgumentHelp("Media address, UDP and TCP.", valueName: "host:port"))
    var rtcListen: String = "0.0.0.0:8443"

    @Option(help: ArgumentHelp("HTTP/WebSocket API address.", valueName: "host:port"))
    var apiListen: String = "0.0.0.0:8045"

    @Option(help: ArgumentHelp("IP or hostname advertised in ICE candidates (resolved at start).", valueName: "host"))
    var iceHostOverride: String?

    @Option(
        name: .customLong("stun-server"),
        help: ArgumentHelp("STUN server used once at start to learn the public IP (repeatable).", valueName: "host[:port]"))
    var stunServers: [String] = []

    func run() async throws {
        // Prepare the data directory now, so the first run leaves a usable store behind.
        let store = try StoreAccess.open(global)
        let out = global.output
        out.note("data directory: \(global.resolvedDataDir) (settings in \(store.path))")
        throw NotYet.fail("serve", issue: "the media transport (ICE-lite, DTLS-SRTP on 8443; API on 8045)")
    }
}
