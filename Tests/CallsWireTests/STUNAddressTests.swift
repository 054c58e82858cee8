import Testing

@testable import CallsWire

@Suite("STUNAddress and small types")
struct STUNAddressTests {
    @Test(arguments: [
        "1.2.3.4:5", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:5", "[::]:3478", "[2001:db8::1]:443",
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[fe80::1:0:0:1]:1", "[::ffff:192.0.2.1]:80",
        "[2001:db8:0:1:1:1:1:1]:9", "[1::]:1",
    ])
    func parseAndPrintCanonical(text: String) throws {
        let a = try #require(STUNAddress(text))
        #expect(a.description == text)
        #expect(STUNAddress(a.description) == a)
    }

    @Test func nonCanonicalInputsNormalise() {
        #expect(STUNAddress("[2001:DB8:0:0:0:0:0:1]:1")?.description == "[2001:db8::1]:1")
        #expect(STUNAddress("[0:0:0:0:0:0:0:1]:1")?.description == "[::1]:1")
        #expect(STUNAddress("[2001:db8:0:0:1:0:0:1]:1")?.description == "[2001:db8::1:0:0:1]:1")
        #expect(STUNAddress(ip: "10.0.0.1", port: 3478)?.description == "10.0.0.1:3478")
        #expect(STUNAddress(ip: "::1", port: 1)?.isLoopback == true)
    }

    @Test(arguments: [
        "", "1.2.3.4", "1.2.3:4", "1.2.3.4.5:6", "256.1.1.1:1", "01.2.3.4:5", "1.2.3.4:65536", "1.2.3.4:",
        "[::1]", "[::1]:", "::1:5", "[1:2:3:4:5:6:7:8:9]:1", "[1::2::3]:1", "[:1]:1", "[1:]:1", "[g::]:1",
        "[12345::]:1", "[::1%eth0]:1", "[1:2:3:4:5:6:7::8]:1x",
    ])
    func rejectsBadText(text: String) {
        #expect(STUNAddress(text) == nil)
    }

    @Test func bytesAndClassification() {
        let v4 = STUNAddress(family: .ipv4, ipBytes: [192, 168, 1, 2], port: 9)
        #expect(v4?.ipv4 == 0xC0A8_0102)
        #expect(v4?.ipBytes == [192, 168, 1, 2])
        #expect(v4?.isPrivate == true)
        #expect(STUNAddress(family: .ipv4, ipBytes: [1, 2, 3], port: 9) == nil)
        let v6 = STUNAddress(family: .ipv6, ipBytes: (1...16).map { UInt8($0) }, port: 1)
        #expect(v6?.ipBytes == (1...16).map { UInt8($0) })
        #expect(STUNAddress("100.64.0.1:1")?.isPrivate == true)
        #expect(STUNAddress("100.128.0.1:1")?.isPrivate == false)
        #expect(STUNAddress("172.31.255.255:1")?.isPrivate == true)
        #expect(STUNAddress("172.32.0.0:1")?.isPrivate == false)
        #expect(STUNAddress("8.8.8.8:53")?.isPrivate == false)
        #expect(STUNAddress("[fd00::1]:1")?.isPrivate == true)
        #expect(STUNAddress("[2001:db8::1]:1")?.isPrivate == false)
    }

    @Test func transactionID() {
        let tid = STUNTransactionID(hex: "b7e7a701bc34d686fa87dfae")
        #expect(tid?.description == "b7e7a701bc34d686fa87dfae")
        #expect(tid?.bytes == hexBytes("b7e7a701bc34d686fa87dfae"))
        #expect(STUNTransactionID(bytes: [1, 2, 3]) == nil)
        #expect(STUNTransactionID.random() != STUNTransactionID.random())
    }

    @Test func keysAndNames() {
        #expect(STUNKey.shortTerm(password: "abc").bytes == [0x61, 0x62, 0x63])
        #expect(STUNKey(bytes: [1, 2]) == STUNKey(bytes: [1, 2]))
        #expect(STUNKey(bytes: [1, 2]) != STUNKey(bytes: [1, 3]))
        #expect(!"\(STUNKey(bytes: [0x41]))".contains("41"))
        #expect(STUNAttributeType.xorMappedAddress.description == "XOR-MAPPED-ADDRESS")
        #expect(STUNAttributeType(rawValue: 0xC0DE).description == "0xc0de")
        #expect(STUNMethod.createPermission.description == "CreatePermission")
        #expect(STUNErrorCode(code: 438).reason == "Stale Nonce")
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)  // the standard check value
    }
}

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
    static func valid(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { isValidUTF8($0) } }

    @Test func acceptsWellFormed() {
        for s in ["", "abc", "é", "マトリックス", "😀", "\u{10FFFF}", "\u{D7FF}", "\u{E000}", "a\u{0}b"] {
            #expect(Self.valid(Array(s.utf8)), "\(s)")
        }
    }

    @Test func rejectsIllFormed() {
        let bad: [[UInt8]] = [
            [0x80], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xE3, 0x83], [0xFF], [0x61, 0xC3], [0xE3, 0x83, 0x41],
        ]
        for b in bad { #expect(!Self.valid(b), "\(b)") }
    }

    @Test func agreesWithStandardLibraryOnRandomInput() {
        var g = SeededGenerator(seed: 77)
        for _ in 0..<20_000 {
            let b = g.bytes(Int.random(in: 0...8, using: &g)).map { Bool.random(using: &g) ? $0 | 0x80 : $0 }
            let stdlib = String(decoding: b, as: UTF8.self).utf8.elementsEqual(b)
            #expect(Self.valid(b) == stdlib, "\(b)")
        }
    }
}
