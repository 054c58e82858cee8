import CallsMedia
import Testing

/// The OpenSSL EVP protect of AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80 (`SRTPSession`'s default) against libsrtp2's:
/// identical bytes for the same keys and packets, across a sequence-number wrap (ROC 0 → 1), reordering, several
/// SSRCs, and headers with CSRCs and an extension.
@Suite struct SRTPGCMBackendTests {
    /// `rtpPacket` with `csrcs` CSRCs and, when `extensionWords` > 0, a one-byte-header extension of that many words.
    static func packet(sequence: UInt16, ssrc: UInt32, csrcs: Int = 0, extensionWords: Int = 0, payload: Int = 160)
        -> [UInt8]
    {
        var p = rtpPacket(sequence: sequence, ssrc: ssrc, payloadLength: 0)
        p[0] = 0x80 | UInt8(csrcs) | (extensionWords > 0 ? 0x10 : 0)
        for i in 0..<csrcs { p += [0x10, 0x20, 0x30, UInt8(i)] }
        if extensionWords > 0 {
            p += [0xBE, 0xDE, 0x00, UInt8(extensionWords)]
            p += (0..<(4 * extensionWords)).map { UInt8(truncatingIfNeeded: $0 &+ 0x41) }
        }
        p += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ Int(sequence)) }
        return p
    }

    @Test(arguments: SRTPProtectionProfile.allSupported)
    func evpProtectMatchesLibsrtpByteForByte(profile: SRTPProtectionProfile) throws {
        let keys = try BackToBack.establishedKeys(profiles: [profile])
        let tagLength = profile == .aeadAES128GCM ? 16 : 10
        let evp = try SRTPSession(keyingMaterial: keys.server, allowRepeatTransmission: true)
        let reference = try SRTPSession(
            keyingMaterial: keys.server, allowRepeatTransmission: true, rtpProtectBackend: .libsrtp)
        let receiver = try SRTPSession(keyingMaterial: keys.client, rtpProtectBackend: .libsrtp)
        // Three streams; the first crosses the 16-bit wrap, the third starts low; one packet arrives late.
        var order: [(UInt16, UInt32, Int, Int)] = []
        for i in 0..<80 {
            let a = UInt16(truncatingIfNeeded: 65_500 + i)
            if a != 65_530 { order.append((a, 0xAAAA_0001, 0, 0)) }
            order.append((UInt16(truncatingIfNeeded: 30_000 + i), 0xBBBB_0002, i % 3, i % 2 == 0 ? 2 : 0))
            order.append((UInt16(10 + i), 0xCCCC_0003, 0, 0))
        }
        order.insert((65_530, 0xAAAA_0001, 0, 0), at: 200)  // reordered: arrives after the wrap, from before it
        var compared = 0
        var accepted = 0
        for (sequence, ssrc, csrcs, words) in order {
            let plain = Self.packet(sequence: sequence, ssrc: ssrc, csrcs: csrcs, extensionWords: words)
            var a = plain
            var b = plain
            try evp.protectRTP(&a)
            try reference.protectRTP(&b)
            #expect(a == b, "seq \(sequence) ssrc \(ssrc)")
            #expect(a.count == plain.count + tagLength)
            if a == b { compared += 1 }
            // And a libsrtp receiver accepts it.
            var c = a
            if (try? receiver.unprotectRTP(&c)) != nil, c == plain { accepted += 1 }
        }
        #expect(compared == order.count)
        #expect(accepted == order.count)
    }

    @Test(arguments: SRTPProtectionProfile.allSupported)
    func evpUnprotectAgreesWithLibsrtpOnEveryOutcome(profile: SRTPProtectionProfile) throws {
        let keys = try BackToBack.establishedKeys(profiles: [profile])
        let sender = try SRTPSession(keyingMaterial: keys.client, allowRepeatTransmission: true, rtpProtectBackend: .libsrtp)
        let evp = try SRTPSession(keyingMaterial: keys.server)
        let reference = try SRTPSession(keyingMaterial: keys.server, rtpProtectBackend: .libsrtp)
        // Protected in order (65_400 ... 65_700, crossing the wrap); delivered in order except one that comes late
        // (inside the window, after the wrap), then a replay of it, one too old, and the last one tampered.
        let all = (0...300).map { UInt16(truncatingIfNeeded: 65_400 + $0) }
        var plain: [UInt16: [UInt8]] = [:]
        var protected: [UInt16: [UInt8]] = [:]
        for (n, sequence) in all.enumerated() {
            let p = Self.packet(sequence: sequence, ssrc: 0xDDDD_0004, csrcs: n % 2, extensionWords: n % 3)
            var q = p
            try sender.protectRTP(&q)
            plain[sequence] = p
            protected[sequence] = q
        }
        let last = all[300]
        protected[last]![protected[last]!.count - 20] ^= 0x01
        let late = UInt16(truncatingIfNeeded: 65_400 + 250)  // 49 behind the highest when it arrives
        var deliveries = all.dropLast().filter { $0 != late }
        deliveries += [late, late, 65_400 &+ 50, last]
        var outcomes: [String] = []
        for sequence in deliveries {
            var a = protected[sequence]!
            var b = protected[sequence]!
            let resultA: Result<[UInt8], SRTPError> = Result { () throws(SRTPError) in try evp.unprotectRTP(&a); return a }
            let resultB: Result<[UInt8], SRTPError> = Result { () throws(SRTPError) in try reference.unprotectRTP(&b); return b }
            #expect(resultA == resultB, "seq \(sequence)")
            if case .success(let p) = resultA { #expect(p == plain[sequence]) }
            outcomes.append({ switch resultA { case .success: "ok"; case .failure(let e): "\(e)" } }())
        }
        #expect(outcomes.filter { $0 == "ok" }.count == 300)  // every packet but the tampered one, once
        #expect(outcomes.suffix(3) == ["\(SRTPError.replayed)", "\(SRTPError.tooOld)", "\(SRTPError.authenticationFailed)"])
    }

    @Test func evpProtectRefusesRepeatsUnlessAllowed() throws {
        let keys = try BackToBack.establishedKeys(profiles: [.aeadAES128GCM])
        let strict = try SRTPSession(keyingMaterial: keys.client)
        for sequence in UInt16(100)..<110 {
            var p = rtpPacket(sequence: sequence)
            try strict.protectRTP(&p)
        }
        var again = rtpPacket(sequence: 105)
        #expect(throws: SRTPError.replayed) { try strict.protectRTP(&again) }
        var late = rtpPacket(sequence: 99)  // never sent, inside the window: fine
        try strict.protectRTP(&late)
    }
}
