import Foundation

/// Where a channel's call runs when several `serve` nodes share one database (a cluster).
///
/// Asked when a join arrives for a channel whose call does not run on this node. Without a placement (one node)
/// every call runs here, as before.
public enum PlacementDecision: Sendable, Equatable {
    /// The call runs (or starts) on this node.
    case local
    /// The call runs on another node: the client is sent there (`redirect`, docs/protocol.md).
    case redirect(node: String, url: String)
    /// No node can take it now (the database is unreachable, or every other node is draining).
    case refused(code: SignalingErrorCode, message: String)
}

/// A call as the cluster lists it.
public struct ClusterCall: Sendable, Equatable {
    public var channel: String
    public var node: String
    public var nodeURL: String
    public var participants: Int
    public var since: Date

    public init(channel: String, node: String, nodeURL: String, participants: Int, since: Date) {
        self.channel = channel
        self.node = node
        self.nodeURL = nodeURL
        self.participants = participants
        self.since = since
    }
}

/// The cluster side of call placement; `ClusterNode` (CallsCluster) is the implementation.
public protocol CallPlacement: Sendable {
    /// This node's id in the cluster.
    var nodeID: String { get }
    /// Claims the call of `channel` for a node: this one, unless `draining` (then a live node that is not) or another
    /// live node already holds it.
    func place(channel: String, draining: Bool) async -> PlacementDecision
    /// The call of `channel` on this node ended, or never started (its join was refused): the claim goes.
    func released(channel: String)
    /// Calls on the other live nodes, as last seen (at most a heartbeat old).
    func remoteCalls() -> [ClusterCall]
}
