import NIOCore
import Testing

@testable import CallsWire

@Suite("ChannelData, RFC 7983, RFC 4571, STUN over TCP")
struct FramingTests {
    // MARK: ChannelData (RFC 8656 §12)

    @Test func channelDataRoundTrip() throws {
        let cd = TURNChannelData(channelNumber: 0x4001, bytes: [1, 2, 3, 4, 5])
        let unpadded = try cd.encoded()
        #expect(unpadded == [0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        let padded = try cd.encoded(padded: true)
        #expect(padded == [0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0])
        #expect(try TURNChannelData(decoding: unpadded) == cd)
        #expect(try TURNChannelData(decoding: padded) == cd)
        #expect(PacketClass.classify(unpadded) == .turnChannel)
    }

    @Test func channelDataErrors() throws {
        #expect(throws: WireError.self) { try TURNChannelData(channelNumber: 0x3FFF, bytes: []).encoded() }
        #expect(throws: WireError.self) { try TURNChannelData(channelNumber: 0x5000, bytes: []).encoded() }
        let badChannel = #expect(throws: WireError.self) { try TURNChannelData(decoding: [0x50, 0x00, 0x00, 0x00]) }
        #expect(badChannel?.code == .invalidChannelNumber)
        let short = #expect(throws: WireError.self) { try TURNChannelData(decoding: [0x40, 0x00, 0x00]) }
        #expect(short?.code == .truncated)
        let overrun = #expect(throws: WireError.self) { try TURNChannelData(decoding: [0x40, 0x00, 0x00, 0x08, 1, 2]) }
        #expect(overrun?.code == .truncated)
        let trailing = #expect(throws: WireError.self) { try TURNChannelData(decoding: [0x40, 0x00, 0x00, 0x01, 1, 0, 0, 0, 0]) }
        #expect(trailing?.code == .trailingBytes)
        #expect(trailing?.offset == 5)
    }

    // MARK: RFC 7983

    @Test(arguments: [
        (UInt8(0), PacketClass.stun), (3, .stun), (4, .unknown), (15, .unknown), (16, .zrtp), (19, .zrtp), (20, .dtls),
        (22, .dtls), (63, .dtls), (64, .turnChannel), (79, .turnChannel), (80, .unknown), (127, .unknown),
        (128, .rtpOrRTCP), (191, .rtpOrRTCP), (192, .unknown), (255, .unknown),
    ])
    func classification(firstByte: UInt8, expected: PacketClass) {
        #expect(PacketClass(firstByte: firstByte) == expected)
        #expect(PacketClass.classify([firstByte, 0, 0]) == expected)
        #expect(PacketClass.classify(ByteBuffer(bytes: [firstByte])) == expected)
    }

    @Test func classificationEdgeCases() throws {
        #expect(PacketClass.classify([UInt8]()) == .unknown)
        #expect(PacketClass.classify(ByteBuffer()) == .unknown)
        #expect(PacketClass.classify(try fixture("rfc5769-2.1-request.hex")) == .stun)
        #expect(PacketClass.isRTCP(secondByte: 200))
        #expect(!PacketClass.isRTCP(secondByte: 111))
        #expect(!PacketClass.isRTCP(secondByte: 0x80 | 96))
    }

    // MARK: RFC 4571

