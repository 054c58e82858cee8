import Foundation

/// coturn's `turnserver.conf`: TURN REST credentials (`use-auth-secret`) with the deployment's secret,
/// its realm, listening and relay ports, the external IP, and relaying to private networks denied.
enum CoturnGenerator {
    /// Peer ranges a relay must never reach (RFC 1918, loopback, link-local, CGNAT, ...): without these a
    /// TURN user could reach the TURN host's own network.
    static let deniedPeerRanges = [
        "0.0.0.0-0.255.255.255", "10.0.0.0-10.255.255.255", "100.64.0.0-100.127.255.255", "127.0.0.0-127.255.255.255",
        "169.254.0.0-169.254.255.255", "172.16.0.0-172.31.255.255", "192.0.0.0-192.0.0.255",
        "192.168.0.0-192.168.255.255", "198.18.0.0-198.19.255.255", "240.0.0.0-255.255.255.255",
        "::1", "64:ff9b::-64:ff9b::ffff:ffff", "::ffff:0.0.0.0-::ffff:255.255.255.255", "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        // 6to4 relay anycast, TEREDO, discard-only, benchmarking/ORCHID/documentation blocks, 6to4.
        "192.88.99.0-192.88.99.255", "100::-100::ffff:ffff:ffff:ffff", "2001::-2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]

    /// TLS 1.0/1.1 off: coturn before 4.7 needs the options; 4.7 removed them (it has them off already and logs
    /// "Bad configuration format" for them).
    static func tlsLines(_ i: DeploymentInputs) -> String {
        i.coturnVersion < .withoutOldTLSOptions
            ? "# TLS 1.0 and 1.1 off (coturn \(i.coturnVersion); 4.7 and later have them off and no longer know these options).\nno-tlsv1\nno-tlsv1_1"
            : "# coturn \(i.coturnVersion) has TLS 1.0 and 1.1 off by default (no-tlsv1/no-tlsv1_1 were removed in 4.7)."
    }

    /// The TURN host's own public address. On the media host it stays reachable through the relay: that is where
    /// the SFU's media port is (UDP only, with no-tcp-relay). On a host of its own it is denied.
    static func ownAddressLines(_ i: DeploymentInputs) -> String {
        i.turnOnMediaHost
            ? "# The host's own public address (\(i.publicIP)) stays allowed: the media server's UDP port \(i.rtcPort) is there.\n# Its TCP services (the API on \(i.apiPort)) are out of reach with no-tcp-relay."
            : "# Deny this TURN host's own public address too (relaying to itself reaches only its own services):\n# denied-peer-ip=THIS-HOST'S-PUBLIC-IP"
    }

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let cert = i.turnOnMediaHost ? i.tlsCert : "/etc/letsencrypt/live/\(i.turnDomain)/fullchain.pem"
        let key = i.turnOnMediaHost ? i.tlsKey : "/etc/letsencrypt/live/\(i.turnDomain)/privkey.pem"
        var text = """
            # coturn for \(i.turnDomain). \(Render.header).
            # Install as /etc/turnserver.conf (Debian: also set TURNSERVER_ENABLED=1 in /etc/default/coturn).
            # Holds the TURN secret: keep it mode 0600, readable by the turnserver user only.

            listening-port=\(i.turnPort)
            tls-listening-port=\(i.turnsPort)
            min-port=\(i.relayPorts.lowerBound)
            max-port=\(i.relayPorts.upperBound)

            """
        if i.turnOnMediaHost {
            text += "# The TURN host's public address (the media server's).\nexternal-ip=\(i.publicIP)\n"
        } else {
            text += "# The TURN host's public address, if it is behind NAT: external-ip=PUBLIC[/PRIVATE]\n"
        }
        text += """

            # TURN REST credentials (user "expiry:name", password base64(HMAC-SHA1(secret, user))): the same
            # secret as the Calls plugin, rtcd and callsctl.
            use-auth-secret
            static-auth-secret=\(i.turnSecret)
            realm=\(i.turnDomain)
            fingerprint

            cert=\(cert)
            pkey=\(key)
            \(tlsLines(i))

            # Relay UDP only: clients need nothing else (WebRTC media over TURN is UDP between coturn and the
            # media server). With TCP relaying a TURN user could open connections to any TCP service coturn
            # reaches, the media host's API port \(i.apiPort) included.
            no-tcp-relay
            # Relay only to public addresses: never to the TURN host's own or other private networks.
            no-multicast-peers
            \(ownAddressLines(i))

            """
        for range in deniedPeerRanges { text += "denied-peer-ip=\(range)\n" }
        text += """

            no-cli
            no-software-attribute
            simple-log
            log-file=stdout

            """
        return [GeneratedFile(path: "coturn/turnserver.conf", contents: text, mode: 0o600, description: "coturn config; install as /etc/turnserver.conf on the TURN host")]
    }
}
