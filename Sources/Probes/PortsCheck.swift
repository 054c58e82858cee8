import CallsWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `callsctl ports check`: can this machine bind the deployment's ports (`--local`), and are they
/// open, closed or filtered on a host (`--host`) — with how each verdict was reached.
public enum PortsCheck {
    public enum Proto: String, Sendable { case udp, tcp }

    public struct Port: Sendable, Hashable {
        public let proto: Proto
        public let number: UInt16
        public init(_ proto: Proto, _ number: UInt16) {
            self.proto = proto
            self.number = number
        }
        public var label: String { "\(number)/\(proto.rawValue)" }
        /// What the port is for in a calls deployment.
        public var role: String {
            switch (number, proto) {
            case (8443, .udp): return "media (ICE/UDP)"
            case (8443, .tcp): return "media (ICE-TCP)"
            case (8045, .tcp): return "media server API"
            case (3478, _): return "STUN/TURN"
            case (5349, _): return "TURN over TLS"
            default: return ""
            }
        }
    }

    /// The deployment's defaults: 8443 udp+tcp, 8045 tcp, 3478 udp.
    public static let defaultPorts = [Port(.udp, 8443), Port(.tcp, 8443), Port(.tcp, 8045), Port(.udp, 3478)]

    public enum State: String, Sendable {
        case open, closed, filtered
        case openOrFiltered = "open|filtered"
        /// Local check: the port can be bound.
        case free
        /// Local check: something else holds it.
        case inUse = "in-use"
        /// Local check: not allowed to bind (privileged port without the capability).
        case denied
        case error
    }

    public struct Result: Sendable {
        public let port: Port
        public var state: State
        /// How the verdict was reached ("TCP connect accepted", "ICMP port unreachable", ...).
        public var method: String
        public var detail: String
        public var holder: String?
        public var duration: Duration = .zero
    }

    // MARK: Local

    /// Tries to bind each port on the any-address, as `serve` would.
    public static func local(_ ports: [Port], bindAddress: String = "0.0.0.0") -> [Result] {
        ports.map { port in
            let start = ContinuousClock.now
            var result = bindCheck(port, address: bindAddress)
            result.duration = ContinuousClock.now - start
            return result
        }
    }

