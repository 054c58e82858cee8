import CallsWire
import Foundation

/// `callsctl probe nat`: RFC 5780 mapping and filtering behaviour from one local socket, named in
/// RFC 4787 terms, with what each means for calls through an SFU.
public struct NATProbe: Sendable {
    public enum Behavior: String, Sendable {
        case noNAT = "no-nat"
        case endpointIndependent = "endpoint-independent"
        case addressDependent = "address-dependent"
        case addressAndPortDependent = "address-and-port-dependent"
        case unknown
    }

    public struct Options: Sendable {
        public var timeout: Duration = .seconds(10)
        public var policy = RetransmissionPolicy(rto: .milliseconds(200), retries: 3)
        public var hairpin = false
        public init() {}
    }

    public struct Report: Sendable {
        public var method = "rfc5780"
        public var servers: [String] = []
        public var local: STUNAddress?
        public var mapped: [String: STUNAddress] = [:]
        public var otherAddress: STUNAddress?
        public var mapping: Behavior = .unknown
        public var filtering: Behavior = .unknown
        public var hairpinning: Bool?
        public var algRewrite = false
        public var notes: [String] = []
        /// The classic name (full cone, port-restricted cone, symmetric, ...).
        public var natType: String = "unknown"
        public var impact: String = ""
        public var decided: Bool { mapping != .unknown }
        public var message = ""
        public var elapsed: Duration = .zero
    }

    public let primary: ServerURI?
    public let comparison: [ServerURI]
    public let options: Options

    /// - Parameters:
    ///   - primary: an RFC 5780 server (offers OTHER-ADDRESS).
    ///   - comparison: two servers to compare mappings when no RFC 5780 server is available.
    public init(primary: ServerURI?, comparison: [ServerURI], options: Options) {
        self.primary = primary
        self.comparison = comparison
        self.options = options
    }

    public func run(progress: (String) -> Void = { _ in }) -> Report {
        let start = ContinuousClock.now
        var report = runSteps(progress: progress)
        report.elapsed = ContinuousClock.now - start
        return report
    }

