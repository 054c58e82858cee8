import CallsMedia
import Testing

@Suite struct DTLSEndpointTests {
    @Test func handshakeCompletesWithMatchingKeys() throws {
        let pair = try BackToBack()
        pair.handshake()
        let client = try #require(pair.clientKeys)
        let server = try #require(pair.serverKeys)
        #expect(client.profile == .aeadAES128GCM)
        #expect(server.profile == .aeadAES128GCM)
        #expect(client.localKey == server.remoteKey)
        #expect(client.localSalt == server.remoteSalt)
        #expect(client.remoteKey == server.localKey)
        #expect(client.remoteSalt == server.localSalt)
        #expect(client.localKey != client.remoteKey)
        #expect(client.localKey.count == 16 && client.localSalt.count == 12)
        #expect(client == server.swapped)
        #expect(pair.client.keyingMaterial == client)
        #expect(pair.server.keyingMaterial == server)
        #expect(BackToBack.failure(in: pair.clientEvents) == nil)
        #expect(BackToBack.failure(in: pair.serverEvents) == nil)
        // RFC 6347 full handshake without HelloVerifyRequest: 4 flights, one datagram each at MTU 1200.
        #expect(pair.log.count == 4, "datagrams: \(pair.log.map { $0.1.count })")
        #expect(pair.log.allSatisfy { $0.1.count <= 1200 })
        #expect(pair.client.nextTimeout == nil)
        #expect(pair.server.nextTimeout == nil)
        #expect(String(describing: client) == "SRTPKeyingMaterial(AEAD_AES_128_GCM, keys redacted)")
    }

    @Test(arguments: [
        (
            [SRTPProtectionProfile.aeadAES128GCM, .aes128CMHMACSHA1_80],
            [SRTPProtectionProfile.aeadAES128GCM, .aes128CMHMACSHA1_80], SRTPProtectionProfile.aeadAES128GCM
        ),
        ([.aes128CMHMACSHA1_80], [.aeadAES128GCM, .aes128CMHMACSHA1_80], .aes128CMHMACSHA1_80),
        ([.aeadAES128GCM, .aes128CMHMACSHA1_80], [.aes128CMHMACSHA1_80], .aes128CMHMACSHA1_80),
        ([.aes128CMHMACSHA1_80, .aeadAES128GCM], [.aeadAES128GCM, .aes128CMHMACSHA1_80], .aeadAES128GCM),
        ([.aeadAES128GCM], [.aeadAES128GCM], .aeadAES128GCM),
    ])
    func negotiatesTheServersPreferredCommonProfile(
        clientOffers: [SRTPProtectionProfile],
        serverOffers: [SRTPProtectionProfile],
        expected: SRTPProtectionProfile
    ) throws {
        let pair = try BackToBack(
            client: DTLSConfiguration(srtpProfiles: clientOffers), server: DTLSConfiguration(srtpProfiles: serverOffers)
        )
        pair.handshake()
        let client = try #require(pair.clientKeys)
        let server = try #require(pair.serverKeys)
        #expect(client.profile == expected)
        #expect(server.profile == expected)
        #expect(client.localSalt.count == expected.saltLength)
        #expect(client.localKey == server.remoteKey && client.localSalt == server.remoteSalt)
        #expect(client.remoteKey == server.localKey && client.remoteSalt == server.localSalt)
    }

    @Test func noCommonProfileFailsBothSides() throws {
        let pair = try BackToBack(
            client: DTLSConfiguration(srtpProfiles: [.aes128CMHMACSHA1_80]),
            server: DTLSConfiguration(srtpProfiles: [.aeadAES128GCM]))
        pair.handshake()
        #expect(pair.clientKeys == nil && pair.serverKeys == nil)
        #expect(BackToBack.failure(in: pair.serverEvents)?.code == .noSRTPProfile)
        #expect(BackToBack.failure(in: pair.clientEvents)?.code == .noSRTPProfile)
    }

    @Test(arguments: [256, 500, 1200])
    func everyDatagramFitsTheMTU(mtu: Int) throws {
        let configuration = DTLSConfiguration(mtu: mtu)
        let pair = try BackToBack(client: configuration, server: configuration)
        pair.handshake()
        #expect(pair.clientKeys != nil && pair.serverKeys != nil)
        #expect(pair.clientKeys == pair.serverKeys?.swapped)
        let sizes = pair.log.map { $0.1.count }
        #expect(sizes.allSatisfy { $0 <= mtu }, "sizes \(sizes) exceed MTU \(mtu)")
        if mtu < 1200 {
            // The server's flight (certificate, key exchange, request) no longer fits one datagram.
            #expect(pair.log.count > 4, "sizes \(sizes)")
        }
    }

