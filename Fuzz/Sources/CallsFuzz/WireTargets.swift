// Fuzz targets over CallsWire (STUN/TURN, RTP, RTCP, SDP, RFC 4571) and the DTLS record demux.
import CallsMediaDTLS
import CallsWire
import NIOCore

enum WireFuzz {
    private static let key = STUNKey.shortTerm(password: "VOkJxbRl1RmTxUk/WvJxBt")

    // MARK: STUN / TURN (the original CallsWire target)

    static func stun(_ bytes: UnsafeBufferPointer<UInt8>) {
        let size = bytes.count
        let buffer = ByteBuffer(bytes: bytes)
        _ = STUNMessage.isProbablySTUN(buffer)
        if let message = try? STUNMessage(decoding: buffer) {
            _ = message.verify(key: key)
            _ = (message.xorMappedAddress, message.errorCode, message.username, message.realm, message.nonce)
            _ = (message.passwordAlgorithms, message.unknownComprehensionRequiredAttributes, message.description)
            if let reencoded = try? message.encoded() {
                guard let again = try? STUNMessage(decoding: reencoded) else { fatalError("re-encoded message does not decode") }
                guard again == message else { fatalError("decode(encode(m)) != m: \(message) vs \(again)") }
            }
            var clean = message
            clean.attributes.removeAll { [.messageIntegrity, .messageIntegritySHA256, .fingerprint].contains($0.type) }
            if let signed = try? clean.encoded(integrity: .both(key), fingerprint: true) {
                guard let check = try? STUNMessage(decoding: signed).verify(key: key),
                    check.isAuthenticated, check.fingerprint == .passed
                else { fatalError("a message we signed does not verify") }
            }
        }
        if let channelData = try? TURNChannelData(decoding: buffer) {
            guard let encoded = try? channelData.encoded(), encoded.count <= size,
                (try? TURNChannelData(decoding: encoded)) == channelData
            else { fatalError("ChannelData round trip failed") }
        }
        // The ICE-TCP/TURN-TCP stream splitter, fed in two chunks.
        var splitter = STUNStreamSplitter(maxMessageSize: 1500)
        let cut = size / 2
        for part in [bytes[..<cut], bytes[cut...]] {
            splitter.append(contentsOf: part)
            while let frame = try? splitter.nextFrame() {
                if case .stun(let b) = frame { _ = try? STUNMessage(decoding: b) }
                if case .channelData(let b) = frame { _ = try? TURNChannelData(decoding: b) }
            }
        }
        // Address text parsing: whatever parses must print and re-parse to the same value.
        if size <= 64, let address = STUNAddress(String(decoding: bytes, as: UTF8.self)) {
            guard STUNAddress(address.description) == address else { fatalError("address text round trip: \(address)") }
        }
    }

    // MARK: RTP

