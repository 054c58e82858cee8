import CallsCluster
import CallsMedia
import CallsConfig
import Doctor
import Foundation
import Logging

/// The doctor's cluster checks (`--role server` on a node of a cluster): the database answers, and this node
/// heartbeats into its registry.
enum DoctorClusterChecks {
    struct Target: Sendable {
        var url: PostgresURL
        var password: String?
        var nodeID: String
        var heartbeatTimeout: Double
    }

    /// The cluster of `--cluster-db`, else `CALLSCTL_CLUSTER_DB`, else the config file's `[cluster]`; nil for one node.
    static func target(flag: String?, nodeFlag: String?, config: CallsConfig?, configPath: String?) throws -> Target? {
        let file = config.map { (settings: $0, path: configPath ?? "--config") }
        guard let (url, password) = try ClusterDatabaseSource.resolve(urlFlag: flag, passwordFileFlag: nil, config: file) else {
            return nil
        }
        return Target(
            url: url, password: password, nodeID: nodeFlag ?? config?.clusterNodeID ?? ClusterJoin.defaultNodeID(),
            heartbeatTimeout: Double(config?.clusterHeartbeatTimeout ?? 5))
    }

    static func checks(_ t: Target) -> [DoctorCheck] {
        // The registry read by CLU001, for CLU002.
        let view = Locked<ClusterView?>(nil)
        let database = DoctorCheck("CLU001", "The cluster database answers", severity: .critical) { deadline in
            let timeout = min(Duration.seconds(5), max(.milliseconds(500), ContinuousClock.now.duration(to: deadline)))
            do {
                let v = try await ClusterView.read(
                    url: t.url, password: t.password, timeout: timeout, logger: Logger(label: "doctor", factory: { _ in SwiftLogNoOpLogHandler() }))
                view.withLock { $0 = v }
                guard let version = v.schemaVersion else {
                    return .warn(
                        "\(t.url.redacted) answers, but has no callsctl tables yet", evidence: [("database", .string(t.url.redacted))],
                        fix: ["Start a node with --cluster-db \(t.url.redacted): the first node creates the tables."])
                }
                let live = v.nodes.filter { $0.age < t.heartbeatTimeout }
                return .pass(
                    "\(t.url.redacted) answers: schema \(version), \(live.count) live node(s) of \(v.nodes.count), \(v.calls) call(s)",
                    evidence: [
                        ("database", .string(t.url.redacted)), ("schema", .int(version)), ("nodes.live", .int(live.count)),
                        ("calls", .int(v.calls)),
                    ])
            } catch {
                return .fail(
                    "cannot reach \(t.url.redacted): \(ClusterDatabaseError.describe(error))", evidence: [("database", .string(t.url.redacted))],
                    fix: [
                        "Check that PostgreSQL runs and accepts this host (listen_addresses, pg_hba.conf), and the URL's user, password and database",
                        "Try the same connection: psql '\(t.url.redacted)'",
                    ])
            }
        }
        let heartbeat = DoctorCheck("CLU002", "This node heartbeats into the cluster", severity: .critical, dependsOn: ["CLU001"]) { _ in
            guard let v = view.current else { return CheckOutcome(.skip, "the database was not read") }
            guard let me = v.nodes.first(where: { $0.id == t.nodeID }) else {
                let others = v.nodes.map(\.id).joined(separator: ", ")
                return .fail(
                    "node \(t.nodeID) is not in the registry\(others.isEmpty ? "" : " (it holds \(others))")",
                    evidence: [("node", .string(t.nodeID))],
                    fix: [
                        "Start serve with --cluster-db and --cluster-node-id \(t.nodeID) (or [cluster] in its config)",
                        "If serve runs with another id, give it here with --cluster-node-id",
                    ])
            }
            let evidence: [(String, EvidenceValue)] = [
                ("node", .string(me.id)), ("heartbeat.age", .double(me.age)), ("public.url", .string(me.publicURL)),
                ("participants", .int(me.participants)), ("calls", .int(me.calls)), ("draining", .bool(me.draining)),
            ]
            if me.age >= t.heartbeatTimeout {
                return .fail(
                    "node \(me.id)'s last heartbeat was \(String(format: "%.1f", me.age)) s ago (timeout \(Int(t.heartbeatTimeout)) s): the cluster counts it as gone",
                    evidence: evidence,
                    fix: ["Check that serve runs on this host (systemctl status callsctl) and that it reaches the database (its log says so)"])
            }
            if me.draining {
                return .warn(
                    "node \(me.id) is draining: it takes no new calls", evidence: evidence,
                    fix: ["This is expected during a stop or an upgrade; otherwise restart serve"])
            }
            return .pass(
                "node \(me.id) heartbeats (\(String(format: "%.1f", me.age)) s ago) at \(me.publicURL), \(me.calls) call(s)", evidence: evidence)
        }
        return [database, heartbeat]
    }
}