    @Test func serverRejectsAClientWithTheWrongFingerprint() throws {
        let pair = try BackToBack(serverExpects: TestIdentities.stranger.fingerprint)
        pair.handshake()
        let serverError = try #require(BackToBack.failure(in: pair.serverEvents))
        let clientError = try #require(BackToBack.failure(in: pair.clientEvents))
        #expect(serverError.code == .fingerprintMismatch)
        #expect(serverError.message.contains(TestIdentities.client.fingerprint.sdpValue))
        #expect(serverError.message.contains(TestIdentities.stranger.fingerprint.sdpValue))
        #expect(clientError.code == .handshakeFailed)
        #expect(clientError.openSSLErrors.contains { $0.contains("bad certificate") }, "\(clientError)")
        #expect(pair.clientKeys == nil && pair.serverKeys == nil)
        #expect(pair.client.keyingMaterial == nil && pair.server.keyingMaterial == nil)
        #expect(pair.client.nextTimeout == nil && pair.server.nextTimeout == nil)
        // A failed endpoint ignores everything afterwards.
        #expect(pair.server.feed(datagram: [0x16, 0xFE, 0xFD]).datagrams.isEmpty)
        #expect(pair.client.handleTimeout().datagrams.isEmpty)
    }

    @Test func clientRejectsAServerWithTheWrongFingerprint() throws {
        let pair = try BackToBack(clientExpects: TestIdentities.stranger.fingerprint)
        pair.handshake()
        let clientError = try #require(BackToBack.failure(in: pair.clientEvents))
        let serverError = try #require(BackToBack.failure(in: pair.serverEvents))
        #expect(clientError.code == .fingerprintMismatch)
        #expect(clientError.message.contains(TestIdentities.server.fingerprint.sdpValue))
        #expect(serverError.code == .handshakeFailed)
        #expect(serverError.openSSLErrors.contains { $0.contains("bad certificate") }, "\(serverError)")
        #expect(pair.clientKeys == nil && pair.serverKeys == nil)
    }

    @Test func lostClientHelloIsRetransmittedAfterTheTimeout() async throws {
        // A short first timeout keeps the test fast; the default is RFC 6347's 1 s.
        let configuration = DTLSConfiguration(initialRetransmitTimeout: .milliseconds(200))
        let pair = try BackToBack(client: configuration, server: configuration)
        pair.handshake(drop: { _, _, index in index == 0 })  // lose the first ClientHello
        #expect(pair.clientKeys == nil && pair.serverKeys == nil)
        #expect(pair.log.count == 1)
        let timeout = try #require(pair.client.nextTimeout)
        #expect(timeout <= .milliseconds(200))
        if timeout > .milliseconds(100) {
            // Early calls do nothing: OpenSSL only acts once the timer has expired.
            #expect(pair.client.handleTimeout().datagrams.isEmpty)
        }
        try await Task.sleep(for: timeout + .milliseconds(5))
        #expect(pair.client.nextTimeout == .zero)
        let retransmission = pair.client.handleTimeout()
        #expect(retransmission.datagrams.count == 1)
        // The same ClientHello in a record with the next record sequence number (header bytes 5-10).
        #expect(retransmission.datagrams.first?.dropFirst(13).elementsEqual(pair.log[0].1.dropFirst(13)) == true)
        // The timer runs again with the doubled timeout.
        let next = try #require(pair.client.nextTimeout)
        #expect(next > .milliseconds(200) && next <= .milliseconds(400))
        pair.enqueue(retransmission, from: .client)
        pair.run()
        #expect(pair.clientKeys != nil && pair.clientKeys == pair.serverKeys?.swapped)
        #expect(pair.client.nextTimeout == nil)
    }

    @Test func firstRetransmitTimeoutDefaultsToOneSecond() throws {
        let client = try DTLSEndpoint(
            role: .client, identity: TestIdentities.client, remoteFingerprint: TestIdentities.server.fingerprint)
        #expect(client.nextTimeout == nil, "no timer before start")
        #expect(client.start().datagrams.count == 1)
        let timeout = try #require(client.nextTimeout)
        #expect(timeout > .milliseconds(500) && timeout <= .seconds(1))
    }

    @Test func lostFinalServerFlightIsRecoveredByTheClientsRetransmission() async throws {
        let configuration = DTLSConfiguration(initialRetransmitTimeout: .milliseconds(30))
        let pair = try BackToBack(client: configuration, server: configuration)
        // Datagrams: 0 ClientHello, 1 server flight, 2 client Finished flight, 3 server Finished (lost).
        pair.handshake(drop: { direction, _, index in direction == .toClient && index == 3 })
        #expect(pair.serverKeys != nil)
        #expect(pair.clientKeys == nil)
        let timeout = try #require(pair.client.nextTimeout)
        try await Task.sleep(for: timeout + .milliseconds(5))
        pair.enqueue(pair.client.handleTimeout(), from: .client)
        pair.run()  // the established server answers the repeated flight with its own
        #expect(pair.clientKeys != nil && pair.clientKeys == pair.serverKeys?.swapped)
        #expect(BackToBack.failure(in: pair.serverEvents) == nil)
    }

