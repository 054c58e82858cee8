import Foundation

/// The Mattermost Calls plugin settings, as the `PluginSettings.Plugins["com.mattermost.calls"]` part of
/// the server's config.json (keys lowercased, as the server stores them) and as `mmctl` commands.
enum PluginGenerator {
    static let pluginID = "com.mattermost.calls"

    /// (config.json key, JSON literal, what it is). `recordings`: calls-offloader is part of the deployment.
    static func settings(_ i: DeploymentInputs, recordings: Bool = false) -> [(key: String, json: String, help: String)] {
        var list: [(key: String, json: String, help: String)] = [
            ("rtcdserviceurl", Render.json(i.apiURL), "RTCD service URL: the media server's API on the private network (only the chat servers reach it)"),
        ]
        if let override = i.sharedOverride {
            list.append(("icehostoverride", Render.json(override), "ICE host override (used by the integrated server only)"))
        }
        list += [
            ("udpserverport", "\(i.rtcPort)", "RTC server UDP port"),
            ("tcpserverport", "\(i.rtcPort)", "RTC server TCP port"),
            ("iceserversconfigs", Render.json(Render.iceServersJSON(i)), "ICE servers: STUN and credential-less TURN (credentials come from the secret)"),
            ("turnstaticauthsecret", Render.json(i.turnSecret), "TURN static auth secret (coturn static-auth-secret)"),
            ("turncredentialsexpirationminutes", "\(i.turnCredentialMinutes)", "TURN credential lifetime, minutes"),
            ("maxcallparticipants", "\(i.maxParticipants ?? 0)", "participants per call, 0 = unlimited"),
            ("defaultenabled", i.testMode ? "false" : "true", "false = test mode on: only system admins start calls where not enabled"),
        ]
        if recordings {
            list += [
                ("jobserviceurl", Render.json(i.jobServiceURL), "calls-offloader (recording jobs) on the private network"),
                ("enablerecordings", "true", "call recordings, made by calls-offloader"),
            ]
        }
        return list
    }

    static func files(_ i: DeploymentInputs, recordings: Bool = false) -> [GeneratedFile] {
        let all = settings(i, recordings: recordings)
        let entries = all.map { "        \(Render.json($0.key)): \($0.json)" }.joined(separator: ",\n")
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
        // `mmctl config set` changes only keys the server's config already has, and a server that never ran the
        // Calls plugin has none of these: the settings go in with `config patch`, which merges the JSON.
        var script = """
            #!/bin/sh
            # Calls plugin settings for \(i.domain) with mmctl. \(Render.header).
            # Log in first, e.g.:
            #   mmctl auth login \(i.mattermostURL ?? "https://chat.example.com") --name calls --username ADMIN
            # (or run it on the chat server and add --local to both commands). It merges plugin-settings.json
            # (next to this script; it holds the TURN secret) into the server's config:

            """
        for s in all { script += "#   \(s.key): \(s.help)\n" }
        script += """
            set -e
            cd "$(dirname "$0")"
            mmctl config patch plugin-settings.json
            mmctl plugin enable \(pluginID)

            """
        return [
            GeneratedFile(path: "mattermost/plugin-settings.json", contents: json, mode: 0o600,
                          description: "Calls plugin settings to merge into config.json (or: mmctl config patch plugin-settings.json)"),
            GeneratedFile(path: "mattermost/mmctl-commands.sh", contents: script, mode: 0o700,
                          description: "applies plugin-settings.json with mmctl config patch and enables the plugin"),
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
