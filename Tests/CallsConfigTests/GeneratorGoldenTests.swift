import Foundation
import Testing

@testable import CallsConfig

/// The fixed inputs of the golden files: every secret given, so the output is the same on every run.
enum GoldenInputs {
    static func raw() -> DeploymentInputs.Raw {
        var raw = DeploymentInputs.Raw()
        raw.domain = "calls.example.com"
        raw.publicIP = "203.0.113.7"
        raw.mattermostURL = "https://chat.example.com"
        raw.turnSecret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
        raw.adminKey = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
        raw.tokenSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
        raw.rtcdAdminKey = "b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1"
        raw.offloaderAdminKey = "c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2"
        raw.chatServerCIDRs = ["10.0.0.5/32", "fd00::5/128"]
        raw.maxParticipants = 50
        return raw
    }

    /// (golden folder, target, inputs).
    static var cases: [(String, GenerateTarget, DeploymentInputs.Raw)] {
        var cases = GenerateTarget.allCases.map { ($0.rawValue, $0, raw()) }
        var stream = raw()
        stream.nginxStream = true
        stream.upstreamHost = "10.0.0.20"
        cases.append(("nginx-stream", .nginx, stream))
        var daemonset = raw()
        daemonset.kubernetesKind = "daemonset"
        daemonset.image = "registry.example.com/callsctl:1.0"
        cases.append(("kubernetes-daemonset", .kubernetes, daemonset))
        var split = raw()
        split.turnDomain = "turn.example.com"
        split.iceHostOverride = "calls.example.com"
        cases.append(("firewall-turn-host", .firewall, split))
        cases.append(("coturn-turn-host", .coturn, split))
        // Three media nodes behind one private name for the chat servers, coturn 4.7.
        var nodes = raw()
        nodes.mediaNodes = 3
        nodes.internalHost = "rtcd.internal.example.com"
        nodes.coturnVersion = "4.7"
        cases.append(("bundle-three-nodes", .bundle, nodes))
        // The cluster form: three callsctl serve nodes sharing PostgreSQL, names derived from the domain.
        cases.append(("bundle-cluster", .bundle, cluster()))
        // Named nodes, each advertising its own IP.
        var named = cluster()
        named.mediaNodes = 1
        named.clusterNodes = ["calls-a.example.com=203.0.113.11", "calls-b.example.com=203.0.113.12"]
        cases.append(("kubernetes-cluster", .kubernetes, named))
        return cases
    }

    /// The database password of the cluster cases; it must only be in secret files.
    static let databasePassword = "db-pa55word-7f3e"

    static func cluster() -> DeploymentInputs.Raw {
        var raw = raw()
        raw.mediaNodes = 3
        raw.clusterDatabaseURL = "postgres://callsctl:\(databasePassword)@db.internal.example.com:5432/calls?sslmode=require"
        return raw
    }
}

@Suite struct GeneratorGoldenTests {
    static let goldenDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// With CALLSCTL_UPDATE_GOLDEN=1 (scripts/update-golden.sh) the files are written instead of compared.
    @Test(arguments: GoldenInputs.cases.map(\.0))
    func matchesGoldenFiles(name: String) throws {
        let (_, target, raw) = GoldenInputs.cases.first { $0.0 == name }!
        let inputs = try DeploymentInputs(raw)
        #expect(inputs.generatedSecrets.isEmpty)
        let files = target.files(inputs)
        let dir = Self.goldenDir.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["CALLSCTL_UPDATE_GOLDEN"] == "1" {
            try? FileManager.default.removeItem(at: dir)
            for f in files {
                let url = dir.appendingPathComponent(f.path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try f.contents.write(to: url, atomically: true, encoding: .utf8)
            }
            return
        }
        // The copy in the test bundle is what `swift test` ships; fall back to the source tree.
        let bundled = Bundle.module.resourceURL?.appendingPathComponent("Golden").appendingPathComponent(name)
        let base = bundled.flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil } ?? dir
        for f in files {
            let expected = try? String(contentsOf: base.appendingPathComponent(f.path), encoding: .utf8)
            #expect(
                expected == f.contents,
                "\(name)/\(f.path) differs from its golden file; if the change is meant, run scripts/update-golden.sh and review the diff")
        }
        let onDisk = (FileManager.default.enumerator(atPath: base.path)?.allObjects as? [String] ?? []).filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: base.appendingPathComponent($0).path, isDirectory: &isDir) && !isDir.boolValue
        }
        #expect(Set(onDisk) == Set(files.map(\.path)), "golden folder \(name) holds other files; run scripts/update-golden.sh")
    }

    @Test func secretsAreGeneratedWhenNotGivenAndDiffer() throws {
        var raw = GoldenInputs.raw()
        raw.turnSecret = nil
        raw.adminKey = nil
        raw.tokenSecret = nil
        let a = try DeploymentInputs(raw)
        let b = try DeploymentInputs(raw)
        #expect(a.generatedSecrets == ["turn secret", "admin key", "token secret"])
        #expect(a.turnSecret.count == 64 && a.adminKey.count == 64)
        #expect(Data(base64Encoded: a.tokenSecret)?.count == 32)
        #expect(a.turnSecret != b.turnSecret)
        #expect(a.adminKey != b.adminKey)
    }

    @Test func filesHoldingSecretsAreMode0600() throws {
        let inputs = try DeploymentInputs(GoldenInputs.raw())
        for f in GenerateTarget.bundle.files(inputs) {
            let holdsSecret = f.contents.contains(inputs.turnSecret) || f.contents.contains(inputs.adminKey) || f.contents.contains(inputs.tokenSecret)
            if holdsSecret { #expect(f.mode & 0o077 == 0, "\(f.path) holds a secret but has mode \(String(f.mode, radix: 8))") }
        }
    }

    @Test func systemdUnitGrantsTheLowPortCapabilityOnlyWhenNeeded() throws {
        let unit = { (raw: DeploymentInputs.Raw) throws -> String in
            try GenerateTarget.systemd.files(DeploymentInputs(raw)).first { $0.path == "systemd/callsctl.service" }!.contents
        }
        let normal = try unit(GoldenInputs.raw())
        #expect(normal.contains("\nCapabilityBoundingSet=\n") && !normal.contains("AmbientCapabilities"))
        var low = GoldenInputs.raw()
        low.rtcPort = 443
        let lowUnit = try unit(low)
        #expect(lowUnit.contains("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"))
    }

    @Test func bundleAgreesWithItselfAndReadmeListsEveryFile() throws {
        let inputs = try DeploymentInputs(GoldenInputs.raw())
        let files = GenerateTarget.bundle.files(inputs)
        let readme = try #require(files.first { $0.path == "README.md" })
        for f in files where f.path != "README.md" { #expect(readme.contents.contains("`\(f.path)`")) }
        #expect(Set(files.map(\.path)).count == files.count)
    }
}
