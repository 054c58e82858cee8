import Foundation

/// Channel settings, test mode and their audit log: the one interface over the single-node SQLite store
/// (``SettingsStore``) and a cluster's PostgreSQL (`ClusterSettingsStore` in CallsCluster).
///
/// Both apply exactly the same policy (``CallPolicy``); the shared conformance tests run against both.
public protocol ChannelSettingsStoring: Sendable {
    /// Where the settings live, for messages: a file path, or a PostgreSQL URL without its password.
    var location: String { get }
    func testMode() async throws(StoreError) -> Bool
    func status(of channel: ChannelID) async throws(StoreError) -> ChannelStatus
    func list(setting filter: ChannelSetting?) async throws(StoreError) -> [ChannelStatus]
    func mayStartCall(in channel: ChannelID, isAdmin: Bool) async throws(StoreError) -> CallStartDecision
    func history(channel: ChannelID?, limit: Int) async throws(StoreError) -> [AuditEntry]
    @discardableResult
    func set(_ setting: ChannelSetting, for channels: [ChannelID], actor: String, at date: Date) async throws(StoreError)
        -> [SettingChange]
    @discardableResult
    func setTestMode(_ on: Bool, actor: String, at date: Date) async throws(StoreError) -> Bool
}

extension SettingsStore: ChannelSettingsStoring {
    public var location: String { path }
}

extension ChannelStatus {
    /// The status of `channel` with `setting` (nil: never configured) under `testMode`.
    public static func make(
        channel: ChannelID, setting: ChannelSetting?, updatedAt: Date?, updatedBy: String?, testMode: Bool
    ) -> ChannelStatus {
        let setting = setting ?? .unset
        return ChannelStatus(
            id: channel, setting: setting,
            callsAllowed: CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: false, channel: channel).isAllowed,
            adminCallsAllowed: CallPolicy.decide(setting: setting, testMode: testMode, isAdmin: true, channel: channel).isAllowed,
            updatedAt: updatedAt, updatedBy: updatedBy)
    }
}
