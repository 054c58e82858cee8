/// An error raised while decoding or encoding a wire format in ``CallsWire``.
///
/// Decoding never traps on hostile input: every malformed byte sequence ends up here. The error says
/// *what* was wrong (``code``), *where* (``offset``, counted from the first byte handed to the decoder,
/// or from the start of the stream for the stream framers) and a human-readable ``detail``.
///
/// This is a struct with a private backing enum (STYLE §3.2 rule 10) so that new codes can be added
/// without breaking clients that switch over them; compare ``code`` against the static members.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case truncated
            case notSTUN
            case badMagicCookie
            case badLength
            case attributeOverrun
            case trailingBytes
            case valueTooLarge
            case invalidChannelNumber
            case frameTooLarge
            case unrecognizedFrame
            case invalidArgument
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input ended before the structure it announced (header, attribute, frame) was complete.
        public static let truncated = Code(.truncated)
        /// The first two bits of a STUN header were not zero (RFC 8489 §5), so this is not STUN.
        public static let notSTUN = Code(.notSTUN)
        /// Bytes 4–7 of a STUN header were not the magic cookie 0x2112A442 (RFC 8489 §5).
        public static let badMagicCookie = Code(.badMagicCookie)
        /// A length field is inconsistent (e.g. a STUN message length that is not a multiple of 4).
        public static let badLength = Code(.badLength)
        /// An attribute's length runs past the end of the message (RFC 8489 §14).
        public static let attributeOverrun = Code(.attributeOverrun)
        /// More bytes followed the structure than its length field allows.
        public static let trailingBytes = Code(.trailingBytes)
        /// A value is too large for its 16-bit length field (encoding side).
        public static let valueTooLarge = Code(.valueTooLarge)
        /// A TURN channel number outside 0x4000–0x4FFF (RFC 8656 §12).
        public static let invalidChannelNumber = Code(.invalidChannelNumber)
        /// A framed message is larger than the configured maximum.
        public static let frameTooLarge = Code(.frameTooLarge)
        /// A stream carried a frame that is neither STUN nor TURN ChannelData.
        public static let unrecognizedFrame = Code(.unrecognizedFrame)
        /// A caller-provided value cannot be represented on the wire.
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String {
            switch base {
            case .truncated: "truncated"
            case .notSTUN: "not STUN"
            case .badMagicCookie: "bad magic cookie"
            case .badLength: "bad length"
            case .attributeOverrun: "attribute overrun"
            case .trailingBytes: "trailing bytes"
            case .valueTooLarge: "value too large"
            case .invalidChannelNumber: "invalid channel number"
            case .frameTooLarge: "frame too large"
            case .unrecognizedFrame: "unrecognized frame"
            case .invalidArgument: "invalid argument"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// Byte offset at which the problem was detected.
    public var offset: Int
    /// A sentence describing the problem in terms of the input.
    public var detail: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of problem.
    ///   - offset: Byte offset of the problem in the input.
    ///   - detail: Human-readable explanation.
    public init(_ code: Code, at offset: Int, _ detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String { "\(code) at byte \(offset): \(detail)" }
}