    @Test func rfc4571PartialAndMultipleFrames() throws {
        let frames: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 300), [9]]
        var stream = [UInt8]()
        for f in frames { stream += try RFC4571Framer.framed(f) }
        // Feed in every chunk size from 1 byte to the whole stream at once.
        for chunk in [1, 2, 3, 5, 64, stream.count] {
            var framer = RFC4571Framer()
            var out = [[UInt8]]()
            var i = 0
            while i < stream.count {
                framer.append(contentsOf: stream[i..<min(i + chunk, stream.count)])
                i += chunk
                while let f = try framer.nextFrame() { out.append(Array(f.readableBytesView)) }
            }
            #expect(out == frames, "chunk size \(chunk)")
            #expect(framer.bufferedByteCount == 0)
        }
    }

    @Test func rfc4571OversizeIsStickyError() throws {
        var framer = RFC4571Framer(maxFrameSize: 100)
        framer.append(contentsOf: try RFC4571Framer.framed([1, 2]))
        framer.append(contentsOf: [0x00, 0x65] + [UInt8](repeating: 0, count: 101))
        #expect(try framer.nextFrame().map { Array($0.readableBytesView) } == [1, 2])
        let error = #expect(throws: WireError.self) { try framer.nextFrame() }
        #expect(error?.code == .frameTooLarge)
        #expect(error?.offset == 4)
        #expect(throws: WireError.self) { try framer.nextFrame() }
        #expect(throws: WireError.self) { try RFC4571Framer.framed([UInt8](repeating: 0, count: 65_536)) }
    }

    @Test func rfc4571CarriesSTUN() throws {
        let request = try fixture("rfc5769-2.1-request.hex")
        var framer = RFC4571Framer()
        framer.append(ByteBuffer(bytes: try RFC4571Framer.framed(request) + RFC4571Framer.framed(request)))
        var n = 0
        while let frame = try framer.nextFrame() {
            let m = try STUNMessage(decoding: frame)
            #expect(m.verifyFingerprint())
            n += 1
        }
        #expect(n == 2)
    }

    @Test func rfc4571LongStreamStaysCompact() throws {
        var framer = RFC4571Framer()
        let frame = try RFC4571Framer.framed([UInt8](repeating: 1, count: 1000))
        for _ in 0..<1000 {
            framer.append(contentsOf: frame)
            #expect(try framer.nextFrame()?.readableBytes == 1000)
        }
        #expect(framer.bufferedByteCount == 0)
    }

    // MARK: STUN over TCP (no 4571 prefix)

    @Test func splitterHandlesSTUNAndPaddedChannelData() throws {
        let stun1 = try fixture("rfc5769-2.2-ipv4-response.hex")
        let cd = try TURNChannelData(channelNumber: 0x4ABC, bytes: [1, 2, 3, 4, 5]).encoded(padded: true)
        let stun2 = try fixture("rfc5769-2.4-long-term-request.hex")
        let stream = stun1 + cd + stun2 + cd
        for chunk in [1, 7, 13, stream.count] {
            var splitter = STUNStreamSplitter()
            var out = [STUNStreamSplitter.Frame]()
            var i = 0
            while i < stream.count {
                splitter.append(contentsOf: stream[i..<min(i + chunk, stream.count)])
                i += chunk
                while let f = try splitter.nextFrame() { out.append(f) }
            }
            #expect(out.count == 4, "chunk size \(chunk)")
            guard out.count == 4 else { continue }
            guard case .stun(let a) = out[0], case .channelData(let b) = out[1], case .stun(let c) = out[2],
                case .channelData(let d) = out[3]
            else {
                Issue.record("wrong frame kinds \(out)")
                continue
            }
            #expect(Array(a.readableBytesView) == stun1)
            #expect(try TURNChannelData(decoding: b) == TURNChannelData(channelNumber: 0x4ABC, bytes: [1, 2, 3, 4, 5]))
            #expect(try STUNMessage(decoding: c).realm == "example.org")
            #expect(d.readableBytes == 9)
            #expect(splitter.bufferedByteCount == 0)
        }
    }

    @Test func splitterErrors() throws {
        var garbage = STUNStreamSplitter()
        garbage.append(contentsOf: try fixture("rfc5769-2.2-ipv4-response.hex") + [0x16, 0x03, 0x01])
        #expect(try garbage.nextFrame() != nil)
        let e1 = #expect(throws: WireError.self) { try garbage.nextFrame() }
        #expect(e1?.code == .unrecognizedFrame)
        #expect(e1?.offset == 80)
        #expect(throws: WireError.self) { try garbage.nextFrame() }

        var cookie = STUNStreamSplitter()
        cookie.append(contentsOf: [0x00, 0x01, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF] + [UInt8](repeating: 0, count: 12))
        #expect((#expect(throws: WireError.self) { try cookie.nextFrame() })?.code == .badMagicCookie)

        var big = STUNStreamSplitter(maxMessageSize: 100)
        big.append(contentsOf: [0x40, 0x00, 0x01, 0x00])
        #expect((#expect(throws: WireError.self) { try big.nextFrame() })?.code == .frameTooLarge)
    }
}
