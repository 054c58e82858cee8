import NIOCore
import Testing

@testable import CallsWire

@Suite("STUN property tests")
struct STUNPropertyTests {
    static func randomAddress(_ g: inout SeededGenerator) -> STUNAddress {
        Bool.random(using: &g)
            ? STUNAddress(ipv4: g.next(upperBound: UInt32.max), port: UInt16.random(in: 0...UInt16.max, using: &g))
            : STUNAddress(ipv6High: g.next(), low: g.next(), port: UInt16.random(in: 0...UInt16.max, using: &g))
    }

    static func randomErrorCode(_ g: inout SeededGenerator) -> STUNErrorCode {
        STUNErrorCode(code: UInt16.random(in: 0...799, using: &g), reason: g.unicodeString(maxScalars: 20))
    }

    /// Type codes this module does not interpret, so `.raw` values round-trip as `.raw`.
    static let unknownTypes: [UInt16] = [0x0002, 0x0007, 0x000B, 0x0021, 0x002F, 0x7FFF, 0x8005, 0xC000, 0xFFFF]

    static func randomAttribute(_ g: inout SeededGenerator) -> STUNAttribute {
        func n(_ max: Int) -> Int { Int.random(in: 0...max, using: &g) }
        switch n(44) {
        case 0: return .mappedAddress(randomAddress(&g))
        case 1: return .xorMappedAddress(randomAddress(&g))
        case 2: return .xorPeerAddress(randomAddress(&g))
        case 3: return .xorRelayedAddress(randomAddress(&g))
        case 4: return .alternateServer(randomAddress(&g))
        case 5: return .responseOrigin(randomAddress(&g))
        case 6: return .otherAddress(randomAddress(&g))
        case 7: return .sourceAddress(randomAddress(&g))
        case 8: return .changedAddress(randomAddress(&g))
        case 9: return .changeRequest(STUNChangeRequest(rawValue: g.next(upperBound: UInt32.max)))
        case 10: return .username(g.unicodeString(maxScalars: 40))
        case 11: return .userhash(g.bytes(32))
        case 12: return .messageIntegrity(g.bytes(20))
        case 13: return .messageIntegritySHA256(g.bytes(16 + 4 * n(4)))
        case 14: return .fingerprint(g.next(upperBound: UInt32.max))
        case 15: return .errorCode(randomErrorCode(&g))
        case 16: return .realm(g.asciiString(maxLength: 30))
        case 17: return .nonce(g.asciiString(maxLength: 40))
        case 18:
            return .passwordAlgorithms((0..<n(3)).map { _ in
                STUNPasswordAlgorithm(number: UInt16.random(in: 0...UInt16.max, using: &g), parameters: g.bytes(n(6)))
            })
        case 19: return .passwordAlgorithm(STUNPasswordAlgorithm(number: UInt16.random(in: 0...9, using: &g), parameters: g.bytes(n(5))))
        case 20: return .unknownAttributes((0..<n(5)).map { _ in STUNAttributeType(rawValue: UInt16.random(in: 0...UInt16.max, using: &g)) })
        case 21: return .software(g.unicodeString(maxScalars: 30))
        case 22: return .alternateDomain(g.asciiString(maxLength: 30))
        case 23: return .channelNumber(UInt16.random(in: 0...UInt16.max, using: &g))
        case 24: return .lifetime(g.next(upperBound: UInt32.max))
        case 25: return .data(g.bytes(n(100)))
        case 26: return .requestedAddressFamily(Bool.random(using: &g) ? .ipv4 : .ipv6)
        case 27: return .evenPort(reserveNextPort: Bool.random(using: &g))
        case 28: return .requestedTransport(UInt8.random(in: 0...255, using: &g))
        case 29: return .dontFragment
        case 30: return .reservationToken(g.next())
        case 31: return .additionalAddressFamily(Bool.random(using: &g) ? .ipv4 : .ipv6)
        case 32: return .addressErrorCode(STUNAddressErrorCode(family: Bool.random(using: &g) ? .ipv4 : .ipv6, error: randomErrorCode(&g)))
        case 33: return .icmp(STUNICMP(type: UInt8.random(in: 0...255, using: &g), code: UInt8.random(in: 0...255, using: &g), errorData: g.next(upperBound: UInt32.max)))
        case 34: return .priority(g.next(upperBound: UInt32.max))
        case 35: return .useCandidate
        case 36: return .iceControlled(g.next())
        case 37: return .iceControlling(g.next())
        case 38: return .padding(g.bytes(n(64)))
        case 39: return .responsePort(UInt16.random(in: 0...UInt16.max, using: &g))
        case 40: return .cacheTimeout(g.next(upperBound: UInt32.max))
        case 41: return .connectionID(g.next(upperBound: UInt32.max))
        default:
            let t = unknownTypes[Int.random(in: 0..<unknownTypes.count, using: &g)]
            return .raw(type: STUNAttributeType(rawValue: t), value: g.bytes(n(40)))
        }
    }

