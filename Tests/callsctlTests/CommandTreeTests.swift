import Foundation
import Testing

@testable import callsctl

@Suite struct CommandTreeTests {
    @Test func helpListsEveryCommand() throws {
        let r = try CLI.run(["--help"], dataDir: nil)
        #expect(r.status == 0)
        for command in ["serve", "doctor", "probe", "ports", "config", "channel", "calls", "token", "loadtest", "version"] {
            #expect(r.stdout.contains("  \(command) "), "help lacks \(command)")
        }
        #expect(!r.stdout.contains("generate-docs"), "the docs generator is hidden")
    }

    @Test func versionFlagAndCommand() throws {
        let flag = try CLI.run(["--version"], dataDir: nil)
        #expect(flag.status == 0)
        #expect(flag.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == BuildInfo.version)
        let command = try CLI.run(["version", "--json"], dataDir: nil)
        let object = try #require(command.json as? [String: Any])
        #expect(object["version"] as? String == BuildInfo.version)
        #expect((object["openssl"] as? String)?.hasPrefix("OpenSSL 3") == true)
        #expect((object["srtp"] as? String)?.contains("libsrtp2") == true)
    }

    @Test(arguments: [["channel", "frobnicate"], ["nonsense"], ["channel", "list", "--bogus"], ["--quiet"]])
    func usageErrorsExit64(_ args: [String]) throws {
        #expect(try CLI.run(args, dataDir: TempDir().path).status == 64)
    }

    @Test func quietAndVerboseConflict() throws {
        let r = try CLI.run(["channel", "list", "--quiet", "--verbose"], dataDir: TempDir().path)
        #expect(r.status == 64)
        #expect(r.stderr.contains("--quiet and --verbose"))
    }

    @Test func globalOptionsOnEveryLeafCommand() throws {
        let info = try JSONSerialization.jsonObject(with: Data(CallsCtl._dumpHelp().utf8)) as! [String: Any]
        var leaves: [(String, [String])] = []
        func walk(_ command: [String: Any], path: [String]) {
            let name = command["commandName"] as! String
            let subs = (command["subcommands"] as? [[String: Any]] ?? []).filter { $0["commandName"] as? String != "help" }
            if subs.isEmpty {
                let names = (command["arguments"] as? [[String: Any]] ?? []).flatMap {
                    ($0["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                }
                leaves.append(((path + [name]).joined(separator: " "), names))
            }
            for sub in subs { walk(sub, path: path + [name]) }
        }
        walk(info["command"] as! [String: Any], path: [])
        #expect(leaves.count >= 20)
        for (path, names) in leaves where !path.hasSuffix("generate-docs") {
            for option in ["data-dir", "json", "no-color", "quiet", "verbose"] {
                #expect(names.contains(option), "`\(path)` lacks --\(option)")
            }
        }
    }
}

@Suite struct GeneratedDocsTests {
    static let regenerate = "completions/ or man/ are stale: run scripts/generate-cli-docs.sh and commit the result"

    @Test(arguments: ["callsctl.bash", "_callsctl", "callsctl.fish"])
    func completionScriptsAreCurrent(_ name: String) throws {
        let committed = try? String(contentsOf: repoRoot.appendingPathComponent("completions/\(name)"), encoding: .utf8)
        #expect(committed == CLIDocs.completionScripts()[name], Comment(rawValue: Self.regenerate))
    }

    @Test func manPagesAreCurrent() throws {
        let generated = try CLIDocs.manPages()
        let folder = repoRoot.appendingPathComponent("man")
        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".1") }
        #expect(files == Set(generated.keys), Comment(rawValue: Self.regenerate))
        for (name, text) in generated {
            let committed = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(committed == text, Comment(rawValue: "\(name): " + Self.regenerate))
        }
        #expect(generated.keys.contains("callsctl.1"))
        #expect(generated.keys.contains("callsctl-channel-enable.1"))
        #expect(generated.keys.contains("callsctl-probe-stun.1"))
    }

    @Test func bashCompletionLoadsAndCompletesSubcommands() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        let script = repoRoot.appendingPathComponent("completions/callsctl.bash").path
        p.arguments = [
            "-c",
            "source '\(script)' && COMP_WORDS=(callsctl ch) COMP_CWORD=1 COMP_LINE='callsctl ch' COMP_POINT=11 && "
                + "$(complete -p callsctl | sed -E 's/.*-F ([^ ]+).*/\\1/') && printf '%s\\n' \"${COMPREPLY[@]}\"",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(text.split(separator: "\n").contains("channel"), "completions: \(text)")
    }

    @Test func completionScriptMatchesTheBinary() throws {
        let r = try CLI.run(["--generate-completion-script", "bash"], dataDir: nil)
        #expect(r.stdout == CLIDocs.completionScripts()["callsctl.bash"])
    }

    @Test func manPagesRenderWithMan() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/man") else {
            Issue.record("man is not installed; scripts/install-deps.sh --test installs man-db")
            return
        }
        for page in ["callsctl.1", "callsctl-channel-enable.1", "callsctl-channel-testmode.1"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/man")
            p.arguments = ["-l", repoRoot.appendingPathComponent("man/\(page)").path]
            p.environment = ["MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]
            let out = Pipe()
            let err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let warnings = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            #expect(text.contains("NAME"))
            #expect(text.contains("SYNOPSIS"))
            #expect(text.contains("EXIT STATUS"))
            #expect(!warnings.contains("warning"), "\(page): \(warnings)")
        }
    }

    @Test func dataDirResolution() {
        #expect(DataDirectory.resolve(flag: "/x/y", environment: ["CALLSCTL_DATA_DIR": "/e"]) == "/x/y")
        #expect(DataDirectory.resolve(flag: nil, environment: ["CALLSCTL_DATA_DIR": "/e", "XDG_DATA_HOME": "/d"]) == "/e")
        #expect(DataDirectory.resolve(flag: nil, environment: ["XDG_DATA_HOME": "/d", "HOME": "/h"]) == "/d/callsctl")
        #expect(DataDirectory.resolve(flag: nil, environment: ["XDG_DATA_HOME": "rel", "HOME": "/h"]) == "/h/.local/share/callsctl")
        #expect(DataDirectory.resolve(flag: nil, environment: ["HOME": "/h"]) == "/h/.local/share/callsctl")
    }

    @Test func jsonStringsAreEscaped() {
        let v = JSONValue.object([("a\"b", .string("line\nnext\u{1}")), ("n", .null), ("x", .array([.int(1), .bool(false)]))])
        let text = v.rendered(pretty: false)
        #expect(text == #"{"a\"b":"line\nnext\u0001","n":null,"x":[1,false]}"#)
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil)
    }
}
