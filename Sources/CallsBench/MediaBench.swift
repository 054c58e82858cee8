import CallsMedia

/// Media path benchmarks: SRTP per packet (both profiles, 160-byte payload as Opus at 20 ms), SRTP session setup,
/// DTLS identity generation and full DTLS handshakes with both endpoints in memory.
enum MediaBench {
    static func run() -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else {
            print("media: libsrtp2 failed to initialise; skipped")
            return []
        }
        do {
            var results: [BenchResult] = []
            let serverIdentity = try DTLSIdentity(commonName: "bench-server")
            let clientIdentity = try DTLSIdentity(commonName: "bench-client")
            let serverContext = try DTLSContext(identity: serverIdentity)
            let clientContext = try DTLSContext(identity: clientIdentity)
            for profile in SRTPProtectionProfile.allSupported {
                let keys = try handshake(
                    clientContext: clientContext, serverContext: serverContext,
                    configuration: DTLSConfiguration(srtpProfiles: [profile]))
                results += try srtp(profile: profile, keys: keys)
            }
            let keys = try handshake(clientContext: clientContext, serverContext: serverContext)
            results.append(
                try measure("srtp: create session (inbound + outbound)", operations: 2000) {
                    for _ in 0..<2000 { _ = try SRTPSession(keyingMaterial: keys) }
                })
            results.append(
                try measure("dtls: generate identity (P-256 key + cert)", operations: 100) {
                    for _ in 0..<100 { _ = try DTLSIdentity() }
                })
            let handshakes = 300
            results.append(
                try measure("dtls: handshake, both sides in memory", operations: handshakes) {
                    for _ in 0..<handshakes {
                        _ = try handshake(clientContext: clientContext, serverContext: serverContext)
                    }
                })
            return results
        } catch {
            print("media: benchmark failed: \(error)")
            return []
        }
    }

    struct HandshakeFailed: Error {}

    /// One full handshake between fresh endpoints; returns the client's keys.
    static func handshake(
        clientContext: DTLSContext,
        serverContext: DTLSContext,
        configuration: DTLSConfiguration = DTLSConfiguration()
    ) throws -> SRTPKeyingMaterial {
        let client = try DTLSEndpoint(
            role: .client, context: clientContext, remoteFingerprint: serverContext.identity.fingerprint,
            configuration: configuration)
        let server = try DTLSEndpoint(
            role: .server, context: serverContext, remoteFingerprint: clientContext.identity.fingerprint,
            configuration: configuration)
        pump(client: client, server: server)
        guard let keys = client.keyingMaterial, server.keyingMaterial != nil else { throw HandshakeFailed() }
        return keys
    }

    /// Runs a handshake between two endpoints in memory, flight by flight, until neither has more to send.
    static func pump(client: DTLSEndpoint, server: DTLSEndpoint) {
        var toServer = client.start().datagrams
        while !toServer.isEmpty {
            var toClient: [[UInt8]] = []
            for datagram in toServer { toClient += server.feed(datagram: datagram).datagrams }
            toServer = []
            for datagram in toClient { toServer += client.feed(datagram: datagram).datagrams }
        }
    }

    /// Protect and unprotect throughput of one profile, in place, without allocation per packet.
    static func srtp(profile: SRTPProtectionProfile, keys: SRTPKeyingMaterial) throws -> [BenchResult] {
        let sender = try SRTPSession(keyingMaterial: keys)
        let receiver = try SRTPSession(keyingMaterial: keys.swapped)
        let name = profile == .aeadAES128GCM ? "GCM" : "AES-CM"
        let plainLength = 12 + 160
        let count = 100_000
        let stride = plainLength + SRTPSession.maxTrailerLength
        // Packets protected for the unprotect run, each in its own slot (replay protection forbids reuse).
        var slots = [UInt8](repeating: 0, count: count * stride)
        var protectedLength = 0
        let protect = try slots.withUnsafeMutableBytes { all in
            try measure("srtp: protect RTP 160 B (\(name))", operations: count) {
                for index in 0..<count {
                    let slot = UnsafeMutableRawBufferPointer(rebasing: all[index * stride..<(index + 1) * stride])
                    writeRTPHeader(slot, sequence: UInt16(truncatingIfNeeded: index), timestamp: UInt32(index) &* 960)
                    protectedLength = try sender.protectRTP(slot, length: plainLength)
                }
            }
        }
        let unprotect = try slots.withUnsafeMutableBytes { all in
            try measure("srtp: unprotect RTP 160 B (\(name))", operations: count) {
                for index in 0..<count {
                    let slot = UnsafeMutableRawBufferPointer(rebasing: all[index * stride..<(index + 1) * stride])
                    _ = try receiver.unprotectRTP(slot, length: protectedLength)
                }
            }
        }
        var rows = [protect, unprotect]
        do {
            // The same protect on libsrtp2 (NSS), for comparison with the OpenSSL EVP default, and allocations of each.
            let reference = try SRTPSession(keyingMaterial: keys, rtpProtectBackend: .libsrtp)
            var evpAllocations: Double?
            var libsrtpAllocations: Double?
            let row = try slots.withUnsafeMutableBytes { all in
                let slot = UnsafeMutableRawBufferPointer(rebasing: all[0..<stride])
                for (session, out) in [(sender, 0), (reference, 1)] {
                    let before = MallocCounter.count
                    for index in 0..<1000 {
                        writeRTPHeader(slot, sequence: UInt16(truncatingIfNeeded: 40_000 + index), timestamp: 0)
                        _ = try session.protectRTP(slot, length: plainLength)
                    }
                    let perCall = MallocCounter.count.flatMap { now in before.map { Double(now - $0) / 1000 } }
                    if out == 0 { evpAllocations = perCall } else { libsrtpAllocations = perCall }
                }
                return try measure("srtp: protect RTP 160 B (\(name), libsrtp2)", operations: count) {
                    for index in 0..<count {
                        writeRTPHeader(slot, sequence: UInt16(truncatingIfNeeded: index), timestamp: UInt32(index) &* 960)
                        _ = try reference.protectRTP(slot, length: plainLength)
                    }
                }
            }
            rows[0] = BenchResult(
                name: "srtp: protect RTP 160 B (\(name), OpenSSL EVP)", operations: protect.operations, seconds: protect.seconds)
            rows.append(row)
            print(
                "media: allocations per \(name) RTP protect: OpenSSL EVP \(evpAllocations.map { String($0) } ?? "n/a"), "
                    + "libsrtp2 \(libsrtpAllocations.map { String($0) } ?? "n/a")")
        }
        return rows
    }

    static func writeRTPHeader(_ packet: UnsafeMutableRawBufferPointer, sequence: UInt16, timestamp: UInt32) {
        packet[0] = 0x80
        packet[1] = 111
        packet.storeBytes(of: sequence.bigEndian, toByteOffset: 2, as: UInt16.self)
        packet.storeBytes(of: timestamp.bigEndian, toByteOffset: 4, as: UInt32.self)
        packet.storeBytes(of: UInt32(0x1234_5678).bigEndian, toByteOffset: 8, as: UInt32.self)
    }
}
