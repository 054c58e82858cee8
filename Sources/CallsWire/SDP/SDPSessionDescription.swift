/// An SDP error: what is wrong with a session description, in words a user can act on.
///
/// A struct with a private backing enum (STYLE §3.2 rule 10); compare ``code`` with the static members.
public struct SDPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case malformed, tooLarge, missingAudio, missingICECredentials, missingFingerprint, missingBundle,
                missingRTCPMux, noOpus, unsupported, duplicateMid
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A line is not `x=value`, a required line is missing, or a field does not parse (RFC 8866 §5).
        public static let malformed = Code(.malformed)
        /// The description exceeds the size limits (bytes, lines or media sections).
        public static let tooLarge = Code(.tooLarge)
        /// No usable `m=audio` section.
        public static let missingAudio = Code(.missingAudio)
        /// No `a=ice-ufrag`/`a=ice-pwd` (RFC 8839 §5.4), or invalid ones.
        public static let missingICECredentials = Code(.missingICECredentials)
        /// No usable `a=fingerprint` (RFC 8122 §5).
        public static let missingFingerprint = Code(.missingFingerprint)
        /// No `a=group:BUNDLE` containing the audio section (RFC 9143).
        public static let missingBundle = Code(.missingBundle)
        /// The audio section lacks `a=rtcp-mux` (RFC 5761).
        public static let missingRTCPMux = Code(.missingRTCPMux)
        /// The audio section offers no Opus codec.
        public static let noOpus = Code(.noOpus)
        /// Two media sections share one `a=mid` (RFC 8843 §7.1).
        public static let duplicateMid = Code(.duplicateMid)
        /// Something valid that this server does not do (e.g. `a=setup:passive` in an offer).
        public static let unsupported = Code(.unsupported)

        public var description: String { String(describing: base) }
    }

    public let code: Code
    /// A sentence saying exactly what is missing or wrong.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SDP \(code): \(message)" }
}

/// One `a=` attribute: `a=name` (a flag) or `a=name:value` (RFC 8866 §5.13).
public struct SDPAttribute: Hashable, Sendable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }

    /// The wire form without the `a=` prefix.
    public var text: String { value.map { "\(name):\($0)" } ?? name }
}

/// Helpers shared by the session level and media sections.
public protocol SDPAttributeContainer {
    var attributes: [SDPAttribute] { get }
}

extension SDPAttributeContainer {
    /// The value of the first attribute called `name` (empty string for a flag), or nil when absent.
    public func attribute(_ name: String) -> String? {
        for a in attributes where a.name == name { return a.value ?? "" }
        return nil
    }

    /// The values of every attribute called `name`, in order (flags give "").
    public func attributes(named name: String) -> [String] {
        attributes.compactMap { $0.name == name ? ($0.value ?? "") : nil }
    }

    /// Whether an attribute called `name` is present.
    public func hasAttribute(_ name: String) -> Bool {
        attributes.contains { $0.name == name }
    }
}

/// One media section (`m=` line and everything up to the next one, RFC 8866 §5.14).
public struct SDPMediaDescription: Hashable, Sendable, SDPAttributeContainer {
    /// `audio`, `video`, `application`, ...
    public var media: String
    /// The port; 0 rejects (or disables) the section (RFC 8866 §5.14, RFC 3264 §6).
    public var port: Int
    /// `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, ...
    public var proto: String
    /// Payload types (RTP) or format names.
    public var formats: [String]
    /// The `c=` value, if the section has one.
    public var connection: String?
    /// `b=` lines, kept verbatim.
    public var bandwidths: [String]
    public var attributes: [SDPAttribute]

    public init(
        media: String, port: Int, proto: String, formats: [String], connection: String? = nil,
        bandwidths: [String] = [], attributes: [SDPAttribute] = []
    ) {
        self.media = media
        self.port = port
        self.proto = proto
        self.formats = formats
        self.connection = connection
        self.bandwidths = bandwidths
        self.attributes = attributes
    }

    /// `a=mid` (RFC 9143 §6), or nil.
    public var mid: String? { attribute("mid") }
}

/// A parsed SDP session description (RFC 8866), lenient about lines WebRTC does not use but strict about
/// structure: every line is `<letter>=<value>`, `v=0` comes first, and `m=` lines are well formed.
///
/// Limits keep hostile input cheap: at most ``maximumBytes`` bytes, ``maximumLines`` lines and
/// ``maximumMediaSections`` media sections.
public struct SDPSessionDescription: Hashable, Sendable, SDPAttributeContainer {
    public static let maximumBytes = 128 * 1024
    public static let maximumLines = 4096
    public static let maximumMediaSections = 64

    public var origin: String
    public var sessionName: String
    public var connection: String?
    public var timing: String
    public var attributes: [SDPAttribute]
    public var media: [SDPMediaDescription]

