import Foundation

/// A channel's explicit calls setting (the Calls plugin's per-channel switch).
public enum ChannelSetting: String, Sendable, Codable, CaseIterable {
    case enabled
    case disabled
    /// No explicit choice: the server-wide test mode decides.
    case unset
}

/// What the store knows about one channel, and the policy that follows from it.
public struct ChannelStatus: Sendable, Equatable {
    public let id: ChannelID
    public let setting: ChannelSetting
    /// Whether a regular (non-admin) participant may start a call here now.
    public let callsAllowed: Bool
    /// Whether an admin may start a call here now (admins may test in unset channels under test mode).
    public let adminCallsAllowed: Bool
    /// When the setting last changed; nil for a channel never configured.
    public let updatedAt: Date?
    public let updatedBy: String?
}

/// The decision taken when someone tries to start a call (DESIGN.md §5).
public enum CallStartDecision: Sendable, Equatable {
    case allowed
    case refused(reason: String)

    public var isAllowed: Bool { if case .allowed = self { true } else { false } }
}

/// The Calls plugin's rules, as a pure function so tests can enumerate them.
public enum CallPolicy {
    /// May a call start in a channel with `setting`, given test mode and the starter's role?
    public static func decide(setting: ChannelSetting, testMode: Bool, isAdmin: Bool, channel: ChannelID)
        -> CallStartDecision
    {
        switch (setting, testMode) {
        case (.disabled, _):
            return .refused(
                reason:
                    "calls are disabled in channel \(channel); run `callsctl channel enable \(channel)` to allow them")
        case (.enabled, _), (.unset, false):
            return .allowed
        case (.unset, true):
            if isAdmin { return .allowed }
            return .refused(
                reason:
                    "test mode is on and calls are not enabled in channel \(channel); run `callsctl channel enable \(channel)` (or `callsctl channel testmode off`)"
            )
        }
    }
}

/// One row of the audit log: a change of a channel's setting or of test mode.
public struct AuditEntry: Sendable, Equatable {
    public enum Subject: String, Sendable, Codable {
        case channel
        case testMode
    }
    public let sequence: Int64
    public let subject: Subject
    /// The channel, for `.channel` entries.
    public let channel: ChannelID?
    public let oldValue: String
    public let newValue: String
    public let changedAt: Date
    public let actor: String

    public init(
        sequence: Int64, subject: Subject, channel: ChannelID?, oldValue: String, newValue: String, changedAt: Date, actor: String
    ) {
        self.sequence = sequence
        self.subject = subject
        self.channel = channel
        self.oldValue = oldValue
        self.newValue = newValue
        self.changedAt = changedAt
        self.actor = actor
    }
}

/// The outcome of setting one channel.
public struct SettingChange: Sendable, Equatable {
    public let channel: ChannelID
    public let oldSetting: ChannelSetting
    public let newSetting: ChannelSetting
    public var changed: Bool { oldSetting != newSetting }

    public init(channel: ChannelID, oldSetting: ChannelSetting, newSetting: ChannelSetting) {
        self.channel = channel
        self.oldSetting = oldSetting
        self.newSetting = newSetting
    }
}
