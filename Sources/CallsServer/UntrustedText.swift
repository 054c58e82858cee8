import Logging

/// Text that came from a client (token claims, signaling messages, error messages quoting them): how to find
/// control characters in it, and how to put it into a log line without letting it forge lines or terminal escapes.
public enum UntrustedText {
    /// Longest untrusted text put into a log line, in characters; the rest is summarised.
    public static let logLimit = 200

    /// C0 controls (including NUL, newline, ESC), DEL, C1 controls, and the Unicode line and paragraph separators.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: return true
        default: return false
        }
    }

    /// Bidirectional overrides and isolates: harmless in data, but they can make a log line read differently from
    /// what it holds, so logs escape them too.
    static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    /// The first control character in `text` and its position (counted in Unicode scalars from 1), or nil.
    public static func firstControl(in text: String) -> (position: Int, scalar: Unicode.Scalar)? {
        for (i, scalar) in text.unicodeScalars.enumerated() where isControl(scalar) {
            return (i + 1, scalar)
        }
        return nil
    }

    /// A human name for a control character: "U+000A (line feed)".
    public static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        let name: String? =
            switch scalar.value {
            case 0x00: "NUL"
            case 0x09: "tab"
            case 0x0A: "line feed"
            case 0x0D: "carriage return"
            case 0x1B: "escape"
            case 0x7F: "delete"
            case 0x80...0x9F: "C1 control"
            case 0x2028: "line separator"
            case 0x2029: "paragraph separator"
            default: scalar.value < 0x20 ? "control character" : nil
            }
        return name.map { "\(code) (\($0))" } ?? code
    }

    /// `text` made safe for one log line: backslash and control characters escaped (`\n`, `\t`, `\r`, `\\`,
    /// `\x1B`, `\u{2028}`), and cut after ``logLimit`` characters with a note of how much was left out.
    public static func forLog(_ text: String, limit: Int = logLimit) -> String {
        var out = ""
        var count = 0
        var rest = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                rest += 1
                continue
            }
            count += 1
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isControl(scalar) || isBidiControl(scalar) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    if scalar.value <= 0xFF {
                        out += "\\x" + (hex.count == 1 ? "0" : "") + hex
                    } else {
                        out += "\\u{" + hex + "}"
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        if rest > 0 { out += "…(\(rest) more characters)" }
        return out
    }
}

extension Logger.MetadataValue {
    /// Untrusted text as a log metadata value, escaped by ``UntrustedText/forLog(_:limit:)``.
    static func untrusted(_ text: String) -> Logger.MetadataValue { .string(UntrustedText.forLog(text)) }
    /// Any value's description, escaped: for errors whose message may quote client input.
    static func untrusted(describing value: Any) -> Logger.MetadataValue {
        .string(UntrustedText.forLog(String(describing: value)))
    }
}
