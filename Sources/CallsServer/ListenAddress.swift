import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `HOST:PORT` to listen on: `0.0.0.0:8443`, `127.0.0.1:0`, `[::]:8045`, `[::1]:8045`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IP literal (IPv6 without brackets).
    public var host: String
    /// 0 lets the system choose.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; HOST must be an IP address of this machine (or 0.0.0.0 / :: for all).
    /// - Throws: ``ListenAddressError`` saying what is wrong and showing the expected form.
    public init(parsing text: String) throws(ListenAddressError) {
        let example = "expected HOST:PORT with an IP address, for example 0.0.0.0:8443, 127.0.0.1:8045 or [::]:8443"
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ListenAddressError("\"\(text)\" has \"[\" without \"]\"; \(example)")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ListenAddressError("\"\(text)\" has no :PORT; \(example)") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ListenAddressError("\"\(text)\" has no :PORT; \(example)")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw ListenAddressError("\"\(text)\": write IPv6 addresses in brackets, like [::1]:8045")
            }
        }
        guard let port = Int(portPart), (0...65535).contains(port) else {
            throw ListenAddressError("\"\(text)\": the port \"\(portPart)\" is not a number from 0 to 65535; \(example)")
        }
        let host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        guard Self.isIPLiteral(host) else {
            throw ListenAddressError("\"\(text)\": \"\(host)\" is not an IP address; \(example)")
        }
        self.init(host: host, port: port)
    }

    public var isIPv6: Bool { host.contains(":") }
    /// True for 0.0.0.0 and ::.
    public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static func isIPLiteral(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }
}

public struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A socket could not be bound.
public struct BindError: Error, Sendable, CustomStringConvertible {
    public enum Proto: String, Sendable { case udp, tcp }
    public let address: ListenAddress
    public let proto: Proto
    /// The errno of bind(2)/listen(2).
    public let code: Int32

    public init(address: ListenAddress, proto: Proto, code: Int32) {
        self.address = address
        self.proto = proto
        self.code = code
    }

    public var isAddressInUse: Bool { code == EADDRINUSE }

    public var description: String {
        let what = "cannot listen on \(address)/\(proto.rawValue)"
        switch code {
        case EADDRINUSE: return "\(what): the port is already in use"
        case EACCES, EPERM:
            return "\(what): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        case EADDRNOTAVAIL: return "\(what): \(address.host) is not an address of this machine"
        default: return "\(what): \(String(cString: strerror(code)))"
        }
    }
}

/// A bound (and for TCP listening) socket that does nothing else; the placeholder media backend holds
/// the RTC ports with these.
final class BoundSocket: Sendable {
    let port: Int
    private let fd: Int32

    init(listen text: String, proto: BindError.Proto) throws {
        let address = try ListenAddress(parsing: text)
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let type = proto == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError(address: address, proto: proto, code: errno) }
        var one: Int32 = 1
        if proto == .tcp { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
        var storage = sockaddr_storage()
        let length: socklen_t
        if address.isIPv6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(address.port).bigEndian)
            inet_pton(AF_INET6, address.host, &sa.sin6_addr)
            withUnsafeBytes(of: sa) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(address.port).bigEndian)
            inet_pton(AF_INET, address.host, &sa.sin_addr)
            withUnsafeBytes(of: sa) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if rc != 0 || (proto == .tcp && listen(fd, 16) != 0) {
            let code = errno
            Glibc.close(fd)
            throw BindError(address: address, proto: proto, code: code)
        }
        var bound = sockaddr_storage()
        var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &boundLength) }
        }
        let port: UInt16 = withUnsafeBytes(of: bound) { raw in
            // sin_port and sin6_port are both at offset 2, in network order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
        self.fd = fd
        self.port = Int(port)
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    deinit { Glibc.close(fd) }
}

/// Addresses of this machine's interfaces, for host candidates when no override or STUN answer exists.
public enum LocalAddresses {
    /// IPv4 addresses of interfaces that are up, loopback excluded; `127.0.0.1` when there is nothing else
    /// (a private network namespace, a box with no network).
    public static func ipv4() -> [String] {
        var result: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return ["127.0.0.1"] }
        defer { freeifaddrs(first) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(entry.pointee.ifa_flags)
            guard flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0,
                let sa = entry.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET)
            else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(sa, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !result.contains(text) { result.append(text) }
            }
        }
        return result.isEmpty ? ["127.0.0.1"] : result
    }
}
