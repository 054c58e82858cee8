import CallsMedia
import Testing

/// An RTP packet: 12-byte header (RFC 3550 §5.1, version 2, payload type 111 = Opus) and a patterned payload.
func rtpPacket(sequence: UInt16, ssrc: UInt32 = 0x1234_5678, payloadLength: Int = 160, marker: Bool = false) -> [UInt8]
{
    let timestamp = UInt32(sequence) &* 960
    var packet: [UInt8] = [
        0x80, (marker ? 0x80 : 0) | 111, UInt8(sequence >> 8), UInt8(sequence & 0xFF),
        UInt8(timestamp >> 24), UInt8(timestamp >> 16 & 0xFF), UInt8(timestamp >> 8 & 0xFF), UInt8(timestamp & 0xFF),
        UInt8(ssrc >> 24), UInt8(ssrc >> 16 & 0xFF), UInt8(ssrc >> 8 & 0xFF), UInt8(ssrc & 0xFF),
    ]
    packet += (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(sequence)) }
    return packet
}

/// An RTCP receiver report with one report block (RFC 3550 §6.4.2): 32 bytes.
func rtcpReceiverReport(ssrc: UInt32 = 0xCAFE_BABE, about source: UInt32 = 0x1234_5678) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }
    return [0x81, 201, 0x00, 0x07] + be32(ssrc) + be32(source) + [0, 0, 0, 0] + be32(1000) + be32(20) + be32(0)
        + be32(0)
}

@Suite struct SRTPSessionTests {
    static let profiles = SRTPProtectionProfile.allSupported

    /// Sessions for both ends of a real DTLS handshake.
    static func sessions(
        _ profile: SRTPProtectionProfile
    ) throws -> (client: SRTPSession, server: SRTPSession) {
        let keys = try BackToBack.establishedKeys(profiles: [profile])
        #expect(keys.client.profile == profile)
        return (try SRTPSession(keyingMaterial: keys.client), try SRTPSession(keyingMaterial: keys.server))
    }

    static func tagLength(_ profile: SRTPProtectionProfile) -> Int { profile == .aeadAES128GCM ? 16 : 10 }

    @Test(arguments: profiles)
    func rtpRoundTripsBothWays(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        #expect(client.profile == profile)
        for (sender, receiver) in [(client, server), (server, client)] {
            for sequence in UInt16(1000)..<1050 {
                let plain = rtpPacket(sequence: sequence)
                var packet = plain
                try sender.protectRTP(&packet)
                #expect(packet.count == plain.count + Self.tagLength(profile))
                #expect(packet[0..<12] == plain[0..<12], "the RTP header stays in the clear")
                #expect(packet[12..<plain.count] != plain[12...], "the payload is encrypted")
                try receiver.unprotectRTP(&packet)
                #expect(packet == plain)
            }
        }
    }

    @Test(arguments: profiles)
    func rtcpRoundTripsBothWays(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        for (sender, receiver) in [(client, server), (server, client)] {
            for _ in 0..<10 {
                let plain = rtcpReceiverReport()
                var packet = plain
                try sender.protectRTCP(&packet)
                // SRTCP appends the E flag + 31-bit index (4 bytes) and the tag.
                #expect(packet.count == plain.count + 4 + Self.tagLength(profile))
                try receiver.unprotectRTCP(&packet)
                #expect(packet == plain)
            }
        }
    }

    @Test(arguments: profiles)
    func opusSizedPacketRoundTripsByteIdentically(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        let plain = rtpPacket(sequence: 7, payloadLength: 160, marker: true)
        #expect(plain.count == 172)
        // In place, in a caller buffer with exactly the documented spare room.
        var buffer = [UInt8](repeating: 0, count: plain.count + SRTPSession.maxTrailerLength)
        buffer.replaceSubrange(0..<plain.count, with: plain)
        let protectedLength = try buffer.withUnsafeMutableBytes { (bytes) throws(SRTPError) in
            try client.protectRTP(bytes, length: plain.count)
        }
        #expect(protectedLength == 172 + Self.tagLength(profile))
        let plainLength = try buffer.withUnsafeMutableBytes { (bytes) throws(SRTPError) in
            try server.unprotectRTP(bytes, length: protectedLength)
        }
        #expect(Array(buffer[0..<plainLength]) == plain)
    }

    @Test(arguments: profiles)
    func aTamperedByteFailsAuthentication(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        var protected = rtpPacket(sequence: 1)
        try client.protectRTP(&protected)
        for index in [1, 5, 11, 12, 100, protected.count - 1] {  // header, payload, tag
            var tampered = protected
            tampered[index] ^= 0x01
            #expect(throws: SRTPError.authenticationFailed) { try server.unprotectRTP(&tampered) }
        }
        var rtcp = rtcpReceiverReport()
        try client.protectRTCP(&rtcp)
        rtcp[20] ^= 0x80
        #expect(throws: SRTPError.authenticationFailed) { try server.unprotectRTCP(&rtcp) }
        // The untouched packet still verifies: failures leave no state behind.
        try server.unprotectRTP(&protected)
        #expect(protected == rtpPacket(sequence: 1))
    }

