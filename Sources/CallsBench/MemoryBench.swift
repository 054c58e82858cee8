import CallsMedia
import Foundation
import Glibc

/// Heap bytes per session of the media path's per-participant pieces (net bytes allocated by this thread, under the
/// LD_PRELOAD shim of `scripts/bench.sh`):
/// a server DTLS endpoint before and after its handshake, and an SRTP session. The large-call benchmark reports the
/// whole server's growth per participant; this says where it goes.
enum MemoryBench {
    static func heap() -> Int { ThreadMallocCounter.bytes ?? 0 }

    static func run(count: Int = 300) -> [BenchResult] {
        guard MediaLibraries.initializeSRTP() else { return [] }
        guard ThreadMallocCounter.bytes != nil else {
            print("memory: needs the allocation-counting shim (scripts/bench.sh memory); skipped")
            return []
        }
        do {
            let clientContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-client"))
            let serverContext = try DTLSContext(identity: DTLSIdentity(commonName: "bench-server"))
            var clients: [DTLSEndpoint] = []
            var servers: [DTLSEndpoint] = []
            let h0 = heap()
            for _ in 0..<count {
                clients.append(
                    try DTLSEndpoint(role: .client, context: clientContext, remoteFingerprint: serverContext.identity.fingerprint))
            }
            let h1 = heap()
            for _ in 0..<count {
                let s = try DTLSEndpoint(role: .server, context: serverContext, remoteFingerprint: clientContext.identity.fingerprint)
                _ = s.start()
                servers.append(s)
            }
            let h2 = heap()
            var keys: [SRTPKeyingMaterial] = []
            for (client, server) in zip(clients, servers) {
                MediaBench.pump(client: client, server: server)
                if let k = server.keyingMaterial { keys.append(k) }
            }
            // The clients' share of the handshake growth: free them and see what goes.
            clients.removeAll()
            let h4 = heap()
            var sessions: [SRTPSession] = []
            for k in keys { sessions.append(try SRTPSession(keyingMaterial: k)) }
            let h5 = heap()
            // The same sessions once SRTCP went both ways (the libsrtp2 contexts are made at the first RTCP packet).
            var rtcp = [UInt8](repeating: 0, count: 8 + SRTPSession.maxRTCPTrailerLength)
            for (i, k) in keys.enumerated() {
                let peer = try SRTPSession(keyingMaterial: k.swapped)
                rtcp.withUnsafeMutableBytes { b in
                    b[0] = 0x80
                    b[1] = 201  // an empty receiver report
                    b[2] = 0
                    b[3] = 1
                    b[4] = 0
                    b[5] = 0
                    b[6] = 0
                    b[7] = 1
                }
                let n = try rtcp.withUnsafeMutableBytes { try peer.protectRTCP($0, length: 8) }
                _ = try rtcp.withUnsafeMutableBytes { try sessions[i].unprotectRTCP($0, length: n) }
                rtcp.withUnsafeMutableBytes { b in
                    b[0] = 0x80
                    b[1] = 201
                }
                _ = try rtcp.withUnsafeMutableBytes { try sessions[i].protectRTCP($0, length: 8) }
                withExtendedLifetime(peer) {}
            }
            let h6 = heap()
            let perServerIdle = Double(h2 - h1) / Double(count)
            // What the servers hold after their handshakes once the clients are gone: everything allocated since the
            // clients were created, minus what freeing the clients gave back and the clients' own creation.
            let perServerConnected = Double(h4 - h1) / Double(count)
            let perSRTP = Double(h5 - h4) / Double(count)
            print(
                "memory: per session: DTLS client endpoint created \(kib(Double(h1 - h0) / Double(count))), "
                    + "server endpoint started \(kib(perServerIdle)), server endpoint after its handshake (clients freed) "
                    + "\(kib(perServerConnected)), SRTP session \(kib(perSRTP)), and once SRTCP went both ways "
                    + "\(kib(perSRTP + Double(h6 - h5) / Double(count))) (\(count) of each)")
            withExtendedLifetime((servers, sessions)) {}
            return [
                BenchResult(name: "memory: DTLS server endpoint after handshake (bytes)", operations: 1, seconds: perServerConnected / 1e9),
                BenchResult(name: "memory: SRTP session (bytes)", operations: 1, seconds: perSRTP / 1e9),
            ]
        } catch {
            print("memory: failed: \(error)")
            return []
        }
    }

    static func kib(_ bytes: Double) -> String { String(format: "%.1f KiB", bytes / 1024) }
}