    static func randomMessage(_ g: inout SeededGenerator) -> STUNMessage {
        let methods: [STUNMethod] = [.binding, .allocate, .refresh, .send, .data, .createPermission, .channelBind,
                                     STUNMethod(rawValue: UInt16.random(in: 0...0xFFF, using: &g))]
        return STUNMessage(
            method: methods[Int.random(in: 0..<methods.count, using: &g)],
            messageClass: STUNMessageClass.allCases[Int.random(in: 0..<4, using: &g)],
            transactionID: .random(using: &g),
            attributes: (0..<Int.random(in: 0...12, using: &g)).map { _ in randomAttribute(&g) })
    }

    @Test func methodAndClassBitLayout() {
        #expect(STUNMessageType.encode(method: .binding, messageClass: .successResponse) == 0x0101)
        #expect(STUNMessageType.encode(method: .binding, messageClass: .errorResponse) == 0x0111)
        #expect(STUNMessageType.encode(method: .allocate, messageClass: .errorResponse) == 0x0113)
        #expect(STUNMessageType.encode(method: .send, messageClass: .indication) == 0x0016)
        #expect(STUNMessageType.encode(method: .data, messageClass: .indication) == 0x0017)
        #expect(STUNMessageType.encode(method: .createPermission, messageClass: .errorResponse) == 0x0118)
        #expect(STUNMessageType.encode(method: .channelBind, messageClass: .errorResponse) == 0x0119)
        for m in UInt16(0)...0xFFF {
            for c in STUNMessageClass.allCases {
                let t = STUNMessageType.encode(method: STUNMethod(rawValue: m), messageClass: c)
                #expect(t & 0xC000 == 0)
                let (dm, dc) = STUNMessageType.decode(t)
                if dm.rawValue != m || dc != c { Issue.record("type 0x\(String(t, radix: 16)) round trip failed") }
            }
        }
    }

    @Test func randomMessagesRoundTrip() throws {
        var g = SeededGenerator(seed: 0x5EED_0001)
        let key = STUNKey.shortTerm(password: "pw-for-property-tests-123")
        for i in 0..<2_000 {
            let m = Self.randomMessage(&g)
            let bytes = try m.encoded()
            let decoded = try STUNMessage(decoding: bytes)
            if decoded != m {
                Issue.record("round trip \(i) differs:\n\(m.attributes)\n\(decoded.attributes)")
                return
            }
            // Re-encoding a decoded message reproduces the bytes exactly (padding is zero on both sides).
            #expect(try decoded.encoded() == bytes)

            // Signed variant: strip integrity-ish attributes so our MI is the admissible one.
            var clean = m
            clean.attributes.removeAll {
                [.messageIntegrity, .messageIntegritySHA256, .fingerprint].contains($0.type)
            }
            let signed = try clean.encoded(integrity: .both(key), fingerprint: true)
            let check = try STUNMessage(decoding: signed).verify(key: key)
            #expect(check.messageIntegrity == .passed)
            #expect(check.messageIntegritySHA256 == .passed)
            #expect(check.fingerprint == .passed)
            #expect(check.ignoredAttributes.isEmpty)
            #expect(STUNMessage.isProbablySTUN(signed))
        }
    }