    static func rtp(_ bytes: UnsafeBufferPointer<UInt8>) {
        let raw = UnsafeRawBufferPointer(bytes)
        guard let header = RTPHeader(parsing: raw) else {
            if bytes.count >= 12, bytes[0] >> 6 == 2, bytes[0] & 0x1F == 0 {
                fatalError("a 12-byte version-2 header without CSRCs or extension was refused")
            }
            return
        }
        guard header.csrcCount <= 15, header.headerLength >= RTPHeader.fixedLength + 4 * header.csrcCount,
            header.headerLength <= bytes.count, header.hasExtension == (header.extensionProfile != nil),
            header.payloadType < 128
        else { fatalError("RTP header fields out of bounds: \(header)") }
        // The fixed header written back parses to the same fields.
        guard let fixed = RTPHeader(parsing: header.bytes), fixed.marker == header.marker,
            fixed.payloadType == header.payloadType, fixed.sequenceNumber == header.sequenceNumber,
            fixed.timestamp == header.timestamp, fixed.ssrc == header.ssrc, fixed.padding == header.padding
        else { fatalError("RTP fixed header round trip failed") }
        // Header extension elements lie inside the header.
        for id in UInt8(1)...UInt8(14) {
            if let e = RTPAudioLevel.element(id: id, in: raw, header: header) {
                guard e.offset >= RTPHeader.fixedLength, e.length >= 0, e.offset + e.length <= header.headerLength else {
                    fatalError("extension element \(id) at \(e) outside the \(header.headerLength)-byte header")
                }
            }
            if let level = RTPAudioLevel(id: id, in: raw, header: header), level.level > 127 {
                fatalError("audio level \(level.level) > 127")
            }
        }
        // In-place rewrites change exactly their field.
        var copy = Array(bytes)
        copy.withUnsafeMutableBytes { p in
            guard RTPRewriter.setSSRC(~header.ssrc, in: p), RTPRewriter.setSequenceNumber(header.sequenceNumber &+ 1, in: p),
                RTPRewriter.setTimestamp(header.timestamp &+ 960, in: p), RTPRewriter.setPayloadType(~header.payloadType & 0x7F, in: p)
            else { fatalError("rewrite refused a packet whose header parsed") }
        }
        guard let rewritten = RTPHeader(parsing: copy), rewritten.ssrc == ~header.ssrc,
            rewritten.sequenceNumber == header.sequenceNumber &+ 1, rewritten.timestamp == header.timestamp &+ 960,
            rewritten.payloadType == ~header.payloadType & 0x7F, rewritten.marker == header.marker,
            rewritten.headerLength == header.headerLength, rewritten.csrcCount == header.csrcCount
        else { fatalError("RTP rewrite changed more than its field") }
        guard copy[header.headerLength...].elementsEqual(bytes[header.headerLength...]) else { fatalError("rewrite touched the payload") }
    }

    // MARK: RTCP

    static func rtcp(_ bytes: UnsafeBufferPointer<UInt8>) {
        let raw = UnsafeRawBufferPointer(bytes)
        var reader = RTCPReader(raw)
        var end = 0
        var count = 0
        var shortest = Int.max
        while let packet = reader.next() {
            shortest = min(shortest, packet.length)
            guard packet.offset == end, packet.length >= 4, packet.length % 4 == 0,
                packet.offset + packet.length <= bytes.count, packet.paddingLength < packet.length,
                packet.bytes.count == packet.length, (192...223).contains(packet.packetType)
            else { fatalError("RTCP packet bounds: offset \(packet.offset) length \(packet.length) of \(bytes.count)") }
            end = packet.offset + packet.length
            count += 1
            decodeAndRoundTrip(packet)
        }
        guard count <= reader.limit, count == reader.packetCount, reader.offset == end else { fatalError("RTCP reader counts") }
        guard reader.isAtEnd == (reader.error == nil && end == bytes.count) else { fatalError("RTCP isAtEnd") }
        let validated = RTCPReader.validate(raw)
        guard validated == (reader.isAtEnd && count > 0 ? count : nil) else { fatalError("validate disagrees with the reader") }
        // The header-only walk (which also reads the sender SSRC, so needs 8 bytes a packet, and does not check
        // padding) accepts at least what the full reader accepts.
        if let n = validated, shortest >= RTCPHeader.length {
            guard let headers = RTCPHeader.compound(raw), headers.count == n else { fatalError("compound disagrees with validate") }
        }
    }

