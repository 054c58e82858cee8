import CallsWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Errors from the probe's own sockets, each saying what failed in words an operator can act on.
public struct ProbeNetworkError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The name did not resolve.
        case resolve
        /// ICMP port unreachable (UDP) or RST (TCP): nothing listens there.
        case refused
        /// ICMP host/network unreachable.
        case unreachable
        /// No answer within the time allowed.
        case timeout
        /// TLS handshake or certificate failure.
        case tls
        /// The peer closed the connection.
        case closed
        /// Any other socket error.
        case other
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// Host names and addresses for probes.
public enum Resolver {
    /// Resolves `host` to addresses with `port`, IPv4 first unless `family` says otherwise.
    public static func resolve(host: String, port: UInt16, family: STUNAddress.Family? = nil) throws(ProbeNetworkError)
        -> [STUNAddress]
    {
        let trimmed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = STUNAddress(ip: trimmed, port: port) {
            if let family, literal.family != family {
                throw ProbeNetworkError(.resolve, "\(host) is an \(literal.family) address but \(family) was asked for")
            }
            return [literal]
        }
        var hints = addrinfo()
        hints.ai_family = family == .ipv4 ? AF_INET : (family == .ipv6 ? AF_INET6 : AF_UNSPEC)
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(trimmed, nil, &hints, &result)
        guard rc == 0, let first = result else {
            throw ProbeNetworkError(.resolve, "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var out: [STUNAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sa = info.pointee.ai_addr, let address = STUNAddress(sockaddr: sa, port: port), !out.contains(address) {
                out.append(address)
            }
            cursor = info.pointee.ai_next
        }
        if out.isEmpty { throw ProbeNetworkError(.resolve, "\(host) has no usable address") }
        return out.sorted { ($0.family == .ipv4 ? 0 : 1) < ($1.family == .ipv4 ? 0 : 1) }
    }
}

extension STUNAddress {
    /// Reads an address out of a `sockaddr` (IPv4 or IPv6), using `port` when given.
    init?(sockaddr sa: UnsafePointer<sockaddr>, port: UInt16? = nil) {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in.self).pointee
            self.init(ipv4: UInt32(bigEndian: v4.sin_addr.s_addr), port: port ?? UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            let v6 = UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in6.self).pointee
            let bytes = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
            self.init(family: .ipv6, ipBytes: bytes, port: port ?? UInt16(bigEndian: v6.sin6_port))
        default:
            return nil
        }
    }

    /// Calls `body` with this address as a `sockaddr` and its length.
    func withSockAddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        switch family {
        case .ipv4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = (ipv4 ?? 0).bigEndian
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            let bytes = ipBytes
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                for i in 0..<min(16, bytes.count) { raw[i] = bytes[i] }
            }
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    var socketFamily: Int32 { family == .ipv4 ? AF_INET : AF_INET6 }

    /// The any-address of this family with port 0.
    var unspecified: STUNAddress {
        family == .ipv4 ? STUNAddress(ipv4: 0, port: 0) : STUNAddress(ipv6High: 0, low: 0, port: 0)
    }
}
