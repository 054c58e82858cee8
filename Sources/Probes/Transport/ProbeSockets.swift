import CallsWire
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock deadlines for blocking socket calls.
public typealias Deadline = ContinuousClock.Instant

extension ContinuousClock.Instant {
    /// Milliseconds from now until this instant, at least 0, for `poll(2)`.
    var pollMilliseconds: Int32 {
        let remaining = self - ContinuousClock.now
        let ms = Double(remaining.components.seconds) * 1000 + Double(remaining.components.attoseconds) / 1e15
        return Int32(max(0, min(ms.rounded(.up), Double(Int32.max))))
    }
}

extension Duration {
    /// The duration in milliseconds, for reports.
    public var inMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// Waits until `fd` is readable (or writable) or the deadline passes. Returns false on timeout.
func waitFor(_ fd: Int32, events: Int16, until deadline: Deadline) throws(ProbeNetworkError) -> Bool {
    while true {
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let rc = poll(&pfd, 1, deadline.pollMilliseconds)
        if rc > 0 { return true }
        if rc == 0 { return false }
        if errno == EINTR { continue }
        throw ProbeNetworkError(.other, "poll failed: \(errnoText())")
    }
}

func networkError(_ code: Int32, _ what: String) -> ProbeNetworkError {
    switch code {
    case ECONNREFUSED: return ProbeNetworkError(.refused, "\(what): connection refused (nothing listens there)")
    case EHOSTUNREACH, ENETUNREACH: return ProbeNetworkError(.unreachable, "\(what): \(errnoText(code))")
    case ETIMEDOUT: return ProbeNetworkError(.timeout, "\(what): timed out")
    case ECONNRESET, EPIPE: return ProbeNetworkError(.closed, "\(what): connection reset by peer")
    default: return ProbeNetworkError(.other, "\(what): \(errnoText(code))")
    }
}

/// A UDP socket for probes: unconnected (send to anyone, used by NAT tests) or connected to one peer
/// (so ICMP port-unreachable comes back as ECONNREFUSED, which proves "closed").
public final class UDPProbeSocket {
    let fd: Int32
    public let family: STUNAddress.Family
    private(set) var connectedTo: STUNAddress?

    /// Opens a socket bound to `local` (any address, port 0 by default).
    public init(family: STUNAddress.Family, local: STUNAddress? = nil) throws(ProbeNetworkError) {
        self.family = family
        let fd = socket(family == .ipv4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProbeNetworkError(.other, "cannot open a UDP socket: \(errnoText())") }
        let bindTo =
            local ?? (family == .ipv4 ? STUNAddress(ipv4: 0, port: 0) : STUNAddress(ipv6High: 0, low: 0, port: 0))
        let rc = bindTo.withSockAddr { bind(fd, $0, $1) }
        if rc != 0 {
            let code = errno
            close(fd)
            throw ProbeNetworkError(.other, "cannot bind UDP \(bindTo): \(errnoText(code))")
        }
        // Stored only now: once every property is set, a throw runs deinit, which would close the number a
        // second time, when another thread may already have been given it.
        self.fd = fd
    }

    deinit { close(fd) }

    /// The local address the kernel chose.
    public var localAddress: STUNAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { STUNAddress(sockaddr: $0) }
        }
    }

    /// Connects the socket to `remote` so only its datagrams arrive and ICMP errors are reported.
    public func connect(to remote: STUNAddress) throws(ProbeNetworkError) {
        let rc = remote.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 { throw networkError(errno, "connect UDP \(remote)") }
        connectedTo = remote
    }

    public func send(_ bytes: [UInt8], to remote: STUNAddress? = nil) throws(ProbeNetworkError) {
        let n: Int
        if let remote, connectedTo == nil {
            n = bytes.withUnsafeBytes { raw in
                remote.withSockAddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, $1) }
            }
        } else {
            n = bytes.withUnsafeBytes { raw in Glibc.send(fd, raw.baseAddress, raw.count, 0) }
        }
        if n < 0 { throw networkError(errno, "send UDP to \(remote?.description ?? connectedTo?.description ?? "?")") }
    }

    /// The next datagram and its source, or nil at the deadline.
    /// - Throws: `.refused` when an ICMP port-unreachable arrived for a connected socket.
    public func receive(until deadline: Deadline) throws(ProbeNetworkError) -> (bytes: [UInt8], from: STUNAddress)? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            guard try waitFor(fd, events: Int16(POLLIN), until: deadline) else { return nil }
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &len)
                    }
                }
            }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw networkError(errno, "receive UDP from \(connectedTo?.description ?? "peer")")
            }
            let from =
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { STUNAddress(sockaddr: $0) }
                } ?? connectedTo ?? STUNAddress(ipv4: 0, port: 0)
            return (Array(buffer[0..<n]), from)
        }
    }
}

/// A byte stream (TCP, or TLS over TCP) with deadlines.
public protocol ProbeStream: AnyObject {
    var localAddress: STUNAddress? { get }
    var remoteAddress: STUNAddress { get }
    func write(_ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws(ProbeNetworkError)
    /// Some bytes, or nil at the deadline. Throws `.closed` at end of stream.
    func read(until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) -> [UInt8]?
}

/// A TCP connection opened with a deadline: RST is `.refused`, silence is `.timeout`.
public final class TCPProbeStream: ProbeStream {
    let fd: Int32
    public let remoteAddress: STUNAddress

    public init(connectingTo remote: STUNAddress, until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) {
        remoteAddress = remote
        let fd = socket(
            remote.socketFamily, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ProbeNetworkError(.other, "cannot open a TCP socket: \(errnoText())") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = remote.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let code = errno
            close(fd)
            throw networkError(code, "connect TCP \(remote)")
        }
        if rc != 0 {
            let ready: Bool
            do { ready = try waitFor(fd, events: Int16(POLLOUT), until: deadline) } catch {
                close(fd)
                throw error
            }
            if !ready {
                close(fd)
                throw ProbeNetworkError(.timeout, "connect TCP \(remote): no answer (SYN unanswered: filtered or host down)")
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError != 0 {
                close(fd)
                throw networkError(soError, "connect TCP \(remote)")
            }
        }
        // Stored only once connected (see UDPProbeSocket.init: a throw after this would close it twice).
        self.fd = fd
    }

    deinit { close(fd) }

    public var localAddress: STUNAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { STUNAddress(sockaddr: $0) }
        }
    }

    public func write(_ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress!.advanced(by: offset), raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n >= 0 {
                offset += n
                continue
            }
            if errno == EAGAIN || errno == EINTR {
                if try !waitFor(fd, events: Int16(POLLOUT), until: deadline) {
                    throw ProbeNetworkError(.timeout, "send TCP to \(remoteAddress): timed out")
                }
                continue
            }
            throw networkError(errno, "send TCP to \(remoteAddress)")
        }
    }

    public func read(until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            guard try waitFor(fd, events: Int16(POLLIN), until: deadline) else { return nil }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { throw ProbeNetworkError(.closed, "\(remoteAddress) closed the connection") }
            if errno == EAGAIN || errno == EINTR { continue }
            throw networkError(errno, "receive TCP from \(remoteAddress)")
        }
    }
}
