import Foundation

/// nftables rules opening exactly the deployment's ports: media to everyone, the API only to the chat
/// servers, HTTPS for the proxy, and on the TURN host its listening ports and relay range.
enum FirewallGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let v4 = i.chatServerCIDRs.filter { !$0.contains(":") }
        let v6 = i.chatServerCIDRs.filter { $0.contains(":") }
        var media = """
                    # Media, UDP and TCP, from every client.
                    udp dport \(i.rtcPort) accept comment "media-udp"
                    tcp dport \(i.rtcPort) accept comment "media-tcp"
                    # API (signaling for the chat servers, admin API, metrics): chat servers only.

            """
        if !v4.isEmpty { media += "        ip saddr { \(v4.joined(separator: ", ")) } tcp dport \(i.apiPort) accept comment \"api\"\n" }
        if !v6.isEmpty { media += "        ip6 saddr { \(v6.joined(separator: ", ")) } tcp dport \(i.apiPort) accept comment \"api\"\n" }
        media += "        # calls-offloader (recording jobs), when it runs here: chat servers only.\n"
        if !v4.isEmpty { media += "        ip saddr { \(v4.joined(separator: ", ")) } tcp dport \(OffloaderGenerator.port) accept comment \"offloader\"\n" }
        if !v6.isEmpty { media += "        ip6 saddr { \(v6.joined(separator: ", ")) } tcp dport \(OffloaderGenerator.port) accept comment \"offloader\"\n" }
        media += """
                    # HTTPS reverse proxy (nginx) for the API, and its redirect.
                    tcp dport { 80, 443 } accept comment "https"

            """
        let turn = """
                    # TURN: plain (UDP and TCP) and TLS listeners, and the relay range.
                    udp dport \(i.turnPort) accept comment "turn-udp"
                    tcp dport \(i.turnPort) accept comment "turn-tcp"
                    tcp dport \(i.turnsPort) accept comment "turns"
                    udp dport \(i.relayPorts.lowerBound)-\(i.relayPorts.upperBound) accept comment "turn-relay"

            """
        func table(_ host: String, _ rules: String) -> String {
            """
            #!/usr/sbin/nft -f
            # Firewall of the \(host). \(Render.header).
            # Check with: nft -c -f FILE; load with: nft -f FILE (or include it from /etc/nftables.conf).
            # Everything not listed is dropped; SSH stays open so the host stays reachable. The rule comments
            # name the rules for `callsctl config validate --bundle`.

            table inet callsctl
            delete table inet callsctl

            table inet callsctl {
                chain input {
                    type filter hook input priority filter; policy drop;
                    ct state established,related accept
                    ct state invalid drop
                    iifname "lo" accept
                    meta l4proto { icmp, ipv6-icmp } accept
                    tcp dport 22 accept
            \(rules)    }
            }

            """
        }
        if i.turnOnMediaHost {
            return [GeneratedFile(path: "firewall/callsctl.nft", contents: table("media and TURN host \(i.domain)", media + turn),
                                  description: "nftables rules for the media + TURN host")]
        }
        return [
            GeneratedFile(path: "firewall/media-host.nft", contents: table("media host \(i.domain)", media), description: "nftables rules for the media host"),
            GeneratedFile(path: "firewall/turn-host.nft", contents: table("TURN host \(i.turnDomain)", turn), description: "nftables rules for the TURN host"),
        ]
    }
}
