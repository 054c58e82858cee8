import Foundation

/// Mattermost's rtcd: `rtcd/config.toml` (rtcd's own keys) and the same settings as `RTCD_*`
/// environment variables (`rtcd/rtcd.env`, for Docker, systemd `EnvironmentFile=` or Helm).
enum RTCDGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let toml = """
            # rtcd configuration for \(i.domain). \(Render.header).
            # Install as /opt/rtcd/bin/config/config.toml (Docker image) or pass with: rtcd -config PATH
            # Holds the TURN secret and the admin key: keep it mode 0600.

            [api]
            # API and WebSocket for the chat servers only (the firewall limits it to them).
            http.listen_address = \(Render.toml(":\(i.apiPort)"))
            http.tls.enable = false
            # The chat servers register themselves; safe because only they reach this port.
            security.allow_self_registration = true
            security.enable_admin = true
            # rtcd's own admin key (not callsctl's or calls-offloader's).
            security.admin_secret_key = \(Render.toml(i.rtcdAdminKey))
            security.session_cache.expiration_minutes = 1440

            [rtc]
            ice_address_udp = ""
            ice_port_udp = \(i.rtcPort)
            ice_address_tcp = ""
            ice_port_tcp = \(i.rtcPort)
            \(overrideComment(i))
            ice_host_override = \(Render.toml(i.sharedOverride ?? ""))
            # STUN only: with ice_host_override empty rtcd asks it for its public address at start. Clients get
            # TURN from the Calls plugin; a TURN URL here would make rtcd relay every session through TURN too.
            ice_servers = [\(Render.toml(i.stunURL))]
            # TURN credentials for clients, made with this secret (coturn static-auth-secret).
            turn.static_auth_secret = \(Render.toml(i.turnSecret))
            turn.credentials_expiration_minutes = \(i.turnCredentialMinutes)

            [store]
            # The chat servers that registered themselves. Must be writable; in the rtcd container image mount a
            # volume here (a persistent one keeps the registrations across restarts; without one the chat servers
            # register again after a restart).
            data_source = "/var/lib/rtcd/db"

            [logger]
            enable_console = true
            console_json = false
            console_level = "INFO"
            enable_file = false

            """
        let env = """
            # rtcd settings as environment variables (they override config.toml). \(Render.header).
            # Holds the TURN secret and the admin key: keep it mode 0600.
            RTCD_API_HTTP_LISTENADDRESS=:\(i.apiPort)
            RTCD_API_SECURITY_ALLOWSELFREGISTRATION=true
            RTCD_API_SECURITY_ENABLEADMIN=true
            RTCD_API_SECURITY_ADMINSECRETKEY=\(i.rtcdAdminKey)
            RTCD_RTC_ICEPORTUDP=\(i.rtcPort)
            RTCD_RTC_ICEPORTTCP=\(i.rtcPort)
            \(i.sharedOverride.map { "RTCD_RTC_ICEHOSTOVERRIDE=\($0)" } ?? "# RTCD_RTC_ICEHOSTOVERRIDE is left out: each of the \(i.mediaNodes) media nodes learns its address by STUN.")
            RTCD_RTC_ICESERVERS=\(Render.stunOnlyJSON(i))
            RTCD_RTC_TURNCONFIG_STATICAUTHSECRET=\(i.turnSecret)
            RTCD_RTC_TURNCONFIG_CREDENTIALSEXPIRATIONMINUTES=\(i.turnCredentialMinutes)
            RTCD_STORE_DATASOURCE=/var/lib/rtcd/db
            # As in config.toml (rtcd's own default is true: a log file inside the container).
            RTCD_LOGGER_ENABLEFILE=false

            """
        return [
            GeneratedFile(path: "rtcd/config.toml", contents: toml, mode: 0o600, description: "rtcd config; /opt/rtcd/bin/config/config.toml or rtcd -config PATH"),
            GeneratedFile(path: "rtcd/rtcd.env", contents: env, mode: 0o600, description: "the same as RTCD_* environment variables (docker --env-file, systemd EnvironmentFile=)"),
        ]
    }

    static func overrideComment(_ i: DeploymentInputs) -> String {
        i.sharedOverride == nil
            ? "# Empty: each of the \(i.mediaNodes) media nodes learns its own public address from the STUN server below."
            : "# Advertised in ICE candidates instead of the local address."
    }

    /// The env vars as (name, value), for the Helm values; `override` is the address every pod advertises (nil:
    /// each pod learns its node's address by STUN).
    static func environment(_ i: DeploymentInputs, override: String?) -> [(String, String)] {
        var env = [
            ("RTCD_API_HTTP_LISTENADDRESS", ":\(i.apiPort)"),
            ("RTCD_API_SECURITY_ALLOWSELFREGISTRATION", "true"),
            ("RTCD_RTC_ICEPORTUDP", "\(i.rtcPort)"),
            ("RTCD_RTC_ICEPORTTCP", "\(i.rtcPort)"),
        ]
        if let override { env.append(("RTCD_RTC_ICEHOSTOVERRIDE", override)) }
        env += [
            ("RTCD_RTC_ICESERVERS", Render.stunOnlyJSON(i)),
            ("RTCD_RTC_TURNCONFIG_STATICAUTHSECRET", i.turnSecret),
            ("RTCD_RTC_TURNCONFIG_CREDENTIALSEXPIRATIONMINUTES", "\(i.turnCredentialMinutes)"),
            ("RTCD_STORE_DATASOURCE", "/var/lib/rtcd/db"),
            ("RTCD_LOGGER_ENABLEFILE", "false"),
        ]
        return env
    }
}
