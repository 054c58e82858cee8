import Foundation
import Testing

@testable import CallsConfig

/// Every finding of a file with its environment: reading and value rules.
private func clusterFindings(_ text: String, env: [String: String] = [:]) -> [String] {
    let r = CallsConfig.resolve(fileText: text, filePath: "c.toml", environment: env)
    return (r.diagnostics + r.config.validate()).map(\.description)
}

/// The `[cluster]` keys: PostgreSQL URLs (named by key, never echoed with their password), what a cluster node
/// needs, and what `config show` prints.
@Suite struct ClusterKeyValidationTests {
    static let password = "Sup3r-s3cret-pw"

    @Test(arguments: [
        "mysql://callsctl:\(password)@db.example.com/calls",
        "postgres://callsctl:\(password)@db.example.com:99999/calls",
        "postgres://callsctl:\(password)@db.example.com:5432",
        "postgres://callsctl:\(password)@db.example.com/calls?sslmode=maybe",
        "postgres://callsctl:\(password)@db.example.com/calls?password=\(password)",
        "postgres://callsctl:\(password)@[::1/calls",
        "postgres://:\(password)@db.example.com/calls",
        "callsctl:\(password)@db.example.com/calls",
        "postgres://callsctl:\(password)@bad host!/calls",
    ])
    func badURLsNameTheKeyAndNeverEchoThePassword(url: String) {
        let fromFile = clusterFindings("[cluster]\ndatabase_url = \(TOMLValue.quoted(url))\npublic_url = \"https://calls-1.example.com\"\n")
        #expect(fromFile.count == 1, "\(fromFile)")
        #expect(fromFile.first?.hasPrefix("c.toml:2: error: cluster.database_url: ") == true, "\(fromFile)")
        let fromEnv = clusterFindings("[cluster]\npublic_url = \"https://calls-1.example.com\"\n", env: ["CALLSCTL_CLUSTER_DB": url])
        #expect(fromEnv.count == 1, "\(fromEnv)")
        #expect(fromEnv.first?.hasPrefix("error: cluster.database_url: ") == true && fromEnv.first?.contains("(set by CALLSCTL_CLUSTER_DB)") == true, "\(fromEnv)")
        for finding in fromFile + fromEnv {
            #expect(!finding.contains(Self.password), "a finding shows the password: \(finding)")
        }
    }

