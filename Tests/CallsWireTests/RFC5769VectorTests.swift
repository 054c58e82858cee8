import NIOCore
import Testing

@testable import CallsWire

/// RFC 5769 §2 and RFC 8489 Appendix B.1 test vectors: decode byte for byte, verify MI/FP, and rebuild
/// each message from its parameters and compare the encoding exactly.
@Suite("RFC 5769 / RFC 8489 test vectors")
struct RFC5769VectorTests {
    static let shortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt"
    static let tid2 = STUNTransactionID(hex: "b7e7a701bc34d686fa87dfae")!
    static let tid4 = STUNTransactionID(hex: "78ad3433c6ad72c029da412e")!
    /// "マトリックス" — already unchanged by SASLprep/OpaqueString.
    static let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}"
    /// The RFC's password `The\u{00AD}M\u{00AA}tr\u{2168}` after SASLprep (reference §0.8).
    static let preparedPassword = "TheMatrIX"
    static var longTermKey: STUNKey {
        .longTerm(username: username, realm: "example.org", password: preparedPassword)
    }

    @Test func sampleRequest() throws {
        let bytes = try fixture("rfc5769-2.1-request.hex")
        #expect(bytes.count == 108)
        let m = try STUNMessage(decoding: bytes)
        #expect(m.method == .binding)
        #expect(m.messageClass == .request)
        #expect(m.transactionID == Self.tid2)
        #expect(m.software == "STUN test client")
        #expect(m.priority == 0x6e00_01ff)
        #expect(m.iceControlled == 0x932f_f9b1_5126_3b36)
        #expect(m.username == "evtj:h6vY")
        #expect(m.fingerprint == 0xe57a_3bcf)
        let key = STUNKey.shortTerm(password: Self.shortTermPassword)
        let v = m.verify(key: key)
        #expect(v.messageIntegrity == .passed)
        #expect(v.fingerprint == .passed)
        #expect(v.messageIntegritySHA256 == .absent)
        #expect(v.isAuthenticated)
        #expect(m.verifyIntegrity(key: key))
        #expect(m.verifyFingerprint())
        #expect(!m.verifyIntegrity(key: .shortTerm(password: "wrong")))

        let rebuilt = STUNMessage(
            method: .binding, messageClass: .request, transactionID: Self.tid2,
            attributes: [
                .software("STUN test client"), .priority(0x6e00_01ff), .iceControlled(0x932f_f9b1_5126_3b36),
                .username("evtj:h6vY"),
            ])
        // RFC 5769 pads with spaces (0x20); RFC 8489 §14 lets the sender choose.
        #expect(try rebuilt.encoded(integrity: .sha1(key), fingerprint: true, paddingByte: 0x20) == bytes)
        // Re-signing the decoded message itself replaces its MI and FP with identical ones.
        #expect(try m.encoded(integrity: .sha1(key), fingerprint: true, paddingByte: 0x20) == bytes)
        // With zero padding the bytes differ but the message still verifies.
        let zeroPadded = try STUNMessage(decoding: try rebuilt.encoded(integrity: .sha1(key), fingerprint: true))
        // Same attributes; only the MAC and CRC differ because they cover the padding bytes.
        #expect(zeroPadded.attributes.prefix(4) == m.attributes.prefix(4))
        #expect(zeroPadded.messageIntegrity != m.messageIntegrity)
        #expect(zeroPadded.verify(key: key).isAuthenticated)
    }

    @Test func sampleIPv4Response() throws {
        let bytes = try fixture("rfc5769-2.2-ipv4-response.hex")
        #expect(bytes.count == 80)
        let m = try STUNMessage(decoding: bytes)
        #expect(m.method == .binding)
        #expect(m.messageClass == .successResponse)
        #expect(m.software == "test vector")
        #expect(m.xorMappedAddress == STUNAddress("192.0.2.1:32853"))
        #expect(m.xorMappedAddress?.description == "192.0.2.1:32853")
        let key = STUNKey.shortTerm(password: Self.shortTermPassword)
        #expect(m.verifyIntegrity(key: key))
        #expect(m.verifyFingerprint())

        let rebuilt = STUNMessage(
            method: .binding, messageClass: .successResponse, transactionID: Self.tid2,
            attributes: [.software("test vector"), .xorMappedAddress(STUNAddress(ipv4: 0xC000_0201, port: 32853))])
        #expect(try rebuilt.encoded(integrity: .sha1(key), fingerprint: true, paddingByte: 0x20) == bytes)
    }

    @Test func sampleIPv6Response() throws {
        let bytes = try fixture("rfc5769-2.3-ipv6-response.hex")
        #expect(bytes.count == 92)
        let m = try STUNMessage(decoding: bytes)
        let address = try #require(m.xorMappedAddress)
        #expect(address.family == .ipv6)
        #expect(address.description == "[2001:db8:1234:5678:11:2233:4455:6677]:32853")
        let key = STUNKey.shortTerm(password: Self.shortTermPassword)
        #expect(m.verify(key: key).isAuthenticated)
        #expect(m.verifyFingerprint())

        let rebuilt = STUNMessage(
            method: .binding, messageClass: .successResponse, transactionID: Self.tid2,
            attributes: [.software("test vector"), .xorMappedAddress(address)])
        #expect(try rebuilt.encoded(integrity: .sha1(key), fingerprint: true, paddingByte: 0x20) == bytes)
    }

    @Test func longTermRequest() throws {
        let bytes = try fixture("rfc5769-2.4-long-term-request.hex")
        #expect(bytes.count == 116)
        let m = try STUNMessage(decoding: bytes)
        #expect(m.transactionID == Self.tid4)
        #expect(m.username == Self.username)
        #expect(m.nonce == "f//499k954d6OL34oL9FSTvy64sA")
        #expect(m.realm == "example.org")
        #expect(Self.longTermKey.bytes == hexBytes("e8ca7ad59d5eb0518e312911d2dab2a9"))
        let v = m.verify(key: Self.longTermKey)
        #expect(v.messageIntegrity == .passed)
        #expect(v.fingerprint == .absent)
        #expect(!m.verifyFingerprint())

        let rebuilt = STUNMessage(
            method: .binding, messageClass: .request, transactionID: Self.tid4,
            attributes: [.username(Self.username), .nonce("f//499k954d6OL34oL9FSTvy64sA"), .realm("example.org")])
        #expect(try rebuilt.encoded(integrity: .sha1(Self.longTermKey)) == bytes)
    }

    @Test func rfc8489SHA256Request() throws {
        let bytes = try fixture("rfc8489-b1-sha256-request.hex")
        #expect(bytes.count == 156)
        let m = try STUNMessage(decoding: bytes)
        let userhash = STUNKey.userhash(username: Self.username, realm: "example.org")
        #expect(userhash == hexBytes("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704"))
        #expect(m.userhash == userhash)
        #expect(m.nonce == "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
        #expect(m.realm == "example.org")
        #expect(m.passwordAlgorithm == nil)
        // Reference §0.8: no PASSWORD-ALGORITHM means MD5, so the MD5 key verifies and SHA-256 does not.
        let v = m.verify(key: Self.longTermKey)
        #expect(v.messageIntegritySHA256 == .passed)
        #expect(v.messageIntegrity == .absent)
        #expect(v.isAuthenticated)
        let sha256Key = STUNKey.longTerm(
            username: Self.username, realm: "example.org", password: Self.preparedPassword, algorithm: .sha256)
        #expect(sha256Key.bytes.count == 32)
        #expect(!m.verifyIntegrity(key: sha256Key))

        let rebuilt = STUNMessage(
            method: .binding, messageClass: .request, transactionID: Self.tid4,
            attributes: [.userhash(userhash), .nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"), .realm("example.org")])
        #expect(try rebuilt.encoded(integrity: .sha256(Self.longTermKey)) == bytes)
    }

    @Test func byteBufferEntryPointKeepsWireBytes() throws {
        let bytes = try fixture("rfc5769-2.1-request.hex")
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB] + bytes)
        buffer.moveReaderIndex(forwardBy: 2)
        let m = try STUNMessage(decoding: buffer)
        #expect(m.originalBytes.map { Array($0.readableBytesView) } == bytes)
        #expect(m.verify(key: .shortTerm(password: Self.shortTermPassword)).isAuthenticated)
        // Any mutation drops the wire bytes; verification then uses the canonical encoding (MI stale).
        var changed = m
        changed.attributes.insert(.software("x"), at: 0)
        #expect(changed.originalBytes == nil)
        #expect(changed.verify(key: .shortTerm(password: Self.shortTermPassword)).messageIntegrity == .failed)
    }
}