    static func bindCheck(_ port: Port, address: String) -> Result {
        guard let addr = STUNAddress(ip: address, port: port.number) else {
            return Result(port: port, state: .error, method: "bind", detail: "\(address) is not an IP address")
        }
        let type = port.proto == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(addr.socketFamily, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return Result(port: port, state: .error, method: "bind", detail: errnoText()) }
        defer { close(fd) }
        if port.proto == .tcp {
            // As a server would: TIME_WAIT leftovers must not count as "in use".
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = addr.withSockAddr { bind(fd, $0, $1) }
        if rc == 0 && (port.proto == .udp || listen(fd, 1) == 0) {
            return Result(port: port, state: .free, method: "bind \(addr)", detail: "can be bound")
        }
        let code = errno
        switch code {
        case EADDRINUSE:
            let holder = SocketOwners.holder(of: port)
            return Result(
                port: port, state: .inUse, method: "bind \(addr)",
                detail: "already in use" + (holder.map { " by \($0)" } ?? " (holder not visible; run as root to see it)"),
                holder: holder)
        case EACCES, EPERM:
            return Result(
                port: port, state: .denied, method: "bind \(addr)",
                detail: "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)")
        case EADDRNOTAVAIL:
            return Result(port: port, state: .error, method: "bind \(addr)", detail: "\(address) is not an address of this machine")
        default:
            return Result(port: port, state: .error, method: "bind \(addr)", detail: errnoText(code))
        }
    }

    // MARK: Remote

    /// Probes each port of `host`: TCP by connecting, UDP with a STUN Binding (a reply proves open,
    /// ICMP port unreachable proves closed, silence is open|filtered).
    public static func remote(host: String, ports: [Port], timeout: Duration) throws(ProbeNetworkError) -> [Result] {
        let address = try Resolver.resolve(host: host, port: 0)[0]
        return ports.map { port in
            let start = ContinuousClock.now
            var target = address
            target.port = port.number
            var result = port.proto == .tcp ? tcpCheck(port, target, timeout: timeout) : udpCheck(port, target, timeout: timeout)
            result.duration = ContinuousClock.now - start
            return result
        }
    }

    static func tcpCheck(_ port: Port, _ target: STUNAddress, timeout: Duration) -> Result {
        do {
            _ = try TCPProbeStream(connectingTo: target, until: ContinuousClock.now + timeout)
            return Result(port: port, state: .open, method: "TCP connect accepted", detail: "\(target) accepts connections")
        } catch {
            switch error.kind {
            case .refused:
                return Result(port: port, state: .closed, method: "TCP RST", detail: "\(target) refused the connection: nothing listens there")
            case .timeout:
                return Result(
                    port: port, state: .filtered, method: "TCP connect timeout",
                    detail: "no answer to SYN within \(String(format: "%.1f", timeout.inMilliseconds / 1000)) s: a firewall drops it")
            case .unreachable:
                return Result(port: port, state: .filtered, method: "ICMP unreachable", detail: error.message)
            default:
                return Result(port: port, state: .error, method: "TCP connect", detail: error.message)
            }
        }
    }

    static func udpCheck(_ port: Port, _ target: STUNAddress, timeout: Duration) -> Result {
        do {
            let socket = try UDPProbeSocket(family: target.family)
            try socket.connect(to: target)
            let request = STUNMessage(method: .binding, messageClass: .request, attributes: [.software("callsctl ports check")])
            let bytes = try request.encoded(fingerprint: true)
            let deadline = ContinuousClock.now + timeout
            var interval = Duration.milliseconds(200)
            var nextSend = ContinuousClock.now
            while ContinuousClock.now < deadline {
                if ContinuousClock.now >= nextSend {
                    try socket.send(bytes)
                    nextSend = ContinuousClock.now + interval
                    interval = interval * 2
                }
                if let got = try socket.receive(until: min(deadline, nextSend)) {
                    if let m = try? STUNMessage(decoding: got.bytes), m.transactionID == request.transactionID {
                        return Result(port: port, state: .open, method: "STUN reply", detail: "answered a STUN Binding" + (m.software.map { " (\($0))" } ?? ""))
                    }
                    return Result(port: port, state: .open, method: "UDP reply", detail: "answered with \(got.bytes.count) bytes that are not STUN")
                }
            }
            return Result(
                port: port, state: .openOrFiltered, method: "UDP silence",
                detail: "no reply and no ICMP error: either open but silent (a media server ignores STUN without a session's user name) or filtered by a firewall")
        } catch let error as ProbeNetworkError {
            if error.kind == .refused {
                return Result(port: port, state: .closed, method: "ICMP port unreachable", detail: "nothing listens on \(target)/udp")
            }
            if error.kind == .unreachable {
                return Result(port: port, state: .filtered, method: "ICMP unreachable", detail: error.message)
            }
            return Result(port: port, state: .error, method: "UDP", detail: error.message)
        } catch {
            return Result(port: port, state: .error, method: "UDP", detail: "\(error)")
        }
    }
}

/// Finds which process holds a port, from /proc (Linux).
enum SocketOwners {
    static func holder(of port: PortsCheck.Port) -> String? {
        let tables = port.proto == .udp ? ["/proc/net/udp", "/proc/net/udp6"] : ["/proc/net/tcp", "/proc/net/tcp6"]
        var inodes = Set<String>()
        for table in tables {
            // procfs files report size 0: read to the end rather than trusting the size.
            guard let data = FileHandle(forReadingAtPath: table)?.readDataToEndOfFile() else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9 else { continue }
                let local = fields[1].split(separator: ":")
                guard local.count == 2, UInt16(local[1], radix: 16) == port.number else { continue }
                // TCP: only listeners (state 0A) hold a port for a server.
                if port.proto == .tcp && fields[3] != "0A" { continue }
                inodes.insert(String(fields[9]))
            }
        }
        guard !inodes.isEmpty else { return nil }
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in pids where pid.allSatisfy(\.isNumber) {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast()))
                else { continue }
                let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                return "\(comm) (pid \(pid))"
            }
        }
        return nil
    }
}