    private static func decodeAndRoundTrip(_ packet: RTCPPacket) {
        if let sr = RTCPSenderReport(packet) {
            let blocks = Array(sr.reportBlocks)
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeSenderReport(
                senderSSRC: sr.senderSSRC, ntpTimestamp: sr.ntpTimestamp, rtpTimestamp: sr.rtpTimestamp,
                packetCount: sr.packetCount, octetCount: sr.octetCount, reportBlocks: blocks, into: &out)) != nil
            {
                reread(out) { p in
                    guard let again = RTCPSenderReport(p), again.senderSSRC == sr.senderSSRC,
                        again.ntpTimestamp == sr.ntpTimestamp, again.rtpTimestamp == sr.rtpTimestamp,
                        again.packetCount == sr.packetCount, again.octetCount == sr.octetCount,
                        Array(again.reportBlocks) == blocks
                    else { fatalError("SR round trip") }
                }
            }
        }
        if let rr = RTCPReceiverReport(packet) {
            let blocks = Array(rr.reportBlocks)
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeReceiverReport(senderSSRC: rr.senderSSRC, reportBlocks: blocks, into: &out)) != nil {
                reread(out) { p in
                    guard let again = RTCPReceiverReport(p), again.senderSSRC == rr.senderSSRC,
                        Array(again.reportBlocks) == blocks
                    else { fatalError("RR round trip") }
                }
            }
        }
        if let bye = RTCPBye(packet) {
            let ssrcs = Array(bye.ssrcs)
            if let reason = bye.reason, reason.count > packet.length { fatalError("BYE reason longer than the packet") }
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeBye(ssrcs: ssrcs, into: &out)) != nil {
                reread(out) { p in
                    guard let again = RTCPBye(p), Array(again.ssrcs) == ssrcs else { fatalError("BYE round trip") }
                }
            }
        }
        if let sdes = RTCPSourceDescription(packet) {
            var items = 0
            sdes.forEachItem { _, _, value in
                items += 1
                if value.count > packet.length { fatalError("SDES item longer than the packet") }
            }
            if let cname = sdes.cname(), cname.count > 255 { fatalError("CNAME longer than 255") }
            _ = items
        }
        if let fb = RTCPFeedback(packet), fb.fci.count > packet.length { fatalError("FCI longer than the packet") }
        if let nack = RTCPGenericNACK(packet) {
            var lost: [UInt16] = []
            nack.forEachLostSequence { lost.append($0) }
            guard lost.count == nack.lostCount, nack.lostCount <= 17 * nack.itemCount else { fatalError("NACK lost count") }
            let capacity = nack.lostCount
            let written = [UInt16](unsafeUninitializedCapacity: capacity) { buf, n in
                n = nack.lostSequences(into: buf)
            }
            guard written == Array(lost.prefix(written.count)) else { fatalError("lostSequences(into:) disagrees") }
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeGenericNACK(
                senderSSRC: nack.senderSSRC, mediaSSRC: nack.mediaSSRC, lostSequences: lost, into: &out)) != nil
            {
                reread(out) { p in
                    guard let again = RTCPGenericNACK(p) else { fatalError("NACK we wrote does not decode") }
                    var relost: [UInt16] = []
                    again.forEachLostSequence { relost.append($0) }
                    guard Set(relost) == Set(lost) else { fatalError("NACK round trip lost different packets") }
                }
            }
        }
        if let twcc = RTCPTransportWideFeedback(packet), twcc.fci.count < 8 { fatalError("TWCC FCI too short") }
        if let pli = RTCPPictureLossIndication(packet) {
            var out = ByteBuffer()
            _ = RTCPBuilder.writePictureLossIndication(senderSSRC: pli.senderSSRC, mediaSSRC: pli.mediaSSRC, into: &out)
            reread(out) { p in guard RTCPPictureLossIndication(p) == pli else { fatalError("PLI round trip") } }
        }
        if let fir = RTCPFullIntraRequest(packet) {
            var entries: [RTCPFIREntry] = []
            fir.forEachEntry { entries.append($0) }
            guard entries.count == fir.entryCount else { fatalError("FIR entry count") }
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeFullIntraRequest(senderSSRC: fir.senderSSRC, entries: entries, into: &out)) != nil {
                reread(out) { p in
                    guard let again = RTCPFullIntraRequest(p) else { fatalError("FIR we wrote does not decode") }
                    var reentries: [RTCPFIREntry] = []
                    again.forEachEntry { reentries.append($0) }
                    guard reentries == entries else { fatalError("FIR round trip") }
                }
            }
        }
        if let remb = RTCPREMB(packet) {
            guard remb.mantissa <= RTCPREMB.maxMantissa else { fatalError("REMB mantissa") }
            let ssrcs = Array(remb.ssrcs)
            var out = ByteBuffer()
            if (try? RTCPBuilder.writeREMB(senderSSRC: remb.senderSSRC, bitrate: remb.bitrate, ssrcs: ssrcs, into: &out)) != nil {
                reread(out) { p in
                    guard let again = RTCPREMB(p), Array(again.ssrcs) == ssrcs, again.bitrate <= remb.bitrate,
                        again.senderSSRC == remb.senderSSRC
                    else { fatalError("REMB round trip") }
                }
            }
        }
    }

    /// Reads back a packet the builder wrote: exactly one valid RTCP packet.
    private static func reread(_ buffer: ByteBuffer, _ body: (RTCPPacket) -> Void) {
        RTCPReader.withReader(over: buffer) { reader in
            guard let p = reader.next(), reader.next() == nil, reader.isAtEnd else { fatalError("builder output is not one RTCP packet") }
            body(p)
        }
    }

    // MARK: SDP

    static func sdp(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let description = try? SDPSessionDescription(parsing: text) {
            guard description.media.count <= SDPSessionDescription.maximumMediaSections else { fatalError("too many m= sections") }
            let written = description.text
            guard let again = try? SDPSessionDescription(parsing: written) else { fatalError("SDP text does not re-parse") }
            guard again == description else {
                let lines = { (t: String) in t.utf8.split(separator: 10).map { String(decoding: $0, as: UTF8.self) } }
                let diff = zip(lines(written), lines(again.text)).first { $0 != $1 }
                fatalError("SDP parse(text(d)) != d; first differing line: \(String(reflecting: diff))")
            }
            guard again.text == written else { fatalError("SDP text is not a fixed point") }
        }
        if let offer = try? WebRTCOffer(sdp: text) {
            sfuAnswer(offer)
        }
        // Single attribute values the offer code parses on their own.
        for line in text.split(whereSeparator: \.isNewline).prefix(64) {
            let value = String(line.drop(while: { $0 != ":" }).dropFirst())
            if let candidate = SDPCandidate(sdp: value) {
                guard (0...65535).contains(candidate.port), SDPCandidate(sdp: candidate.sdpValue) == candidate,
                    SDPCandidate(sdp: candidate.description) == candidate
                else { fatalError("candidate round trip: \(value)") }
            }
            if let fingerprint = SDPFingerprint(sdp: value), SDPFingerprint(sdp: fingerprint.sdpValue) != fingerprint {
                fatalError("fingerprint round trip: \(value)")
            }
        }
    }

    private static let sfuTracks: [SFUTrack] =
        (0..<3).map { SFUTrack(kind: .audio, ssrc: UInt32(100 + $0), streamID: "slot-\($0)", trackID: "a\($0)", cname: "c") }
        + [SFUTrack(kind: .video, ssrc: 555, streamID: "p", trackID: "screen-p", cname: "c")]

    /// The SFU's answer to an offer the server accepts: one answer section per offer section, in order and with the
    /// offer's mid; every section is exactly one of published, slot, inactive or rejected; a track is placed once.
    private static func sfuAnswer(_ offer: WebRTCOffer) {
        let parameters = SFUAnswerParameters(
            iceUfrag: "srvU", icePwd: "serverpasswordserverpass", fingerprint: "sha-256 AB:CD", candidates: [],
            sessionID: 1, sessionVersion: 2, tracks: sfuTracks, previousAssignments: ["1": 101, "9": 555],
            mayPublishVideo: offer.parsed.sections.count % 2 == 0)
        let answer = SFUAnswer(offer: offer, parameters: parameters)
        guard let parsed = try? SDPSessionDescription(parsing: answer.sdp) else { fatalError("the SFU answer does not parse") }
        let sections = offer.parsed.sections
        guard parsed.media.count == sections.count else { fatalError("the answer has \(parsed.media.count) sections for \(sections.count)") }
        let placed = answer.slots.compactMap(\.ssrc)
        guard Set(placed).count == placed.count else { fatalError("a track is placed twice: \(placed)") }
        guard Set(placed + answer.unplaced.map(\.ssrc)) == Set(sfuTracks.map(\.ssrc)) else { fatalError("a track was lost") }
        let rejected = Set(answer.rejected.map(\.index))
        for (i, s) in sections.enumerated() {
            let m = parsed.media[i]
            if s.mid != nil, m.mid != s.mid { fatalError("section \(i): answer mid \(String(describing: m.mid)) for \(String(describing: s.mid))") }
            if rejected.contains(i) || s.isRejected {
                guard m.port == 0 else { fatalError("section \(i) is rejected with port \(m.port)") }
            } else if m.port == 0 {
                fatalError("section \(i) has port 0 but no rejection reason")
            }
        }
    }

    // MARK: RFC 4571 framing

    static func rfc4571(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard !bytes.isEmpty else { return }
        // The first byte picks the frame limit and where the stream is cut; the rest is the TCP stream.
        let maxFrame = [0, 1, 200, 1500, 0xFFFF][Int(bytes[0]) % 5]
        let stream = bytes[1...]
        let cut = stream.startIndex + (stream.isEmpty ? 0 : Int(bytes[0]) % (stream.count + 1))
        var framer = RFC4571Framer(maxFrameSize: maxFrame)
        var consumed = 0
        var payloads: [[UInt8]] = []
        var failed = false
        for part in [stream[..<cut], stream[cut...]] {
            framer.append(contentsOf: part)
            while true {
                do {
                    guard let frame = try framer.nextFrame() else { break }
                    guard frame.readableBytes <= maxFrame else { fatalError("frame of \(frame.readableBytes) > limit \(maxFrame)") }
                    consumed += 2 + frame.readableBytes
                    payloads.append(Array(frame.readableBytesView))
                } catch {
                    failed = true
                    break
                }
            }
            guard consumed <= stream.count else { fatalError("framer returned more bytes than it was given") }
        }
        // The frames are exactly the stream's prefix: re-framing them gives the same bytes.
        var reframed: [UInt8] = []
        for p in payloads {
            guard let f = try? RFC4571Framer.framed(p) else { fatalError("a returned frame cannot be framed again") }
            reframed += f
        }
        guard reframed.elementsEqual(stream.prefix(consumed)) else { fatalError("frames differ from the stream they came from") }
        if !failed, stream.count - consumed >= 2 {
            let next = Int(stream[stream.startIndex + consumed]) << 8 | Int(stream[stream.startIndex + consumed + 1])
            guard next > stream.count - consumed - 2 else { fatalError("a complete frame was left in the buffer") }
        }
    }

    // MARK: RFC 7983 demux and DTLS records

    static func dtls(_ bytes: UnsafeBufferPointer<UInt8>) {
        let buffer = ByteBuffer(bytes: bytes)
        let cls = PacketClass.classify(buffer)
        guard cls == PacketClass.classify(bytes) else { fatalError("ByteBuffer and collection classification disagree") }
        let expected: PacketClass =
            switch bytes.first {
            case nil: .unknown
            case let b?:
                switch b {
                case 0...3: .stun
                case 16...19: .zrtp
                case 20...63: .dtls
                case 64...79: .turnChannel
                case 128...191: .rtpOrRTCP
                default: .unknown
                }
            }
        guard cls == expected else { fatalError("first byte \(String(describing: bytes.first)) classified as \(cls)") }
        if cls == .rtpOrRTCP, bytes.count >= 2, PacketClass.isRTCP(secondByte: bytes[1]) != (192...223).contains(bytes[1]) {
            fatalError("RTCP/RTP split on second byte \(bytes[1])")
        }
        // What the media server does with a DTLS datagram before OpenSSL sees it.
        DTLSDemuxFuzz.run(UnsafeRawBufferPointer(bytes))
    }
}
