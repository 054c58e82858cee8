import CallsWire
import Foundation
import Testing

@testable import CallsServer

/// docs/protocol.md is the contract for client writers: its JSON examples must be exactly what the message types
/// (`Signaling`, the ones the server encodes and decodes) read and write, every message type must have an example,
/// and every error code and event name must be documented. A change to a message type without the document fails
/// here.
@Suite("docs/protocol.md agrees with the signaling message types")
struct ProtocolDocTests {
    static func document() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/protocol.md")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Each line of each ```json block that is a JSON object with a "type".
    static func examples() throws -> [(line: String, type: String)] {
        var out: [(String, String)] = []
        var inJSON = false
        for line in try document().components(separatedBy: "\n") {
            if line.hasPrefix("```") {
                inJSON = line == "```json" && !inJSON
                continue
            }
            guard inJSON, line.hasPrefix("{"),
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let type = object["type"] as? String
            else { continue }
            out.append((line, type))
        }
        return out
    }

    /// Decodes `line` as `T` and encodes it again; the two must hold the same JSON (key order aside).
    static func roundTrip<T: Codable>(_ type: T.Type, _ line: String) -> String? {
        let decoded: T
        do {
            decoded = try Signaling.decode(T.self, from: line)
        } catch {
            return "does not decode as \(T.self): \(error)"
        }
        let again = Signaling.encode(decoded)
        guard let a = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? NSDictionary,
            let b = try? JSONSerialization.jsonObject(with: Data(again.utf8)) as? NSDictionary
        else { return "is not a JSON object" }
        return a.isEqual(b) ? nil : "differs from what \(T.self) writes: \(again)"
    }

    static func check(type: String, line: String) -> String? {
        if let client = Signaling.ClientType(rawValue: type) {
            switch client {
            case .join: return roundTrip(Signaling.Join.self, line)
            case .offer: return roundTrip(Signaling.Offer.self, line)
            case .ice: return roundTrip(Signaling.ICE.self, line)
            case .reaction: return roundTrip(Signaling.Reaction.self, line)
            case .leave, .mute, .unmute, .screenStart, .screenStop, .raiseHand, .lowerHand, .ping:
                return roundTrip(Signaling.Bare.self, line)
            }
        }
        guard let server = Signaling.ServerType(rawValue: type) else { return "names no message type" }
        switch server {
        case .joined: return roundTrip(Signaling.Joined.self, line)
        case .renegotiate: return roundTrip(Signaling.Renegotiate.self, line)
        case .speakers: return roundTrip(Signaling.Speakers.self, line)
        case .event: return roundTrip(Signaling.Event.self, line)
        case .answer: return roundTrip(Signaling.Answer.self, line)
        case .connected: return roundTrip(Signaling.Connected.self, line)
        case .closed: return roundTrip(Signaling.Closed.self, line)
        case .error: return roundTrip(Signaling.ErrorReply.self, line)
        case .redirect: return roundTrip(Signaling.Redirect.self, line)
        case .screenOK, .left, .pong: return roundTrip(Signaling.Bare.self, line)
        }
    }

    @Test func everyExampleIsWhatTheTypesWrite() throws {
        let examples = try Self.examples()
        #expect(examples.count >= 20)
        for (line, type) in examples {
            if let problem = Self.check(type: type, line: line) {
                Issue.record("docs/protocol.md example \(line.prefix(120)) \(problem)")
            }
        }
    }

    @Test func everyMessageTypeHasAnExample() throws {
        let documented = Set(try Self.examples().map(\.type))
        for t in Signaling.ClientType.allCases.map(\.rawValue) + Signaling.ServerType.allCases.map(\.rawValue) {
            #expect(documented.contains(t), "docs/protocol.md has no ```json example of \"\(t)\"")
        }
    }

    @Test func everyErrorCodeAndEventIsDocumented() throws {
        let text = try Self.document()
        for code in SignalingErrorCode.allCases.map(\.rawValue) + ["join_timeout"] {
            #expect(text.contains("| `\(code)` |"), "the error table of docs/protocol.md lacks `\(code)`")
        }
        for name in Signaling.Event.Name.allCases.map(\.rawValue) {
            #expect(text.contains("`\(name)`"), "docs/protocol.md does not name the event `\(name)`")
        }
    }

    @Test func theSDPLimitsAreTheParser() throws {
        let text = try Self.document()
        let grouped = { (n: Int) in n.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) }
        #expect(text.contains("at most \(grouped(SDPSessionDescription.maximumBytes)) bytes (128 KiB)"))
        #expect(text.contains("\(grouped(SDPSessionDescription.maximumLines)) lines"))
        #expect(text.contains("\(SDPSessionDescription.maximumMediaSections) `m=` sections"))
    }

    /// What the server writes is what the types write: a reply seen on a real socket decodes as its type and
    /// re-encodes to the same text (the encoder's key order is stable).
    @Test func encodingIsStableAndCompact() throws {
        let joined = Signaling.Joined(
            sessionId: "s1", channel: "c", user: "alice", iceServers: [Signaling.ICEServer(urls: ["stun:a.example:3478"])],
            echo: false, call: .init(participants: [], presenter: nil, audioSlots: 3, videoSlots: 0))
        let text = Signaling.encode(joined)
        #expect(text.contains(#""presenter":null"#))
        #expect(text.contains(#""urls":["stun:a.example:3478"]"#))  // slashes are not escaped
        #expect(Signaling.encode(try Signaling.decode(Signaling.Joined.self, from: text)) == text)
        let echo = Signaling.Joined(sessionId: "s1", channel: "c", user: "a", iceServers: [], echo: true, call: nil)
        #expect(!Signaling.encode(echo).contains("presenter"))
        let slot = Signaling.Speakers(slots: [.init(slot: 0, mid: nil, ssrc: 7, participant: nil)])
        #expect(Signaling.encode(slot) == #"{"slots":[{"mid":null,"participant":null,"slot":0,"ssrc":7}],"type":"speakers","v":2}"#)
        // `ice` needs its candidate field, which may be null.
        #expect(throws: (any Error).self) { try Signaling.decode(Signaling.ICE.self, from: #"{"type":"ice"}"#) }
        #expect(try Signaling.decode(Signaling.ICE.self, from: #"{"type":"ice","candidate":null}"#).candidate == nil)
    }
}
