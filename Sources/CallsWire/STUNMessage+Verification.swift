import Crypto
import NIOCore

/// The outcome of checking a message's MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
public struct STUNVerification: Sendable, Hashable, CustomStringConvertible {
    /// The result of one check.
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        /// The attribute is not in the message (or is ignored because of its position).
        case absent
        /// The attribute is present and correct.
        case passed
        /// The attribute is present and wrong (or malformed, or FINGERPRINT is not last).
        case failed
        /// The attribute is present but no key was given.
        case notChecked

        public var description: String {
            switch self {
            case .absent: "absent"
            case .passed: "passed"
            case .failed: "failed"
            case .notChecked: "not checked"
            }
        }
    }

    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    public var messageIntegrity: Status
    /// MESSAGE-INTEGRITY-SHA256.
    public var messageIntegritySHA256: Status
    /// FINGERPRINT.
    public var fingerprint: Status
    /// Attributes after an integrity attribute or FINGERPRINT that RFC 8489 §14.5–§14.7 says to ignore
    /// (they are not covered by the MAC, so must not be trusted).
    public var ignoredAttributes: [STUNAttributeType]

    /// At least one MAC passed and none failed.
    public var isAuthenticated: Bool {
        (messageIntegrity == .passed || messageIntegritySHA256 == .passed)
            && messageIntegrity != .failed && messageIntegritySHA256 != .failed
    }

    public var description: String {
        var s = "MI \(messageIntegrity), MI-SHA256 \(messageIntegritySHA256), FINGERPRINT \(fingerprint)"
        if !ignoredAttributes.isEmpty { s += ", ignored \(ignoredAttributes)" }
        return s
    }
}

extension STUNMessage {
    /// Checks integrity and fingerprint against the bytes this message was decoded from (or against its
    /// own encoding if it was built in code).
    ///
    /// MACs are computed as RFC 8489 §14.5/§14.6 prescribe: over the message up to the attribute, with
    /// the header length set to end at that attribute. Only the *first* MESSAGE-INTEGRITY and
    /// MESSAGE-INTEGRITY-SHA256 in an admissible position count; attributes after them other than
    /// MESSAGE-INTEGRITY-SHA256/FINGERPRINT are reported in ``STUNVerification/ignoredAttributes``.
    /// FINGERPRINT must be the last attribute (§14.7). MACs are compared in constant time.
    /// - Parameter key: The HMAC key, or `nil` to check only FINGERPRINT.
    public func verify(key: STUNKey?) -> STUNVerification {
        var result = STUNVerification(
            messageIntegrity: .absent, messageIntegritySHA256: .absent, fingerprint: .absent, ignoredAttributes: [])
        let bytes: ByteBuffer
        if let wire {
            bytes = wire
        } else if let encoded = try? encodedBuffer() {
            bytes = encoded
        } else {
            result.messageIntegrity = attributes.contains { $0.type == .messageIntegrity } ? .failed : .absent
            return result
        }
        bytes.withUnsafeReadableBytes { p in
            STUNMessage.verify(p, key: key, into: &result)
        }
        return result
    }

    /// `true` if the message carries a MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 that verifies with
    /// `key` and none that fails. See ``verify(key:)``.
    public func verifyIntegrity(key: STUNKey) -> Bool { verify(key: key).isAuthenticated }

    /// `true` if FINGERPRINT is present, last, and correct.
    public func verifyFingerprint() -> Bool { verify(key: nil).fingerprint == .passed }

    private static func verify(_ p: UnsafeRawBufferPointer, key: STUNKey?, into result: inout STUNVerification) {
        guard p.count >= stunHeaderSize else { return }
        let total = min(p.count, stunHeaderSize + (Int(p[2]) << 8 | Int(p[3])))
        var gate = IntegrityGate()
        var offset = stunHeaderSize
        while total - offset >= 4 {
            let type = STUNAttributeType(rawValue: UInt16(p[offset]) << 8 | UInt16(p[offset + 1]))
            let length = Int(p[offset + 2]) << 8 | Int(p[offset + 3])
            let next = offset + 4 + paddedLength(length)
            guard length <= total - offset - 4 else { return }
            let value = UnsafeRawBufferPointer(rebasing: p[(offset + 4)..<(offset + 4 + length)])
            let prefix = UnsafeRawBufferPointer(rebasing: p[0..<offset])

            guard gate.admit(type) else {
                result.ignoredAttributes.append(type)
                offset = next
                continue
            }
            switch type {
            case .messageIntegrity:
                if let key {
                    let ok = length == 20 && STUNMessage.macMatches(
                        Insecure.SHA1.self, key: key, prefix: prefix, mac: value, attributeEnd: offset + 4 + length)
                    result.messageIntegrity = ok ? .passed : .failed
                } else {
                    result.messageIntegrity = .notChecked
                }
            case .messageIntegritySHA256:
                if let key {
                    let ok = length >= 16 && length <= 32 && length % 4 == 0 && STUNMessage.macMatches(
                        SHA256.self, key: key, prefix: prefix, mac: value, attributeEnd: offset + 4 + length)
                    result.messageIntegritySHA256 = ok ? .passed : .failed
                } else {
                    result.messageIntegritySHA256 = .notChecked
                }
            case .fingerprint:
                // RFC 8489 §14.7: "When present, the FINGERPRINT attribute MUST be the last attribute."
                // The header length, as received, already covers FINGERPRINT, so the CRC runs over the
                // unmodified prefix.
                var ok = length == 4 && next == total
                if ok {
                    let received = UInt32(value[0]) << 24 | UInt32(value[1]) << 16 | UInt32(value[2]) << 8
                        | UInt32(value[3])
                    ok = CRC32.update(0, prefix) ^ fingerprintXOR == received
                }
                result.fingerprint = ok ? .passed : .failed
            default:
                break
            }
            offset = next
        }
    }

    private static func macMatches<H: HashFunction>(
        _ h: H.Type, key: STUNKey, prefix: UnsafeRawBufferPointer, mac: UnsafeRawBufferPointer, attributeEnd: Int
    ) -> Bool {
        let bodyLength = attributeEnd - stunHeaderSize
        guard prefix.count >= stunHeaderSize, bodyLength <= 0xFFFF else { return false }
        return stunHMAC(H.self, key: key, prefix: prefix, patchedLength: UInt16(bodyLength)) { e in
            guard e.count >= mac.count else { return false }
            // Constant time: no early exit on the first differing byte.
            var diff: UInt8 = 0
            for i in 0..<mac.count { diff |= e[i] ^ mac[i] }
            return diff == 0
        }
    }
}