    @Test func exactMessagesOfBadURLs() {
        #expect(
            clusterFindings("[cluster]\ndatabase_url = \"postgres://u:\(Self.password)@db.example.com:99999/calls\"\npublic_url = \"https://n1.example.com\"\n")
                == [
                    "c.toml:2: error: cluster.database_url: has the port \"99999\"; use 1-65535 (PostgreSQL's is 5432); allowed: \(ConfigKeyKind.postgresURL.allowed)"
                ])
        // A value of the wrong type is not echoed either: it may be the URL in a list.
        #expect(
            clusterFindings("[cluster]\ndatabase_url = [\"postgres://u:\(Self.password)@db.example.com/calls\"]\n")
                == ["c.toml:2: error: cluster.database_url: the value is an array; allowed: \(ConfigKeyKind.postgresURL.allowed)"])
    }

    @Test func aClusterNodeNeedsItsPublicURL() {
        let found = clusterFindings("[cluster]\nnode_id = \"n1\"\n", env: ["CALLSCTL_CLUSTER_DATABASE_URL": "postgres://callsctl@db.example.com/calls"])
        #expect(
            found == [
                "error: cluster.public_url: is not set, and a cluster node needs it: joins for a call on this node are redirected to it; allowed: \(ConfigKeyKind.httpURL.allowed)\n  fix: Set cluster.public_url (or --cluster-public-url) to the URL clients reach this node's API at, e.g. https://calls-1.example.com."
            ])
        #expect(
            clusterFindings("[cluster]\ndatabase_url = \"postgres://callsctl@db.example.com/calls\"\npublic_url = \"ftp://calls-1.example.com\"\n")
                == ["c.toml:3: error: cluster.public_url: \"ftp://calls-1.example.com\" is not an http(s) URL; allowed: \(ConfigKeyKind.httpURL.allowed)"])
    }

    @Test func passwordInTheURLAndAPasswordFileIsAnError() {
        let folder = TempFolder()
        let file = folder.file("db-password", "pw\n", mode: 0o600)
        let text = """
            [cluster]
            database_url = "postgres://callsctl:\(Self.password)@db.example.com/calls"
            database_password_file = "\(file)"
            public_url = "https://calls-1.example.com"
            """
        let found = clusterFindings(text)
        #expect(
            found == [
                "c.toml:3: error: cluster.database_password_file: is set, but cluster.database_url holds a password too\n  fix: Keep the password in one place: remove it from the URL (postgres://USER@HOST/DB) and keep the file."
            ])
        #expect(!found.joined().contains(Self.password))
        // The file alone is fine.
        #expect(clusterFindings(text.replacingOccurrences(of: "callsctl:\(Self.password)@", with: "callsctl@")) == [])
    }

    /// A node's file may leave the database URL to CALLSCTL_CLUSTER_DB (generated bundles do: it holds a password), so
    /// cluster keys without it are not findings of the file; serve warns when its effective config has them alone.
    @Test func clusterKeysWithoutADatabaseAreNotFindingsOfTheFile() {
        let folder = TempFolder()
        let file = folder.file("db-password", "pw\n", mode: 0o600)
        let found = clusterFindings(
            "[cluster]\ndatabase_password_file = \"\(file)\"\nnode_id = \"n1\"\npublic_url = \"https://n1.example.com\"\nheartbeat_timeout = 5\n")
        #expect(found.isEmpty, "\(found)")
    }

    @Test func badNodeIDsAndTimeouts() {
        let db = "database_url = \"postgres://callsctl@db.example.com/calls\"\npublic_url = \"https://n1.example.com\"\n"
        #expect(
            clusterFindings("[cluster]\n\(db)node_id = \"node one\"\n")
                == ["c.toml:4: error: cluster.node_id: \"node one\" is not a node name; allowed: \(ConfigKeyKind.name.allowed)"])
        #expect(clusterFindings("[cluster]\n\(db)heartbeat_timeout = 1\n").first?.hasPrefix("c.toml:4: error: cluster.heartbeat_timeout: 1 is out of range") == true)
    }

    @Test func showRedactsOnlyThePassword() {
        let c = CallsConfig.resolve(
            fileText: "[cluster]\ndatabase_url = \"postgres://callsctl:\(Self.password)@db.example.com:5433/calls?sslmode=require\"\n", filePath: "c.toml"
        ).config
        #expect(c.displayValue(of: "cluster.database_url") == "postgres://callsctl:<redacted>@db.example.com:5433/calls?sslmode=require")
        let noPassword = CallsConfig.resolve(fileText: nil, environment: ["CALLSCTL_CLUSTER_DB": "postgres://callsctl@[fd00::9]/calls"]).config
        #expect(noPassword.displayValue(of: "cluster.database_url") == "postgres://callsctl@[fd00::9]:5432/calls")
        // A URL that does not parse is redacted whole: it might be all password.
        let bad = CallsConfig.resolve(fileText: nil, environment: ["CALLSCTL_CLUSTER_DB": "postgres://u:\(Self.password)@h:0/x"]).config
        #expect(bad.displayValue(of: "cluster.database_url") == "<redacted>")
    }
}

/// The cluster form of the generators: inputs, what each file holds, and the bundle check.
@Suite struct ClusterGeneratorTests {
    static let password = GoldenInputs.databasePassword

