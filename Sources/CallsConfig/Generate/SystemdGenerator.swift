import Foundation

/// systemd: a hardened unit running `callsctl serve` as a dedicated user with a state directory, and
/// the UDP buffer sysctls the media server wants (rtcd's docs: 16 MiB).
enum SystemdGenerator {
    /// `callsctl serve` arguments shared by the unit and the Kubernetes manifests.
    /// `override`: the address to advertise; nil = learn it by STUN at start (several nodes share the arguments).
    static func serveArguments(_ i: DeploymentInputs, override: String?, dataDir: String, secretsDir: String) -> [String] {
        var args = [
            "serve", "--data-dir", dataDir,
            "--rtc-listen", "0.0.0.0:\(i.rtcPort)", "--api-listen", "0.0.0.0:\(i.apiPort)",
        ]
        if let override { args += ["--ice-host-override", override] } else { args += ["--stun-server", i.discoveryStunServer] }
        args += [
            "--admin-key-file", "\(secretsDir)/admin-key", "--token-secret-file", "\(secretsDir)/token-secret",
            "--stun-url", i.stunURL,
        ]
        for url in i.turnURLs { args += ["--turn-url", url] }
        args += ["--turn-secret-file", "\(secretsDir)/turn-secret", "--turn-ttl", "\(i.turnCredentialMinutes * 60)"]
        if let max = i.maxParticipants { args += ["--max-participants", "\(max)"] }
        return args
    }

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        var exec = "ExecStart=\(i.callsctlPath) serve --config \(Paths.config) --data-dir \(Paths.dataDir)"
        var install = """
            #   install -m 0600 -o callsctl -g callsctl secrets/turn-secret secrets/admin-key secrets/token-secret \(Paths.etc)/
            #   install -m 0644 callsctl/callsctl.toml \(Paths.config)
            """
        if i.isCluster {
            // The URL may hold the database password: it comes from a file only root and the service read, not the
            // command line (visible to every user) nor callsctl.toml.
            exec += """

                # Cluster node: \(CallsctlGenerator.clusterEnvironmentVariable) (the PostgreSQL URL the nodes share) from a file of mode 0600.
                EnvironmentFile=\(CallsctlGenerator.clusterEnvironmentFile)
                """
            install = """
                #   install -m 0600 -o callsctl -g callsctl secrets/turn-secret secrets/admin-key secrets/token-secret secrets/cluster-db.env \(Paths.etc)/
                #   install -m 0644 callsctl/NODE/callsctl.toml \(Paths.config)   (NODE: this host's node, e.g. \(i.clusterNodes.first?.id ?? ""))
                """
        }
        // Only ports below 1024 need a capability; otherwise the service keeps none.
        let capabilities = min(i.rtcPort, i.apiPort) < 1024
            ? "# Ports below 1024 need this capability.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE"
            : "CapabilityBoundingSet="
        let unit = """
            # callsctl media server for \(i.domain). \(Render.header).
            # Install as /etc/systemd/system/callsctl.service. Before the first start:
            #   useradd --system --home-dir \(Paths.dataDir) --shell /usr/sbin/nologin callsctl
            #   install -d -m 0750 -g callsctl \(Paths.etc)
            \(install)
            # then: systemctl daemon-reload && systemctl enable --now callsctl
            [Unit]
            Description=callsctl media server (WebRTC SFU) for \(i.domain)
            Documentation=man:callsctl-serve(1)
            Wants=network-online.target
            After=network-online.target

            [Service]
            # serve tells systemd when its ports are bound (READY=1), pings the watchdog from the media thread, and
            # says when it drains (STOPPING=1): a media thread that stops answering gets the service restarted.
            Type=notify
            NotifyAccess=main
            WatchdogSec=30s
            \(exec)
            # SIGHUP reloads callsctl.toml: TURN secret and URLs, max participants, log level and drain timeout apply
            # to the next joins; other changes are logged as needing a restart. Running calls are not touched.
            ExecReload=/bin/kill -HUP $MAINPID
            # SIGTERM drains: running calls may go on for the drain timeout (30 s) before exit.
            KillSignal=SIGTERM
            TimeoutStopSec=60
            Restart=on-failure
            RestartSec=2s
            User=callsctl
            Group=callsctl
            StateDirectory=callsctl
            StateDirectoryMode=0700
            LimitNOFILE=65536
            \(capabilities)
            NoNewPrivileges=yes
            ProtectSystem=strict
            ProtectHome=yes
            PrivateTmp=yes
            PrivateDevices=yes
            ProtectKernelTunables=yes
            ProtectKernelModules=yes
            ProtectKernelLogs=yes
            ProtectControlGroups=yes
            ProtectClock=yes
            ProtectHostname=yes
            RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
            RestrictNamespaces=yes
            RestrictRealtime=yes
            RestrictSUIDSGID=yes
            LockPersonality=yes
            MemoryDenyWriteExecute=yes
            SystemCallArchitectures=native
            SystemCallFilter=@system-service
            UMask=0077

            [Install]
            WantedBy=multi-user.target

            """
        let sysctl = """
            # UDP socket buffers for the media server (16 MiB, as rtcd's docs advise). \(Render.header).
            # Install as /etc/sysctl.d/90-callsctl.conf, then: sysctl --system
            net.core.rmem_max = 16777216
            net.core.wmem_max = 16777216
            net.core.optmem_max = 16777216

            """
        return [
            GeneratedFile(path: "systemd/callsctl.service", contents: unit, description: "systemd unit; /etc/systemd/system/callsctl.service"),
            GeneratedFile(path: "systemd/90-callsctl.conf", contents: sysctl, description: "UDP buffer sysctls; /etc/sysctl.d/90-callsctl.conf"),
        ]
    }
}