    @Test func garbageNeverCrashesAFreshEndpoint() throws {
        var random = SplitMix64(seed: 0xCA11)
        for round in 0..<200 {
            let server = try DTLSEndpoint(
                role: .server, identity: TestIdentities.server, remoteFingerprint: TestIdentities.client.fingerprint)
            let client = try DTLSEndpoint(
                role: .client, identity: TestIdentities.client, remoteFingerprint: TestIdentities.server.fingerprint)
            _ = client.start()
            for endpoint in [server, client] {
                for _ in 0..<5 {
                    var datagram = random.bytes(Int.random(in: 0...1500, using: &random))
                    if round % 2 == 0, datagram.count >= 13 {
                        // Plausible DTLS 1.2 record headers get further into OpenSSL's parser.
                        datagram[0] = [20, 21, 22, 23][round % 4]
                        datagram[1] = 0xFE
                        datagram[2] = 0xFD
                        let length = datagram.count - 13
                        datagram[11] = UInt8(length >> 8)
                        datagram[12] = UInt8(length & 0xFF)
                    }
                    let output = endpoint.feed(datagram: datagram)
                    #expect(output.datagrams.allSatisfy { $0.count <= 1200 })
                    _ = endpoint.handleTimeout()
                }
            }
        }
        // An endpoint that was never started ignores input.
        let idle = try DTLSEndpoint(
            role: .client, identity: TestIdentities.client, remoteFingerprint: TestIdentities.server.fingerprint)
        #expect(idle.feed(datagram: random.bytes(200)).datagrams.isEmpty)
        #expect(idle.nextTimeout == nil)
        #expect(idle.feed(datagram: []).events.isEmpty)
    }

    @Test func garbageLeavesAnEstablishedAssociationUsable() throws {
        let pair = try BackToBack()
        pair.handshake()
        let keys = try #require(pair.clientKeys)
        var random = SplitMix64(seed: 0xD715)
        for round in 0..<500 {
            var datagram = random.bytes(Int.random(in: 1...1500, using: &random))
            if datagram.count >= 13, round % 2 == 0 {
                datagram[0] = round % 4 == 0 ? 23 : 22
                datagram[1] = 0xFE
                datagram[2] = 0xFD
                datagram[3] = 0
                datagram[4] = UInt8(round % 3)  // epoch 0, 1 or 2
                let length = datagram.count - 13
                datagram[11] = UInt8(length >> 8)
                datagram[12] = UInt8(length & 0xFF)
            }
            let target = round % 2 == 0 ? pair.client : pair.server
            let output = target.feed(datagram: datagram)
            #expect(output.events.isEmpty, "round \(round): \(output.events)")
        }
        #expect(pair.client.keyingMaterial == keys)
        #expect(pair.server.keyingMaterial == keys.swapped)
        // The association still carries real records: an orderly close gets through.
        pair.enqueue(pair.server.close(), from: .server)
        pair.run()
        #expect(pair.clientEvents.contains { if case .closed = $0 { true } else { false } })
    }

    /// OpenSSL 3.0 fails an association on an encrypted record shorter than the AEAD overhead; the endpoint
    /// drops such records first (see DTLSRecordFilter). Large and stale-epoch records OpenSSL discards itself.
    @Test(arguments: [
        (23, 1, 0), (23, 1, 1), (23, 1, 16), (23, 1, 23), (22, 1, 5), (21, 1, 2), (20, 1, 1), (24, 1, 1),
        (23, 1, 24), (23, 1, 18_433), (23, 1, 40_000), (23, 2, 1), (22, 2, 1), (23, 0, 1), (21, 0, 2), (20, 0, 1),
    ])
    func forgedRecordsDoNotEndAnAssociation(type: Int, epoch: Int, length: Int) throws {
        let pair = try BackToBack()
        pair.handshake()
        var record = [UInt8](repeating: 0xAB, count: 13 + length)
        record[0] = UInt8(type)
        record[1] = 0xFE
        record[2] = 0xFD
        record[4] = UInt8(epoch)
        record[10] = 9
        record[11] = UInt8(truncatingIfNeeded: length >> 8)
        record[12] = UInt8(truncatingIfNeeded: length)
        #expect(pair.client.feed(datagram: record).events.isEmpty)
        #expect(pair.server.feed(datagram: record).events.isEmpty)
        // The same record behind a genuine one in one datagram must not hide the genuine one.
        let close = pair.client.close().datagrams
        #expect(close.count == 1)
        // (Only for datagrams of realistic size: OpenSSL reads at most ~18 KB of one datagram.)
        let datagram = length < 1000 ? record + close[0] + record : close[0]
        let events = pair.server.feed(datagram: datagram).events
        #expect(events.contains { if case .closed = $0 { true } else { false } }, "\(events)")
    }

