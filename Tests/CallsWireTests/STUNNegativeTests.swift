import NIOCore
import Testing

@testable import CallsWire

@Suite("STUN malformed input")
struct STUNNegativeTests {
    static let key = STUNKey.shortTerm(password: "VOkJxbRl1RmTxUk/WvJxBt")

    @Test func flippedByte27BreaksFingerprint() throws {
        var bytes = try fixture("rfc5769-2.1-request.hex")
        bytes[27] ^= 0x01  // inside SOFTWARE (rfc5769check.c uses the same byte)
        let m = try STUNMessage(decoding: bytes)
        #expect(!m.verifyFingerprint())
        #expect(m.verify(key: Self.key).fingerprint == .failed)
        #expect(m.verify(key: Self.key).messageIntegrity == .failed)
    }

    @Test func flippedByte32OfLongTermBreaksIntegrity() throws {
        var bytes = try fixture("rfc5769-2.4-long-term-request.hex")
        bytes[32] ^= 0x01
        let m = try STUNMessage(decoding: bytes)
        #expect(!m.verifyIntegrity(key: RFC5769VectorTests.longTermKey))
        #expect(m.verify(key: RFC5769VectorTests.longTermKey).messageIntegrity == .failed)
    }

    @Test func flippedMACByteFailsSHA256() throws {
        var bytes = try fixture("rfc8489-b1-sha256-request.hex")
        bytes[bytes.count - 1] ^= 0x80
        let m = try STUNMessage(decoding: bytes)
        #expect(m.verify(key: RFC5769VectorTests.longTermKey).messageIntegritySHA256 == .failed)
    }

    @Test(arguments: [0, 1, 19, 20, 50, 107])
    func truncatedMessagesFailCleanly(length: Int) throws {
        let bytes = try fixture("rfc5769-2.1-request.hex")
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes.prefix(length)) }
        #expect(error?.code == .truncated)
        #expect(error?.offset == length)
    }

    @Test func badCookie() throws {
        var bytes = try fixture("rfc5769-2.2-ipv4-response.hex")
        bytes[5] = 0x13
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes) }
        #expect(error?.code == .badMagicCookie)
        #expect(error?.offset == 4)
        #expect(error?.description.contains("0x2113a442") == true)
        #expect(!STUNMessage.isProbablySTUN(bytes))
    }

    @Test func lengthNotMultipleOfFour() throws {
        var bytes = try fixture("rfc5769-2.2-ipv4-response.hex")
        bytes[3] = 0x3d
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes) }
        #expect(error?.code == .badLength)
        #expect(error?.offset == 2)
    }

    @Test func firstBitsMustBeZero() throws {
        var bytes = try fixture("rfc5769-2.2-ipv4-response.hex")
        bytes[0] = 0x41
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes) }
        #expect(error?.code == .notSTUN)
    }

    @Test func attributeOverrunningMessage() throws {
        var bytes = try fixture("rfc5769-2.2-ipv4-response.hex")
        bytes[23] = 0x40  // SOFTWARE claims 64 bytes, 60 remain after its header
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes) }
        #expect(error?.code == .attributeOverrun)
        #expect(error?.offset == 20)
        #expect(error?.detail.contains("SOFTWARE") == true)
    }

    @Test func trailingBytesAfterMessage() throws {
        let bytes = try fixture("rfc5769-2.2-ipv4-response.hex") + [0, 0, 0, 0]
        let error = #expect(throws: WireError.self) { try STUNMessage(decoding: bytes) }
        #expect(error?.code == .trailingBytes)
        #expect(error?.offset == 80)
    }

    @Test func malformedKnownAttributeIsKeptRaw() throws {
        // XOR-MAPPED-ADDRESS with family 0x03 and a PRIORITY of 3 bytes: both stay raw, decode succeeds.
        let m = STUNMessage(method: .binding, messageClass: .successResponse, attributes: [
            .raw(type: .xorMappedAddress, value: [0, 3, 0, 1, 1, 2, 3, 4]),
            .raw(type: .priority, value: [1, 2, 3]),
            .raw(type: .username, value: [0xFF, 0xFE]),
        ])
        let decoded = try STUNMessage(decoding: try m.encoded())
        #expect(decoded == m)
        #expect(decoded.xorMappedAddress == nil)
        #expect(decoded.priority == nil)
        #expect(decoded.username == nil)
    }

    @Test func errorCodeWithNULPaddedReason() throws {
        // coturn 4.6.1: "Mismatched allocation: wrong transaction ID\0"
        let reason = Array("Mismatched allocation: wrong transaction ID".utf8) + [0]
        let m = STUNMessage(method: .allocate, messageClass: .errorResponse, attributes: [
            .raw(type: .errorCode, value: [0, 0, 4, 37] + reason)
        ])
        let decoded = try STUNMessage(decoding: try m.encoded())
        #expect(decoded.errorCode == STUNErrorCode(code: 437, reason: "Mismatched allocation: wrong transaction ID"))
        #expect(decoded.errorCode?.description == "437 Mismatched allocation: wrong transaction ID")
    }

    @Test func attributesAfterIntegrityAreIgnored() throws {
        var buffer = try STUNMessage(method: .binding, messageClass: .request, attributes: [.username("a:b")])
            .encodedBuffer(integrity: .sha1(Self.key))
        // Append a SOFTWARE and a USERNAME after MESSAGE-INTEGRITY and fix up the header length.
        let extra: [UInt8] = [0x80, 0x22, 0x00, 0x04] + Array("evil".utf8) + [0x00, 0x06, 0x00, 0x03, 0x78, 0x3a, 0x79, 0x00]
        buffer.writeBytes(extra)
        buffer.setInteger(UInt16(buffer.readableBytes - 20), at: 2)
        let m = try STUNMessage(decoding: buffer)
        #expect(m.attributes.count == 4)
        #expect(m.username == "a:b")
        #expect(m.software == nil)
        let v = m.verify(key: Self.key)
        #expect(v.messageIntegrity == .passed)
        #expect(v.ignoredAttributes == [.software, .username])
        #expect(m.ignoredAttributeTypes == [.software, .username])
    }

    @Test func fingerprintMustBeLast() throws {
        var buffer = try STUNMessage(method: .binding, messageClass: .request).encodedBuffer(fingerprint: true)
        buffer.writeBytes([0x80, 0x22, 0x00, 0x00])
        buffer.setInteger(UInt16(buffer.readableBytes - 20), at: 2)
        let m = try STUNMessage(decoding: buffer)
        #expect(m.verify(key: nil).fingerprint == .failed)
    }

    @Test func unknownComprehensionRequired() throws {
        let m = STUNMessage(method: .binding, messageClass: .request, attributes: [
            .raw(type: STUNAttributeType(rawValue: 0x7777), value: [1]),
            .raw(type: STUNAttributeType(rawValue: 0xC001), value: []),
            .username("u"),
        ])
        let decoded = try STUNMessage(decoding: try m.encoded())
        #expect(decoded.unknownComprehensionRequiredAttributes == [STUNAttributeType(rawValue: 0x7777)])
    }

    @Test func encodingRejectsOversizedValues() throws {
        let m = STUNMessage(method: .send, messageClass: .indication, attributes: [.data([UInt8](repeating: 1, count: 70_000))])
        let error = #expect(throws: WireError.self) { try m.encoded() }
        #expect(error?.code == .valueTooLarge)
        var buffer = ByteBuffer(bytes: [9, 9])
        #expect(throws: WireError.self) { try buffer.writeSTUNMessage(m) }
        #expect(buffer.readableBytes == 2)  // rewound on failure
        let big = STUNMessage(method: .send, messageClass: .indication,
                              attributes: Array(repeating: .data([UInt8](repeating: 1, count: 40_000)), count: 2))
        #expect(throws: WireError.self) { try big.encoded() }
        #expect(throws: WireError.self) {
            try STUNMessage(method: .binding, messageClass: .errorResponse, attributes: [.errorCode(STUNErrorCode(code: 900))]).encoded()
        }
        #expect(throws: WireError.self) {
            try STUNMessage(method: .binding, messageClass: .request)
                .encoded(integrity: STUNIntegrity(key: Self.key, messageIntegrity: false, sha256Length: 7))
        }
    }
}