    @Test(arguments: profiles)
    func aReplayedPacketIsRejected(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        var first = rtpPacket(sequence: 500)
        try client.protectRTP(&first)
        let copy = first
        try server.unprotectRTP(&first)
        var replay = copy
        #expect(throws: SRTPError.replayed) { try server.unprotectRTP(&replay) }
        // Far behind the 128-packet window.
        var old = rtpPacket(sequence: 501)
        try client.protectRTP(&old)
        for sequence in UInt16(502)..<UInt16(800) {
            var packet = rtpPacket(sequence: sequence)
            try client.protectRTP(&packet)
            try server.unprotectRTP(&packet)
        }
        #expect(throws: SRTPError.tooOld) { try server.unprotectRTP(&old) }
        // RTCP replay.
        var report = rtcpReceiverReport()
        try client.protectRTCP(&report)
        let reportCopy = report
        try server.unprotectRTCP(&report)
        report = reportCopy
        #expect(throws: SRTPError.replayed) { try server.unprotectRTCP(&report) }
    }

    @Test func protectRefusesToReuseAnIndexUnlessAllowed() throws {
        let keys = try BackToBack.establishedKeys()
        let strict = try SRTPSession(keyingMaterial: keys.client)
        var packet = rtpPacket(sequence: 9)
        try strict.protectRTP(&packet)
        var again = rtpPacket(sequence: 9)
        #expect(throws: SRTPError.replayed) { try strict.protectRTP(&again) }

        let lenient = try SRTPSession(keyingMaterial: keys.client, allowRepeatTransmission: true)
        let receiver = try SRTPSession(keyingMaterial: keys.server)
        var once = rtpPacket(sequence: 9)
        var twice = rtpPacket(sequence: 9)
        try lenient.protectRTP(&once)
        try lenient.protectRTP(&twice)
        #expect(once == twice)
        try receiver.unprotectRTP(&once)
    }

    @Test(arguments: profiles)
    func garbageNeverTraps(profile: SRTPProtectionProfile) throws {
        let (client, server) = try Self.sessions(profile)
        var random = SplitMix64(seed: UInt64(profile.id))
        for round in 0..<2000 {
            var garbage = random.bytes(Int.random(in: 0...300, using: &random))
            if round % 2 == 0, !garbage.isEmpty { garbage[0] = 0x80 | garbage[0] & 0x3F }  // version 2
            var rtp = garbage
            #expect(throws: SRTPError.self) { try server.unprotectRTP(&rtp) }
            var rtcp = garbage
            #expect(throws: SRTPError.self) { try server.unprotectRTCP(&rtcp) }
            // Protect accepts any well-formed header; it must never trap on the rest.
            var outgoing = garbage
            _ = try? client.protectRTP(&outgoing)
            var outgoingRTCP = garbage
            _ = try? client.protectRTCP(&outgoingRTCP)
        }
        // The sessions still work afterwards.
        var packet = rtpPacket(sequence: 3, ssrc: 0xABCD)
        try client.protectRTP(&packet)
        try server.unprotectRTP(&packet)
        #expect(packet == rtpPacket(sequence: 3, ssrc: 0xABCD))
    }

    @Test func malformedHeadersAreRejectedBeforeTheBackend() throws {
        let (client, server) = try Self.sessions(.aeadAES128GCM)
        var tooShort: [UInt8] = [0x80, 111, 0, 1]
        #expect(throws: SRTPError.malformedPacket) { try client.protectRTP(&tooShort) }
        var wrongVersion = rtpPacket(sequence: 1)
        wrongVersion[0] = 0x40
        #expect(throws: SRTPError.malformedPacket) { try client.protectRTP(&wrongVersion) }
        var csrcOverrun = Array(rtpPacket(sequence: 1, payloadLength: 0))
        csrcOverrun[0] = 0x8F  // 15 CSRCs announced, none present
        #expect(throws: SRTPError.malformedPacket) { try client.protectRTP(&csrcOverrun) }
        var extensionOverrun = rtpPacket(sequence: 1, payloadLength: 8)
        extensionOverrun[0] = 0x90
        extensionOverrun[14] = 0xFF  // extension length 0xFF00 words
        #expect(throws: SRTPError.malformedPacket) { try server.unprotectRTP(&extensionOverrun) }
        var shortRTCP: [UInt8] = [0x81, 201, 0, 1]
        #expect(throws: SRTPError.malformedPacket) { try client.protectRTCP(&shortRTCP) }
        // A caller buffer without the spare room is refused, not overrun.
        var buffer = rtpPacket(sequence: 2) + [UInt8](repeating: 0, count: SRTPSession.maxTrailerLength - 1)
        let length = buffer.count - (SRTPSession.maxTrailerLength - 1)
        #expect(throws: SRTPError.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { (bytes) throws(SRTPError) in
                try client.protectRTP(bytes, length: length)
            }
        }
        #expect(throws: SRTPError.malformedPacket) {
            try buffer.withUnsafeMutableBytes { (bytes) throws(SRTPError) in
                try client.protectRTP(bytes, length: bytes.count + 1)
            }
        }
    }

    @Test func keysFromAnotherAssociationFailAuthentication() throws {
        let first = try BackToBack.establishedKeys()
        let second = try BackToBack.establishedKeys()
        let sender = try SRTPSession(keyingMaterial: first.client)
        let stranger = try SRTPSession(keyingMaterial: second.server)
        var packet = rtpPacket(sequence: 1)
        try sender.protectRTP(&packet)
        #expect(throws: SRTPError.authenticationFailed) { try stranger.unprotectRTP(&packet) }
    }

    @Test func manySSRCsShareOneSession() throws {
        let (client, server) = try Self.sessions(.aeadAES128GCM)
        for ssrc in UInt32(1)...50 {
            var packet = rtpPacket(sequence: UInt16(ssrc), ssrc: ssrc)
            try client.protectRTP(&packet)
            try server.unprotectRTP(&packet)
            #expect(packet == rtpPacket(sequence: UInt16(ssrc), ssrc: ssrc))
        }
    }
}
