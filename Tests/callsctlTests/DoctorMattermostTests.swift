import Foundation
import Testing

/// The doctor's Mattermost checks (`--site-url`). No Mattermost server can run here, so these talk to a stand-in:
/// a small Python HTTP server that answers the three routes the doctor reads with the shapes the real server and the
/// Calls plugin send (../shared/reference/rtcd.md §4): `/api/v4/system/ping` → `{"status":"OK"}`,
/// `/plugins/com.mattermost.calls/version` → `{"version":…}`, and `/plugins/com.mattermost.calls/config` (401 without a
/// token) → the client config with `ICEServersConfigs` as a list of `{urls: [...]}`.
@Suite(.serialized) struct DoctorMattermostTests {
    static let standIn = #"""
        import json, ssl, sys
        from http.server import BaseHTTPRequestHandler, HTTPServer
        port_file, plugin, turn = sys.argv[1], sys.argv[2] == "plugin", sys.argv[3]
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def send(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                if self.path == "/api/v4/system/ping":
                    return self.send(200, {"ActiveSearchBackend": "database", "AndroidLatestVersion": "", "status": "OK"})
                if not plugin:
                    return self.send(404, {"id": "api.context.404.app_error", "message": "Sorry, we could not find the page.", "status_code": 404})
                if self.path == "/plugins/com.mattermost.calls/version":
                    return self.send(200, {"version": "1.3.0", "build": "abc123"})
                if self.path == "/plugins/com.mattermost.calls/config":
                    if self.headers.get("Authorization") != "Bearer mm-token":
                        return self.send(401, {"message": "Unauthorized"})
                    return self.send(200, {"ICEServers": [], "ICEServersConfigs": [{"urls": ["stun:stun.example.com:3478"]}, {"urls": [turn]}],
                                           "AllowScreenSharing": True, "DefaultEnabled": True, "MaxCallParticipants": 0, "EnableRecordings": False})
                self.send(404, {"message": "not found"})
        server = HTTPServer(("127.0.0.1", 0), H)
        if len(sys.argv) > 5:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[4], sys.argv[5])
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        open(port_file + ".tmp", "w").write(str(server.server_address[1]))
        import os; os.rename(port_file + ".tmp", port_file)
        server.serve_forever()
        """#

    final class StandIn {
        let process = Process()
        let port: Int
        init(dir: TempDir, plugin: Bool, turn: String = "turn:turn.example.com:3478", tls: (cert: String, key: String)? = nil) throws {
            let script = "\(dir.path)/standin.py"
            try DoctorMattermostTests.standIn.write(toFile: script, atomically: true, encoding: .utf8)
            let portFile = "\(dir.path)/port-\(UUID().uuidString)"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script, portFile, plugin ? "plugin" : "none", turn] + (tls.map { [$0.cert, $0.key] } ?? [])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(30)
            while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline && process.isRunning { usleep(20_000) }
            port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
            if port == 0 { throw CLIHarnessError("the Mattermost stand-in did not start") }
        }
        deinit {
            // SIGKILL, and a bounded wait: a child started from a test thread may inherit a mask that blocks SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
        }
    }

    struct CLIHarnessError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func checks(_ r: CLI.Result) throws -> (summary: [String: Any], checks: [String: [String: Any]]) {
        try DoctorCLITests.checks(r)
    }

    @Test func aPlainHTTPSiteWithThePluginWarnsAndTheTURNListIsCompared() throws {
        let dir = TempDir()
        let site = try StandIn(dir: dir, plugin: true)
        let token = "\(dir.path)/mm-token"
        try "mm-token".write(toFile: token, atomically: true, encoding: .utf8)
        chmod(token, 0o600)
        let base = ["doctor", "--site-url", "http://127.0.0.1:\(site.port)", "--site-token-file", token, "--json"]

        // The plugin hands clients a TURN server this run did not check: a warning naming it.
        var r = try CLI.run(base, dataDir: dir.path)
        var (summary, checks) = try Self.checks(r)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(checks["MM001"]?["status"] as? String == "warn")
        #expect((checks["MM001"]?["message"] as? String)?.contains("plain HTTP") == true)
        #expect(checks["MM002"]?["status"] as? String == "pass")
        #expect((checks["MM002"]?["evidence"] as? [String: Any])?["version"] as? String == "1.3.0")
        #expect(checks["MM003"]?["status"] as? String == "warn")
        #expect((checks["MM003"]?["message"] as? String)?.contains("turn:turn.example.com:3478") == true, "\(checks["MM003"] ?? [:])")

        // Checked with the same URL (the TURN check itself left out): the lists agree.
        r = try CLI.run(base + ["--turn-url", "turn:turn.example.com", "--only", "MM001,MM002,MM003"], dataDir: dir.path)
        (summary, checks) = try Self.checks(r)
        #expect(checks["MM003"]?["status"] as? String == "pass", "\(checks["MM003"] ?? [:])")

        // Without a token the plugin's config cannot be read: skipped, with the flag named.
        r = try CLI.run(["doctor", "--site-url", "http://127.0.0.1:\(site.port)", "--json"], dataDir: dir.path)
        (summary, checks) = try Self.checks(r)
        #expect(checks["MM003"]?["status"] as? String == "skip")
        #expect((checks["MM003"]?["message"] as? String)?.contains("--site-token-file") == true)
        _ = summary
    }

    @Test func aSiteWithoutTheCallsPluginIsAFailureWithTheCommandToEnableIt() throws {
        let dir = TempDir()
        let site = try StandIn(dir: dir, plugin: false)
        let r = try CLI.run(["doctor", "--site-url", "http://127.0.0.1:\(site.port)", "--json"], dataDir: dir.path)
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        let (summary, checks) = try Self.checks(r)
        #expect(summary["mostLikelyCause"] as? String == "MM002")
        #expect(((summary["remediation"] as? [String])?.first ?? "").hasPrefix("mmctl plugin enable com.mattermost.calls"))
        #expect(checks["MM003"]?["status"] as? String == "skip")
        let human = try CLI.run(["doctor", "--site-url", "http://127.0.0.1:\(site.port)"], dataDir: dir.path)
        #expect(human.stdout.contains("Most likely cause: MM002"))
    }

    @Test func anUntrustedCertificateFailsUntilItsCAIsGiven() throws {
        let dir = TempDir()
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "\(dir.path)/key.pem", "-out", "\(dir.path)/cert.pem",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        let site = try StandIn(dir: dir, plugin: true, tls: ("\(dir.path)/cert.pem", "\(dir.path)/key.pem"))
        let args = ["doctor", "--site-url", "https://127.0.0.1:\(site.port)", "--only", "MM001,MM002", "--json"]
        var r = try CLI.run(args, dataDir: dir.path)
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        var (summary, checks) = try Self.checks(r)
        #expect(summary["mostLikelyCause"] as? String == "MM001")
        #expect((checks["MM001"]?["message"] as? String)?.contains("browsers will refuse the site's certificate") == true)
        #expect((checks["MM001"]?["evidence"] as? [String: Any])?["certificateProblem"] as? String == "self-signed certificate")

        r = try CLI.run(args + ["--ca-file", "\(dir.path)/cert.pem"], dataDir: dir.path)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        (summary, checks) = try Self.checks(r)
        #expect(checks["MM001"]?["status"] as? String == "pass")
        #expect(checks["MM002"]?["status"] as? String == "pass")
    }
}
