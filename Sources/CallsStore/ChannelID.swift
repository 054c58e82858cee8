/// A Mattermost channel id: exactly 26 characters of `[a-z0-9]`.
public struct ChannelID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// Validates `text` as a Mattermost id.
    /// - Throws: ``InvalidChannelID`` naming the bad id and what is wrong with it.
    public init(validating text: String) throws(InvalidChannelID) {
        let scalars = Array(text.unicodeScalars)
        if scalars.count != 26 {
            throw InvalidChannelID(id: text, problem: "is \(scalars.count) characters long, not 26")
        }
        if let bad = scalars.firstIndex(where: { !(("a"..."z").contains($0) || ("0"..."9").contains($0)) }) {
            throw InvalidChannelID(
                id: text, problem: "has \"\(scalars[bad])\" at position \(bad + 1); only a-z and 0-9 are allowed")
        }
        rawValue = text
    }

    /// For values already validated (read back from the database).
    init(trusted: String) { rawValue = trusted }

    public var description: String { rawValue }
    public static func < (lhs: ChannelID, rhs: ChannelID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A string that is not a Mattermost channel id.
public struct InvalidChannelID: Error, Sendable, Equatable, CustomStringConvertible {
    public let id: String
    public let problem: String
    public var description: String {
        "invalid channel id \"\(id)\": it \(problem). A channel id is 26 characters of a-z and 0-9, as shown in the channel's URL or by `mmctl channel list`."
    }
}
