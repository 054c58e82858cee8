import CallsWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `serve --stun-server`: the public address learned once at start is what ICE candidates advertise.
@Suite struct ServeAdvertisedAddressTests {
    @Test func publicAddressLearnedByStunIsAdvertised() throws {
        // A STUN responder on loopback that reports a documentation address as the mapped address
        // (no traffic goes there: it is only data in the response).
        let stun = try FakeSTUNResponder(mapped: "203.0.113.7")
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path, extraArgs: ["--stun-server", "127.0.0.1:\(stun.port)"])
        #expect(serve.stdoutLines.contains { $0.hasPrefix("advertised addresses: 203.0.113.7") }, "\(serve.stdoutLines)")
        #expect(serve.stdoutLines.contains { $0.contains("STUN") })
        #expect(serve.stop().0 == 0)
        #expect(stun.requests >= 1)
    }

    @Test func silentStunServerFallsBackToLocalAddressesWithAWarning() throws {
        let silent = try FakeSTUNResponder(mapped: nil)
        let dir = TempDir()
        let serve = try ServeCLITests.RunningServe(dataDir: dir.path, extraArgs: ["--stun-server", "127.0.0.1:\(silent.port)"])
        #expect(serve.stdoutLines.contains { $0.hasPrefix("advertised addresses:") && !$0.contains("203.0.113") })
        #expect(serve.stop().0 == 0)
    }
}

/// Answers Binding requests with a chosen XOR-MAPPED-ADDRESS, or stays silent when `mapped` is nil.
final class FakeSTUNResponder: @unchecked Sendable {
    // @unchecked: `fd` is immutable; `count` is only touched under `lock`.
    let fd: Int32
    let port: UInt16
    private let lock = NSLock()
    private var count = 0
    private var running = true
    var requests: Int { lock.withLock { count } }

    init(mapped: String?) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: sin.sin_port)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in self.serve(mapped: mapped) }
        thread.start()
    }

    deinit {
        lock.withLock { running = false }
        usleep(250_000)
        close(fd)
    }

    private func serve(mapped: String?) {
        let end = Date().addingTimeInterval(30)
        var buffer = [UInt8](repeating: 0, count: 1500)
        while Date() < end, lock.withLock({ running }) {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &len) }
                }
            }
            guard n > 0, let request = try? STUNMessage(decoding: buffer[0..<n]) else { continue }
            lock.withLock { count += 1 }
            guard let mapped, let address = STUNAddress(ip: mapped, port: 40000) else { continue }
            let response = STUNMessage(
                method: .binding, messageClass: .successResponse, transactionID: request.transactionID,
                attributes: [.xorMappedAddress(address), .software("fake")])
            guard let bytes = try? response.encoded(fingerprint: true) else { continue }
            _ = bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, raw.baseAddress, raw.count, 0, $0, len) }
                }
            }
        }
    }
}
