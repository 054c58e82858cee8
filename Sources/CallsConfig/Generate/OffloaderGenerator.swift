import Foundation

/// calls-offloader (recording and transcription jobs): its `config.toml`, serving the chat server.
enum OffloaderGenerator {
    static let port = 4545

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let site = i.mattermostURL ?? "https://chat.example.com"
        let text = """
            # calls-offloader for the Mattermost server \(site). \(Render.header).
            # Install as config/config.toml next to the calls-offloader binary (or pass -config PATH).
            # The chat server reaches it on port 4545 (the Calls plugin's Job Service URL, \(i.jobServiceURL)
            # in the bundle's plugin settings); its recording jobs open \(site) over HTTPS (outbound 443) and join
            # calls on the media server \(i.domain) port \(i.rtcPort) UDP (TCP fallback).

            [api]
            http.listen_address = ":4545"
            http.tls.enable = false
            # The chat server registers itself; only it may reach port 4545.
            security.allow_self_registration = true
            security.enable_admin = true
            # calls-offloader's own admin key (not rtcd's or callsctl's).
            security.admin_secret_key = \(Render.toml(i.offloaderAdminKey))
            security.session_cache.expiration_minutes = 1440

            [store]
            data_source = "/var/lib/calls-offloader/db"

            [jobs]
            api_type = "docker"
            max_concurrent_jobs = 2
            failed_jobs_retention_time = "7d"
            image_registry = "mattermost"

            [logger]
            enable_console = true
            console_json = false
            console_level = "INFO"
            enable_file = false

            """
        return [GeneratedFile(path: "calls-offloader/config.toml", contents: text, mode: 0o600, description: "calls-offloader config; config/config.toml beside its binary")]
    }
}