@Suite("Replies")
struct ReplyTests {
    @Test func responsesKeepMethodAndTransaction() throws {
        let request = try STUNMessage(decoding: try fixture("rfc5769-2.1-request.hex"))
        let ok = request.response(attributes: [.xorMappedAddress(STUNAddress("192.0.2.1:32853")!)])
        #expect(ok.method == .binding && ok.messageClass == .successResponse && ok.transactionID == request.transactionID)
        let conflict = request.errorResponse(code: STUNErrorCode.roleConflict)
        let decoded = try STUNMessage(decoding: try conflict.encoded(fingerprint: true))
        #expect(decoded.errorCode == STUNErrorCode(code: 487, reason: "Role Conflict"))
        #expect(decoded.messageClass == .errorResponse)
        #expect(try conflict.encoded()[0...1] == [0x01, 0x11])
    }
}

@Suite("Classic RFC 3489 servers")
struct ClassicServerTests {
    /// stund (Debian's stun-server) answers with MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS and a SOFTWARE
    /// value with a NUL inside its 16 bytes.
    @Test func changedAddressAndPaddedSoftwareAreRead() throws {
        let message = STUNMessage(
            method: .binding, messageClass: .successResponse,
            attributes: [
                .mappedAddress(STUNAddress("198.51.100.7:40000")!), .changedAddress(STUNAddress("203.0.113.2:3479")!),
                .software("Vovida.org 0.97\u{0}"),
            ])
        let decoded = try STUNMessage(decoding: try message.encoded())
        #expect(decoded.changedAddress == STUNAddress("203.0.113.2:3479"))
        #expect(decoded.otherAddress == nil)
        #expect(decoded.software == "Vovida.org 0.97")
        // The attribute itself keeps the bytes as sent.
        #expect(decoded.attributes.contains(.software("Vovida.org 0.97\u{0}")))
    }
}