    @Test func nodesAreDerivedFromTheDomainOrNamed() throws {
        let derived = try DeploymentInputs(GoldenInputs.cluster())
        #expect(derived.isCluster)
        #expect(derived.clusterNodes.map(\.id) == ["calls-1", "calls-2", "calls-3"])
        #expect(derived.clusterNodes.map(\.publicURL) == ["https://calls-1.example.com", "https://calls-2.example.com", "https://calls-3.example.com"])
        #expect(derived.clusterNodes.map(\.address) == ["calls-1.example.com", "calls-2.example.com", "calls-3.example.com"])
        var raw = GoldenInputs.cluster()
        raw.mediaNodes = 1
        raw.clusterNodes = ["Media-A.example.com=203.0.113.11", "media-b.example.com"]
        let named = try DeploymentInputs(raw)
        #expect(named.mediaNodes == 2)
        #expect(named.clusterNodes == [
            .init(id: "media-a", host: "media-a.example.com", address: "203.0.113.11"),
            .init(id: "media-b", host: "media-b.example.com", address: "media-b.example.com"),
        ])
        #expect(try DeploymentInputs(GoldenInputs.raw()).clusterNodes.isEmpty)
    }

    /// Changes the cluster inputs for case `n` of ``inputErrorsNameTheFlag``.
    static func change(_ n: Int, _ r: inout DeploymentInputs.Raw) {
        switch n {
        case 0: r.clusterDatabaseURL = nil; r.clusterNodes = ["a.example.com"]
        case 1: r.clusterDatabaseURL = "postgres://callsctl:\(password)@db.example.com:0/calls"
        case 2: r.clusterDatabaseURL = "http://callsctl:\(password)@db.example.com/calls"
        case 3: r.mediaNodes = 1
        case 4: r.clusterNodes = ["a.example.com", "b.example.com"]
        case 5: r.mediaNodes = 1; r.clusterNodes = ["calls.a.example.com", "calls.b.example.com"]
        case 6: r.mediaNodes = 1; r.clusterNodes = ["a.example.com=203.0.113.9", "b.example.com=203.0.113.9"]
        case 7: r.mediaNodes = 1; r.clusterNodes = ["calls.example.com", "b.example.com"]
        case 8: r.mediaNodes = 1; r.clusterNodes = ["a_b.example.com", "b.example.com"]
        case 9: r.mediaNodes = 1; r.clusterNodes = ["a.example.com=bad address", "b.example.com"]
        case 10: r.mediaNodes = 1; r.clusterNodes = ["a.example.com", "b.example.com"]; r.iceHostOverride = "203.0.113.7"
        default: break
        }
    }

    @Test(arguments: [
        (0, "--cluster-node: is for the cluster form; give the PostgreSQL the nodes share with --cluster-db-url-file FILE (a file holding postgres://USER:PASSWORD@HOST/DB)."),
        (1, "--cluster-db-url-file: the URL in the file has the port \"0\"; use 1-65535 (PostgreSQL's is 5432)."),
        (2, "--cluster-db-url-file: the URL in the file has the scheme http://; use postgres:// (like postgres://callsctl@db.example.com:5432/mattermost?sslmode=require)."),
        (3, "--media-nodes: the cluster form (--cluster-db-url-file) is for 2 or more callsctl serve nodes; give --media-nodes N or one --cluster-node per node (leave --cluster-db-url-file out for a single node on SQLite)."),
        (4, "--cluster-node: 2 node(s) given for 3 media nodes (--media-nodes); give one --cluster-node per node, or leave --media-nodes out."),
        (5, "--cluster-node: two nodes have the node id (the first label of the name) calls; every node needs its own node id, public URL and advertised address."),
        (6, "--cluster-node: two nodes have the address 203.0.113.9; every node needs its own node id, public URL and advertised address."),
        (7, "--cluster-node: calls.example.com is the shared name (--domain) of the load balancer; each node needs a name of its own, reachable directly, e.g. calls-1.calls.example.com."),
        (8, "--cluster-node: \"a_b.example.com\" is not a DNS name; give NAME or NAME=ADDRESS, e.g. calls-1.example.com=203.0.113.11 (the node's own public name and the address it advertises)."),
        (9, "--cluster-node: \"bad address\" (the address of a.example.com) is neither an IP address nor a DNS name."),
        (10, "--ice-host-override: one advertised address for 2 cluster nodes would send every client to one node; leave it out: each node advertises its own (--cluster-node NAME=ADDRESS)."),
    ])
    func inputErrorsNameTheFlag(n: Int, expected: String) {
        var raw = GoldenInputs.cluster()
        Self.change(n, &raw)
        #expect(throws: InputError.self) { try DeploymentInputs(raw) }
        do {
            _ = try DeploymentInputs(raw)
        } catch {
            #expect(error.description == expected)
            #expect(!error.description.contains(Self.password))
        }
    }

    /// The database URL (and its password) is only in files of mode 0600 meant for secrets.
    @Test func theDatabaseURLIsOnlyInSecretFiles() throws {
        let inputs = try DeploymentInputs(GoldenInputs.cluster())
        let files = GenerateTarget.bundle.files(inputs)
        let holders = files.filter { $0.contents.contains(Self.password) }.map(\.path)
        #expect(holders == ["kubernetes/callsctl.yaml", "secrets/cluster-db.env"])
        for f in files where holders.contains(f.path) { #expect(f.mode == 0o600, "\(f.path)") }
        let env = try #require(files.first { $0.path == "secrets/cluster-db.env" })
        #expect(env.contents.contains("\nCALLSCTL_CLUSTER_DB=\"\(inputs.clusterDatabaseURL!)\"\n"))
        let manifest = try #require(files.first { $0.path == "kubernetes/callsctl.yaml" })
        // In the Secret only: the Deployments reference it.
        #expect(manifest.contents.components(separatedBy: Self.password).count == 2)
        #expect(manifest.contents.components(separatedBy: "secretKeyRef:").count == 4)
        let unit = try #require(files.first { $0.path == "systemd/callsctl.service" })
        #expect(unit.contents.contains("\nEnvironmentFile=/etc/callsctl/cluster-db.env\n"))
        #expect(!files.contains { $0.path == "callsctl/callsctl.toml" })
    }

    /// Each node's callsctl.toml, with the secrets in place, reads and validates clean, with the database URL in the
    /// environment (as serve gets it) and without (as `config validate` reads the file).
    @Test func eachNodesConfigValidates() throws {
        let inputs = try DeploymentInputs(GoldenInputs.cluster())
        let folder = TempFolder()
        for (name, value) in [("turn-secret", inputs.turnSecret), ("admin-key", inputs.adminKey), ("token-secret", inputs.tokenSecret)] {
            _ = folder.file(name, value + "\n")
        }
        let tomls = GenerateTarget.callsctl.files(inputs)
        #expect(tomls.map(\.path) == ["callsctl/calls-1/callsctl.toml", "callsctl/calls-2/callsctl.toml", "callsctl/calls-3/callsctl.toml"])
        for (n, file) in tomls.enumerated() {
            let text = file.contents.replacingOccurrences(of: "/etc/callsctl/", with: folder.path + "/")
            #expect(!text.contains("postgres"))
            let env = ["CALLSCTL_CLUSTER_DB": inputs.clusterDatabaseURL!]
            let r = CallsConfig.resolve(fileText: text, filePath: file.path, environment: env)
            #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
            #expect(r.config.validate().isEmpty, "\(r.config.validate())")
            #expect(r.config.clusterNodeID == "calls-\(n + 1)")
            #expect(r.config.clusterPublicURL == "https://calls-\(n + 1).example.com")
            #expect(r.config.iceHostOverride == "calls-\(n + 1).example.com")
            #expect(r.config.stunServers.isEmpty)
            #expect(r.config.clusterHeartbeatTimeout == 5)
            let alone = CallsConfig.resolve(fileText: text, filePath: file.path).config.validate()
            #expect(alone.isEmpty, "\(alone)")
        }
    }

    // MARK: Bundle check

    /// A cluster bundle written to a temporary folder.
    func writtenBundle() throws -> (TempFolder, String) {
        let folder = TempFolder()
        let dir = folder.path + "/b"
        try BundleWriter.write(GenerateTarget.bundle.files(try DeploymentInputs(GoldenInputs.cluster())), to: dir, force: false)
        return (folder, dir)
    }

    func edit(_ dir: String, _ file: String, _ change: (String) -> String) throws {
        let path = "\(dir)/\(file)"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let changed = change(text)
        #expect(changed != text, "the edit of \(file) changed nothing")
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func aGeneratedClusterBundleAgreesWithItself() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        #expect(crossCheckBundle(directory: dir).map(\.description) == [])
        var raw = GoldenInputs.cluster()
        raw.mediaNodes = 1
        raw.clusterNodes = ["calls-a.example.com=203.0.113.11", "calls-b.example.com=203.0.113.12"]
        let named = TempFolder()
        try BundleWriter.write(GenerateTarget.bundle.files(try DeploymentInputs(raw)), to: named.path + "/b", force: false)
        #expect(crossCheckBundle(directory: named.path + "/b").map(\.description) == [])
    }

    @Test func bundleCheckFindsASharedNodeID() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        try edit(dir, "callsctl/calls-2/callsctl.toml") { $0.replacingOccurrences(of: "node_id = \"calls-2\"", with: "node_id = \"calls-1\"") }
        let found = crossCheckBundle(directory: dir).map(\.description)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.contains("error: cluster.node_id: two cluster nodes have the node id calls-1: callsctl/calls-2/callsctl.toml:") == true, "\(found)")
    }

    @Test func bundleCheckFindsAMissingOrSharedPublicURL() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        try edit(dir, "callsctl/calls-3/callsctl.toml") { $0.replacingOccurrences(of: "public_url = \"https://calls-3.example.com\"\n", with: "") }
        try edit(dir, "kubernetes/callsctl.yaml") {
            $0.replacingOccurrences(of: "- \"https://calls-2.example.com\"", with: "- \"https://calls-1.example.com\"")
        }
        let found = crossCheckBundle(directory: dir).map(\.description)
        #expect(found.contains { $0.contains("error: cluster.public_url: cluster node calls-3 has no cluster.public_url") && $0.hasPrefix("callsctl/calls-3/callsctl.toml:") }, "\(found)")
        #expect(found.contains { $0.contains("two cluster nodes have the public URL https://calls-1.example.com") && $0.hasPrefix("kubernetes/callsctl.yaml:") }, "\(found)")
        #expect(found.contains { $0.contains("public URL of cluster node calls-2 differs") }, "\(found)")
    }

    @Test func bundleCheckFindsAnotherDatabaseURLWithoutShowingIt() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        try edit(dir, "kubernetes/callsctl.yaml") { $0.replacingOccurrences(of: "@db.internal.example.com", with: "@db2.internal.example.com") }
        let found = crossCheckBundle(directory: dir).map(\.description)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.contains("cluster database URL differs between") == true, "\(found)")
        #expect(!found.joined().contains(Self.password))
    }

    @Test func bundleCheckFindsAPasswordInAConfigFile() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        let url = "postgres://callsctl:\(Self.password)@db.internal.example.com:5432/calls"
        try edit(dir, "callsctl/calls-1/callsctl.toml") { $0.replacingOccurrences(of: "# database_url =\n", with: "database_url = \"\(url)\"\n") }
        try edit(dir, "kubernetes/callsctl.yaml") {
            $0.replacingOccurrences(
                of: "              valueFrom:\n                secretKeyRef:\n                  name: callsctl-secrets\n                  key: cluster-db-url\n",
                with: "              value: \"\(url)\"\n")
        }
        let found = crossCheckBundle(directory: dir).map(\.description)
        // The toml and each of the three Deployments.
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.hasPrefix("callsctl/calls-1/callsctl.toml:") && $0.contains("holds a PostgreSQL URL with its password") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("kubernetes/callsctl.yaml:") && $0.contains("secretKeyRef") }, "\(found)")
        #expect(!found.joined().contains(Self.password))
    }

    @Test func bundleCheckFindsASharedAdvertisedAddress() throws {
        let (tmp, dir) = try writtenBundle()
        defer { withExtendedLifetime(tmp) {} }
        try edit(dir, "callsctl/calls-2/callsctl.toml") {
            $0.replacingOccurrences(of: "ice_host_override = \"calls-2.example.com\"", with: "ice_host_override = \"calls-1.example.com\"")
        }
        let found = crossCheckBundle(directory: dir).map(\.description)
        #expect(found.count == 2, "\(found)")
        #expect(found.contains { $0.contains("two cluster nodes have the ICE host override calls-1.example.com") }, "\(found)")
        // The node's Kubernetes Deployment still advertises its own address.
        #expect(found.contains { $0.contains("ICE host override of cluster node calls-2 differs") }, "\(found)")
    }
}
