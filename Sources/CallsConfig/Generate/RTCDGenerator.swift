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
            security.admin_secret_key = \(Render.toml(i.adminKey))
            security.session_cache.expiration_minutes = 1440

            [rtc]
            ice_address_udp = ""
            ice_port_udp = \(i.rtcPort)
            ice_address_tcp = ""
            ice_port_tcp = \(i.rtcPort)
            # Advertised in ICE candidates instead of the local address.
            ice_host_override = \(Render.toml(i.iceHostOverride))
            ice_servers = [\(Render.toml(i.stunURL)), { urls = \(Render.tomlArray(i.turnURLs)) }]
            # TURN entries are used only with this secret (coturn static-auth-secret).
            turn.static_auth_secret = \(Render.toml(i.turnSecret))
            turn.credentials_expiration_minutes = \(i.turnCredentialMinutes)

            [store]
            # Must persist across restarts (registered chat servers).
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
            RTCD_API_SECURITY_ADMINSECRETKEY=\(i.adminKey)
            RTCD_RTC_ICEPORTUDP=\(i.rtcPort)
            RTCD_RTC_ICEPORTTCP=\(i.rtcPort)
            RTCD_RTC_ICEHOSTOVERRIDE=\(i.iceHostOverride)
            RTCD_RTC_ICESERVERS=\(Render.iceServersJSON(i))
            RTCD_RTC_TURNCONFIG_STATICAUTHSECRET=\(i.turnSecret)
            RTCD_RTC_TURNCONFIG_CREDENTIALSEXPIRATIONMINUTES=\(i.turnCredentialMinutes)
            RTCD_STORE_DATASOURCE=/var/lib/rtcd/db

            """
        return [
            GeneratedFile(path: "rtcd/config.toml", contents: toml, mode: 0o600, description: "rtcd config; /opt/rtcd/bin/config/config.toml or rtcd -config PATH"),
            GeneratedFile(path: "rtcd/rtcd.env", contents: env, mode: 0o600, description: "the same as RTCD_* environment variables (docker --env-file, systemd EnvironmentFile=)"),
        ]
    }

    /// The env vars as (name, value), for the Helm values.
    static func environment(_ i: DeploymentInputs) -> [(String, String)] {
        [
            ("RTCD_API_HTTP_LISTENADDRESS", ":\(i.apiPort)"),
            ("RTCD_API_SECURITY_ALLOWSELFREGISTRATION", "true"),
            ("RTCD_RTC_ICEPORTUDP", "\(i.rtcPort)"),
            ("RTCD_RTC_ICEPORTTCP", "\(i.rtcPort)"),
            ("RTCD_RTC_ICEHOSTOVERRIDE", i.iceHostOverride),
            ("RTCD_RTC_ICESERVERS", Render.iceServersJSON(i)),
            ("RTCD_RTC_TURNCONFIG_STATICAUTHSECRET", i.turnSecret),
            ("RTCD_RTC_TURNCONFIG_CREDENTIALSEXPIRATIONMINUTES", "\(i.turnCredentialMinutes)"),
        ]
    }
}