    private func runSteps(progress: (String) -> Void) -> Report {
        let clock = ContinuousClock()
        let start = clock.now
        var report = Report()
        let deadline = start + options.timeout
        do {
            if let primary {
                try rfc5780(primary, &report, deadline: deadline, progress: progress)
            } else {
                try twoServers(&report, deadline: deadline, progress: progress)
            }
        } catch {
            report.message = "\(error)"
        }
        name(&report)
        return report
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One Binding from `socket` to `server`; nil on timeout.
    func binding(_ socket: UDPProbeSocket, to server: STUNAddress, change: STUNChangeRequest? = nil, until deadline: Deadline)
        throws -> STUNMessage?
    {
        var attributes: [STUNAttribute] = []
        if let change { attributes.append(.changeRequest(change)) }
        let request = STUNMessage(method: .binding, messageClass: .request, attributes: attributes)
        let bytes = try request.encoded(fingerprint: true)
        var interval = options.policy.rto
        for _ in 0...options.policy.retries {
            if ContinuousClock.now >= deadline { return nil }
            try socket.send(bytes, to: server)
            let waitUntil = min(deadline, ContinuousClock.now + interval)
            while let got = try socket.receive(until: waitUntil) {
                if let m = try? STUNMessage(decoding: got.bytes), m.transactionID == request.transactionID {
                    if m.messageClass == .errorResponse {
                        throw Failure(description: "\(server) refused the Binding: \(m.errorCode?.description ?? "error")")
                    }
                    return m
                }
            }
            interval = interval * 2
        }
        return nil
    }

    func rfc5780(_ uri: ServerURI, _ report: inout Report, deadline: Deadline, progress: (String) -> Void) throws {
        let server = try Resolver.resolve(host: uri.host, port: uri.port, family: .ipv4)[0]
        report.servers = [uri.description]
        let socket = try UDPProbeSocket(family: server.family)
        let local = localAddress(of: socket, towards: server)
        report.local = local
        // Test I.
        guard let r1 = try binding(socket, to: server, until: deadline), let m1 = r1.reflexiveAddress else {
            throw Failure(description: "no answer from \(server) to the first Binding (UDP blocked or no STUN server there); cannot classify the NAT")
        }
        report.mapped["test1"] = m1
        report.algRewrite = r1.xorMappedAddress != nil && r1.mappedAddress != nil && r1.xorMappedAddress != r1.mappedAddress
        progress("test I: mapped \(m1)")
        guard let other = r1.otherAddress ?? r1.changedAddress else {
            report.method = "rfc5780-unsupported"
            throw Failure(
                description: "\(server) offers neither OTHER-ADDRESS nor CHANGED-ADDRESS (no second address: coturn needs two listening IPs); use --servers a,b to compare two servers instead")
        }
        if r1.otherAddress == nil {
            // A classic RFC 3489 server: its CHANGED-ADDRESS and CHANGE-REQUEST serve the RFC 5780 tests too.
            report.method = "rfc3489-changed-address"
            report.notes.append("\(server) is a classic RFC 3489 server: its CHANGED-ADDRESS stands in for OTHER-ADDRESS")
        }
        report.otherAddress = other
        if let local, local == m1 {
            report.mapping = .noNAT
            progress("mapped address equals the local address: no NAT")
        } else {
            // Test II: the other IP, primary port.
            let alt = STUNAddress(ip: other.ipString, port: server.port) ?? other
            guard let r2 = try binding(socket, to: alt, until: deadline), let m2 = r2.reflexiveAddress else {
                throw Failure(description: "no answer from the alternate address \(alt); cannot finish the mapping test")
            }
            report.mapped["test2"] = m2
            progress("test II: mapped \(m2) via \(alt)")
            if m2 == m1 {
                report.mapping = .endpointIndependent
            } else {
                guard let r3 = try binding(socket, to: other, until: deadline), let m3 = r3.reflexiveAddress else {
                    throw Failure(description: "no answer from \(other); cannot finish the mapping test")
                }
                report.mapped["test3"] = m3
                progress("test III: mapped \(m3) via \(other)")
                report.mapping = m3 == m2 ? .addressDependent : .addressAndPortDependent
            }
        }
        // Filtering: ask the server to answer from the other IP and port, then from the other port only.
        if try binding(socket, to: server, change: [.changeIP, .changePort], until: min(deadline, ContinuousClock.now + .seconds(2))) != nil {
            report.filtering = .endpointIndependent
            progress("filtering test II: answer from the other address arrived")
        } else if try binding(socket, to: server, change: [.changePort], until: min(deadline, ContinuousClock.now + .seconds(2))) != nil {
            report.filtering = .addressDependent
            progress("filtering test III: answer from the other port arrived")
        } else {
            report.filtering = .addressAndPortDependent
            progress("filtering: answers from other addresses and ports were dropped")
        }
        if report.mapping == .noNAT && report.filtering == .endpointIndependent { report.filtering = .noNAT }
        if options.hairpin { report.hairpinning = try hairpin(socket: socket, mapped: m1, deadline: deadline) }
    }

    func twoServers(_ report: inout Report, deadline: Deadline, progress: (String) -> Void) throws {
        guard comparison.count == 2 else {
            throw Failure(description: "give an RFC 5780 server, or two servers with --servers a,b")
        }
        report.method = "two-servers"
        report.servers = comparison.map(\.description)
        let a = try Resolver.resolve(host: comparison[0].host, port: comparison[0].port, family: .ipv4)[0]
        let b = try Resolver.resolve(host: comparison[1].host, port: comparison[1].port, family: .ipv4)[0]
        let socket = try UDPProbeSocket(family: .ipv4)
        report.local = localAddress(of: socket, towards: a)
        guard let ra = try binding(socket, to: a, until: deadline), let ma = ra.reflexiveAddress else {
            throw Failure(description: "no answer from \(a)")
        }
        guard let rb = try binding(socket, to: b, until: deadline), let mb = rb.reflexiveAddress else {
            throw Failure(description: "no answer from \(b)")
        }
        report.mapped = ["a": ma, "b": mb]
        progress("mapped \(ma) via \(a), \(mb) via \(b)")
        if let local = report.local, local == ma, ma == mb {
            report.mapping = .noNAT
        } else if ma == mb {
            report.mapping = .endpointIndependent
        } else {
            report.mapping = ma.ipString == mb.ipString ? .addressAndPortDependent : .addressAndPortDependent
            if a.ipString == b.ipString {
                report.notes.append("both servers share one IP, so address-dependent and address-and-port-dependent mapping look alike")
            }
        }
        report.notes.append("filtering cannot be measured without an RFC 5780 server")
        if options.hairpin { report.hairpinning = try hairpin(socket: socket, mapped: ma, deadline: deadline) }
    }

    /// RFC 5780 §4.5: send a Binding to our own mapped address; receiving it means the NAT hairpins.
    func hairpin(socket: UDPProbeSocket, mapped: STUNAddress, deadline: Deadline) throws -> Bool {
        let request = STUNMessage(method: .binding, messageClass: .request)
        let bytes = try request.encoded(fingerprint: true)
        let until = min(deadline, ContinuousClock.now + .seconds(1))
        for _ in 0..<3 {
            try socket.send(bytes, to: mapped)
            let step = min(until, ContinuousClock.now + .milliseconds(300))
            while let got = try socket.receive(until: step) {
                if let m = try? STUNMessage(decoding: got.bytes), m.transactionID == request.transactionID { return true }
            }
        }
        return false
    }

    /// The source address the kernel uses towards `server` with this socket's port.
    func localAddress(of socket: UDPProbeSocket, towards server: STUNAddress) -> STUNAddress? {
        guard let port = socket.localAddress?.port, let probe = try? UDPProbeSocket(family: server.family),
            (try? probe.connect(to: server)) != nil, let local = probe.localAddress
        else { return nil }
        return STUNAddress(ip: local.ipString, port: port)
    }

    func name(_ report: inout Report) {
        switch (report.mapping, report.filtering) {
        case (.noNAT, _):
            report.natType = report.filtering == .noNAT || report.filtering == .endpointIndependent
                ? "no NAT (open internet)" : "no NAT, but a firewall filters unsolicited traffic"
            report.impact = "Direct media to the SFU works; nothing to do."
        case (.endpointIndependent, .endpointIndependent), (.endpointIndependent, .noNAT):
            report.natType = "full cone (endpoint-independent mapping and filtering)"
            report.impact = "Best case: the SFU reaches this client on its mapped address; calls work without TURN."
        case (.endpointIndependent, .addressDependent):
            report.natType = "restricted cone (endpoint-independent mapping, address-dependent filtering)"
            report.impact = "Fine for an SFU: the client sends first, so the server's replies pass the filter."
        case (.endpointIndependent, .addressAndPortDependent):
            report.natType = "port-restricted cone (endpoint-independent mapping, address-and-port-dependent filtering)"
            report.impact = "Fine for an SFU: the client sends first, so the server's replies pass the filter."
        case (.endpointIndependent, .unknown):
            report.natType = "cone NAT (endpoint-independent mapping; filtering not measured)"
            report.impact = "Fine for an SFU with a public host candidate."
        case (.addressDependent, _), (.addressAndPortDependent, _):
            report.natType = "symmetric (\(report.mapping.rawValue) mapping)"
            report.impact =
                "Information, not a failure: with an SFU on a public address the server learns this client's peer-reflexive address from its ICE checks, so calls still work. Peer-to-peer media would need TURN."
        case (.unknown, _):
            report.natType = "unknown"
            report.impact = "Could not classify; see the message."
        }
        if report.algRewrite {
            report.notes.append("MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS: a router ALG rewrites STUN; disable SIP/STUN ALG")
        }
        if report.hairpinning == false {
            report.notes.append("no hairpinning: clients in the same LAN as a NATed server need split-horizon DNS or the internal address")
        }
        if report.message.isEmpty { report.message = report.natType }
    }
}