    public init(
        origin: String = "- 0 0 IN IP4 127.0.0.1", sessionName: String = "-", connection: String? = nil,
        timing: String = "0 0", attributes: [SDPAttribute] = [], media: [SDPMediaDescription] = []
    ) {
        self.origin = origin
        self.sessionName = sessionName
        self.connection = connection
        self.timing = timing
        self.attributes = attributes
        self.media = media
    }

    /// Parses SDP text with CRLF or LF line ends.
    /// - Throws: ``SDPError`` naming the offending line (1-based) and what is wrong with it.
    public init(parsing text: String) throws(SDPError) {
        guard text.utf8.count <= Self.maximumBytes else {
            throw SDPError(.tooLarge, "the SDP is \(text.utf8.count) bytes; the limit is \(Self.maximumBytes)")
        }
        self.init()
        var sawVersion = false
        var sawOrigin = false
        var lineNumber = 0
        var current: SDPMediaDescription?
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard lines.count <= Self.maximumLines else {
            throw SDPError(.tooLarge, "the SDP has \(lines.count) lines; the limit is \(Self.maximumLines)")
        }
        for rawLine in lines {
            lineNumber += 1
            var line = Substring(rawLine)
            while line.last == "\r" { line = line.dropLast() }
            if line.isEmpty { continue }
            // RFC 8866 §5: CR appears only in a line end. A CR inside a line would survive parsing (as part of an m=
            // format, say) but not writing back and re-parsing, so the same SDP would mean two things; refuse it.
            if line.unicodeScalars.contains("\r") {
                throw SDPError(.malformed, "line \(lineNumber) contains a carriage return (CR) that does not end the line")
            }
            let bytes = Array(line.utf8.prefix(2))
            guard bytes.count == 2, bytes[1] == UInt8(ascii: "="),
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0])
            else {
                throw SDPError(.malformed, "line \(lineNumber) is not of the form <letter>=<value>: \"\(line.prefix(60))\"")
            }
            let type = Character(Unicode.Scalar(bytes[0]))
            let value = String(line.dropFirst(2))
            if !sawVersion {
                guard type == "v", value == "0" else {
                    throw SDPError(.malformed, "the SDP must start with v=0 (line \(lineNumber) is \"\(line.prefix(60))\")")
                }
                sawVersion = true
                continue
            }
            switch type {
            case "m":
                if let section = current { media.append(section) }
                guard media.count < Self.maximumMediaSections else {
                    throw SDPError(.tooLarge, "more than \(Self.maximumMediaSections) m= sections")
                }
                current = try Self.parseMediaLine(value, lineNumber: lineNumber)
            case "a":
                let attribute: SDPAttribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = SDPAttribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = SDPAttribute(value)
                }
                if current != nil { current!.attributes.append(attribute) } else { attributes.append(attribute) }
            case "c":
                if current != nil { current!.connection = value } else { connection = value }
            case "b":
                if current != nil { current!.bandwidths.append(value) }
            case "o" where current == nil:
                origin = value
                sawOrigin = true
            case "s" where current == nil:
                sessionName = value
            case "t" where current == nil:
                timing = value
            default:
                break  // i=, u=, e=, p=, r=, z=, k= and others: not used by WebRTC, ignored (RFC 8866 §5)
            }
        }
        if let section = current { media.append(section) }
        guard sawVersion else { throw SDPError(.malformed, "the SDP is empty (no v=0 line)") }
        guard sawOrigin else { throw SDPError(.malformed, "the SDP has no o= line") }
    }

    private static func parseMediaLine(_ value: String, lineNumber: Int) throws(SDPError) -> SDPMediaDescription {
        // RFC 8866 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3 else {
            throw SDPError(.malformed, "line \(lineNumber): m= needs <media> <port> <proto> [<fmt> ...], got \"\(value.prefix(60))\"")
        }
        let portField = fields[1].split(separator: "/", maxSplits: 1).first ?? ""
        guard let port = Int(portField), (0...65535).contains(port) else {
            throw SDPError(.malformed, "line \(lineNumber): m= port \"\(fields[1])\" is not a number in 0...65535")
        }
        return SDPMediaDescription(
            media: String(fields[0]), port: port, proto: String(fields[2]), formats: fields.dropFirst(3).map(String.init))
    }

    /// The description as SDP text with CRLF line ends (RFC 8866 §5).
    public var text: String {
        var out = "v=0\r\no=\(origin)\r\ns=\(sessionName)\r\n"
        if let connection { out += "c=\(connection)\r\n" }
        out += "t=\(timing)\r\n"
        for a in attributes { out += "a=\(a.text)\r\n" }
        for m in media {
            out += "m=\(m.media) \(m.port) \(m.proto)"
            for f in m.formats { out += " \(f)" }
            out += "\r\n"
            if let c = m.connection { out += "c=\(c)\r\n" }
            for b in m.bandwidths { out += "b=\(b)\r\n" }
            for a in m.attributes { out += "a=\(a.text)\r\n" }
        }
        return out
    }
}
