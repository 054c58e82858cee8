import Foundation

/// The Mattermost Calls plugin settings, as the `PluginSettings.Plugins["com.mattermost.calls"]` part of
/// the server's config.json (keys lowercased, as the server stores them) and as `mmctl` commands.
enum PluginGenerator {
    static let pluginID = "com.mattermost.calls"

    /// (config.json key, JSON literal, what it is).
    static func settings(_ i: DeploymentInputs) -> [(key: String, json: String, help: String)] {
        [
            ("rtcdserviceurl", Render.json(i.apiURL), "RTCD service URL: the media server's API, reached only from the chat servers"),
            ("icehostoverride", Render.json(i.iceHostOverride), "ICE host override (used by the integrated server only)"),
            ("udpserverport", "\(i.rtcPort)", "RTC server UDP port"),
            ("tcpserverport", "\(i.rtcPort)", "RTC server TCP port"),
            ("iceserversconfigs", Render.json(Render.iceServersJSON(i)), "ICE servers: STUN and credential-less TURN (credentials come from the secret)"),
            ("turnstaticauthsecret", Render.json(i.turnSecret), "TURN static auth secret (coturn static-auth-secret)"),
            ("turncredentialsexpirationminutes", "\(i.turnCredentialMinutes)", "TURN credential lifetime, minutes"),
            ("maxcallparticipants", "\(i.maxParticipants ?? 0)", "participants per call, 0 = unlimited"),
            ("defaultenabled", i.testMode ? "false" : "true", "false = test mode on: only system admins start calls where not enabled"),
        ]
    }

    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let entries = settings(i).map { "        \(Render.json($0.key)): \($0.json)" }.joined(separator: ",\n")
        let json = """
            {
              "PluginSettings": {
                "Plugins": {
                  "\(pluginID)": {
            \(entries)
                  }
                },
                "PluginStates": {
                  "\(pluginID)": {
                    "Enable": true
                  }
                }
              }
            }

            """
        var script = """
            #!/bin/sh
            # Calls plugin settings for \(i.domain) with mmctl. \(Render.header).
            # Holds the TURN secret: keep it mode 0600. Log in first, e.g.:
            #   mmctl auth login \(i.mattermostURL ?? "https://chat.example.com") --name calls --username ADMIN
            # (or run on the chat server with --local). All at once instead:
            #   mmctl config patch plugin-settings.json
            set -e

            """
        for s in settings(i) {
            let value = s.json.hasPrefix("\"") ? Render.shell(unquote(s.json)) : s.json
            script += "# \(s.help)\nmmctl config set PluginSettings.Plugins.\(pluginID).\(s.key) \(value)\n"
        }
        script += "mmctl plugin enable \(pluginID)\n"
        return [
            GeneratedFile(path: "mattermost/plugin-settings.json", contents: json, mode: 0o600,
                          description: "Calls plugin settings to merge into config.json (or: mmctl config patch plugin-settings.json)"),
            GeneratedFile(path: "mattermost/mmctl-commands.sh", contents: script, mode: 0o700,
                          description: "the same settings as mmctl commands (run where mmctl is logged in)"),
        ]
    }

    /// Undoes ``Render/json(_:)`` for the strings it makes.
    static func unquote(_ json: String) -> String {
        guard let data = "[\(json)]".data(using: .utf8), let array = try? JSONSerialization.jsonObject(with: data) as? [String],
            let first = array.first
        else { return json }
        return first
    }
}