    @Test func closeNotifiesThePeer() throws {
        let pair = try BackToBack()
        pair.handshake()
        #expect(pair.serverKeys != nil)
        let output = pair.client.close()
        #expect(output.datagrams.count == 1)
        pair.enqueue(output, from: .client)
        pair.run()
        #expect(pair.serverEvents.contains { if case .closed = $0 { true } else { false } })
        if case .closed = pair.server.status {} else { Issue.record("server status \(pair.server.status)") }
        #expect(pair.client.close().datagrams.isEmpty)
    }

    @Test(arguments: [0, 100, 255, 70_000])
    func rejectsAnMTUOpenSSLCannotUse(mtu: Int) {
        #expect(throws: DTLSError.self) {
            try DTLSEndpoint(
                role: .server, identity: TestIdentities.server, remoteFingerprint: TestIdentities.client.fingerprint,
                configuration: DTLSConfiguration(mtu: mtu))
        }
    }

    @Test func rejectsAnEmptyProfileList() {
        do {
            _ = try DTLSEndpoint(
                role: .server, identity: TestIdentities.server, remoteFingerprint: TestIdentities.client.fingerprint,
                configuration: DTLSConfiguration(srtpProfiles: []))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidConfiguration)
        }
    }

    @Test func sharedContextServesManyEndpoints() throws {
        let serverContext = try DTLSContext(identity: TestIdentities.server)
        let clientContext = try DTLSContext(identity: TestIdentities.client)
        var seen: Set<[UInt8]> = []
        for _ in 0..<3 {
            let client = try DTLSEndpoint(
                role: .client, context: clientContext, remoteFingerprint: TestIdentities.server.fingerprint)
            let server = try DTLSEndpoint(
                role: .server, context: serverContext, remoteFingerprint: TestIdentities.client.fingerprint)
            var toServer = client.start().datagrams
            var clientKeys: SRTPKeyingMaterial?
            var serverKeys: SRTPKeyingMaterial?
            while !toServer.isEmpty {
                var toClient: [[UInt8]] = []
                for datagram in toServer {
                    let output = server.feed(datagram: datagram)
                    toClient += output.datagrams
                    serverKeys = serverKeys ?? BackToBack.keys(in: output.events)
                }
                toServer = []
                for datagram in toClient {
                    let output = client.feed(datagram: datagram)
                    toServer += output.datagrams
                    clientKeys = clientKeys ?? BackToBack.keys(in: output.events)
                }
            }
            let keys = try #require(clientKeys)
            #expect(keys == serverKeys?.swapped)
            seen.insert(keys.localKey)
        }
        #expect(seen.count == 3, "every association derives fresh keys")
    }
}

@Suite struct DTLSIdentityTests {
    @Test func fingerprintIsSDPShaped() throws {
        let value = TestIdentities.server.fingerprint.sdpValue
        #expect(value.hasPrefix("sha-256 "))
        let hex = value.dropFirst("sha-256 ".count).split(separator: ":")
        #expect(hex.count == 32)
        #expect(hex.allSatisfy { $0.count == 2 && $0.allSatisfy { "0123456789ABCDEF".contains($0) } })
        #expect(TestIdentities.server.fingerprint != TestIdentities.client.fingerprint)
    }

    @Test func fingerprintParsesSDPValues() throws {
        let fingerprint = TestIdentities.client.fingerprint
        #expect(DTLSFingerprint(sdp: fingerprint.sdpValue) == fingerprint)
        #expect(DTLSFingerprint(sdp: fingerprint.sdpValue.lowercased()) == fingerprint)
        #expect(DTLSFingerprint(sdp: "SHA-256 " + fingerprint.sdpValue.dropFirst(8)) == fingerprint)
        #expect(DTLSFingerprint(sdp: "sha-1 AB:CD") == nil)
        #expect(DTLSFingerprint(sdp: "sha-256 AB:CD") == nil)
        #expect(DTLSFingerprint(sdp: "sha-256") == nil)
        #expect(DTLSFingerprint(sdp: "") == nil)
        #expect(DTLSFingerprint(sdp: String(fingerprint.sdpValue.dropLast()) + "G") == nil)
        #expect(DTLSFingerprint(sdp: fingerprint.sdpValue + ":00") == nil)
    }

    @Test func identitiesAreFresh() throws {
        let a = try DTLSIdentity()
        let b = try DTLSIdentity()
        #expect(a.fingerprint != b.fingerprint)
    }
}