    @Test func streamReadSplitsConcatenatedMessages() throws {
        var g = SeededGenerator(seed: 42)
        let messages = (0..<50).map { _ in Self.randomMessage(&g) }
        var buffer = ByteBuffer()
        for m in messages { try buffer.writeSTUNMessage(m, fingerprint: true) }
        var out = [STUNMessage]()
        while let m = try buffer.readSTUNMessage() { out.append(m) }
        #expect(buffer.readableBytes == 0)
        #expect(out.count == messages.count)
        #expect(out.allSatisfy { $0.verifyFingerprint() })
        var partial = ByteBuffer(bytes: try messages[0].encoded().dropLast())
        #expect(try partial.readSTUNMessage() == nil)
        #expect(partial.readerIndex == 0)
    }

    /// Decoders must never trap: random bytes, mutated RFC vectors and random TLV soups, all fed through
    /// every decoder in the module. 4 × 5,000 inputs, a fraction of a second each: volume belongs to the libFuzzer
    /// run (`scripts/fuzz.sh`, a few seconds per decoder in the suite), and a long CPU-bound test starves the tests that wait on
    /// servers running in the same process.
    @Test(arguments: 0..<4)
    func arbitraryBytesNeverTrap(shard: Int) throws {
        var g = SeededGenerator(seed: 0xF022_0000 + UInt64(shard))
        let seeds = try [
            "rfc5769-2.1-request.hex", "rfc5769-2.2-ipv4-response.hex", "rfc5769-2.3-ipv6-response.hex",
            "rfc5769-2.4-long-term-request.hex", "rfc8489-b1-sha256-request.hex",
        ].map(fixture)
        let key = STUNKey.shortTerm(password: "VOkJxbRl1RmTxUk/WvJxBt")
        var decodedCount = 0
        for i in 0..<5_000 {
            var input: [UInt8]
            switch i % 4 {
            case 0:
                input = g.bytes(Int.random(in: 0...160, using: &g))
            case 1, 2:
                input = seeds[Int.random(in: 0..<seeds.count, using: &g)]
                for _ in 0..<Int.random(in: 1...4, using: &g) {
                    guard !input.isEmpty else { break }
                    let at = Int.random(in: 0..<input.count, using: &g)
                    switch Int.random(in: 0...3, using: &g) {
                    case 0: input[at] = UInt8.random(in: 0...255, using: &g)
                    case 1: input.removeLast(Int.random(in: 0...min(8, input.count), using: &g))
                    case 2: input.insert(contentsOf: g.bytes(4), at: at)
                    default: input[at] ^= 1 << UInt8.random(in: 0...7, using: &g)
                    }
                }
            default:
                // Valid header, random TLVs, consistent length: exercises every attribute decoder.
                var body = [UInt8]()
                for _ in 0..<Int.random(in: 0...6, using: &g) {
                    let type: UInt16 = Bool.random(using: &g)
                        ? [0x0001, 0x0009, 0x0020, 0x8002, 0x001D, 0x000A, 0x8001, 0x0016, 0x8004, 0x0017][Int.random(in: 0..<10, using: &g)]
                        : UInt16.random(in: 0...0x40, using: &g) | (Bool.random(using: &g) ? 0x8000 : 0)
                    let len = Int.random(in: 0...24, using: &g)
                    body += [UInt8(type >> 8), UInt8(type & 0xFF), 0, UInt8(len)] + g.bytes(paddedLength(len))
                }
                input = [0x00, 0x01, UInt8(body.count >> 8), UInt8(body.count & 0xFF), 0x21, 0x12, 0xA4, 0x42] + g.bytes(12) + body
            }

            _ = PacketClass.classify(input)
            _ = STUNMessage.isProbablySTUN(input)
            _ = try? TURNChannelData(decoding: input)
            if let m = try? STUNMessage(decoding: input) {
                decodedCount += 1
                _ = m.verify(key: key)
                _ = m.effectiveAttributes
                _ = (m.xorMappedAddress, m.errorCode, m.username, m.passwordAlgorithms)
                if let again = try? m.encoded() {
                    let redecoded = try STUNMessage(decoding: again)
                    if redecoded != m { Issue.record("re-decode mismatch for input \(input)"); return }
                }
            }
            var framer = RFC4571Framer(maxFrameSize: 64)
            framer.append(contentsOf: input)
            while let _ = try? framer.nextFrame() {}
            var splitter = STUNStreamSplitter(maxMessageSize: 200)
            splitter.append(contentsOf: input)
            while let _ = try? splitter.nextFrame() {}
        }
        #expect(decodedCount > 1_250)
    }
}
