import CallsTestSupport
import CallsWire
import Foundation
import Probes
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func uri(_ text: String, _ scheme: ServerURI.Scheme = .stun) -> ServerURI {
    try! ServerURI(parsing: text, defaultScheme: scheme)
}

@Suite(.serialized) struct STUNProbeTests {
    @Test(arguments: [ProbeTransportKind.udp, .tcp, .tls])
    func bindingAgainstCoturn(_ transport: ProbeTransportKind) throws {
        let turn = try Coturn()
        var options = STUNProbe.Options()
        options.transport = transport
        options.caFile = turn.certFile
        let port = transport == .tls ? turn.tlsPort : turn.port
        let report = STUNProbe(uri: uri("127.0.0.1:\(port)"), options: options).run()
        #expect(report.verdict == .ok, "\(report.message)")
        #expect(report.rtts.count == 3)
        #expect(report.mappedAddressForReport?.ipString == "127.0.0.1")
        #expect(report.mappedAddressForReport?.port == report.local?.port)
        #expect(report.xorMappedAddress == report.mappedAddress)
        #expect(!report.algRewrite)
        #expect(report.software?.hasPrefix("Coturn") == true)
        if transport == .udp {
            #expect(report.otherAddress?.ipString == "127.0.0.2", "coturn with two IPs offers OTHER-ADDRESS")
            #expect(report.responseOrigin == STUNAddress(ip: "127.0.0.1", port: port))
        }
        if transport == .tls {
            #expect(report.tls?.verified == true, "the test CA was given with --ca-file: \(String(describing: report.tls))")
        }
    }

    @Test func tlsWithoutTheCAIsReportedUntrusted() throws {
        let turn = try Coturn()
        var options = STUNProbe.Options()
        options.transport = .tls
        let report = STUNProbe(uri: uri("stuns:localhost:\(turn.tlsPort)"), options: options).run()
        #expect(report.verdict == .ok)
        #expect(report.tls?.verified == false)
        #expect(report.tls?.verifyError?.contains("self") == true || report.tls?.verifyError?.contains("certificate") == true)
    }

    @Test func closedPortFailsAtOnce() {
        let port = closedUDPPort()
        var options = STUNProbe.Options()
        options.timeout = .seconds(5)
        let start = ContinuousClock.now
        let report = STUNProbe(uri: uri("127.0.0.1:\(port)"), options: options).run()
        #expect(report.verdict == .closed)
        #expect(report.message.contains("closed"))
        #expect(ContinuousClock.now - start < .seconds(1), "ICMP port unreachable must end the probe at once")
    }

    @Test func silentPortTimesOutWithinTheBudget() {
        let silent = SilentUDP()
        var options = STUNProbe.Options()
        options.timeout = .milliseconds(1500)
        options.policy = RetransmissionPolicy(rto: .milliseconds(100), retries: 2)
        options.count = 2
        let start = ContinuousClock.now
        let report = STUNProbe(uri: uri("127.0.0.1:\(silent.port)"), options: options).run()
        let elapsed = ContinuousClock.now - start
        #expect(report.verdict == .noAnswer)
        #expect(report.attempts.first?.transmissions == 3, "1 send + 2 retransmissions")
        #expect(report.message.contains("transmission"))
        #expect(elapsed < .milliseconds(1800), "bounded by --timeout, took \(elapsed)")
    }

    @Test func closedTCPIsRefused() {
        var options = STUNProbe.Options()
        options.transport = .tcp
        let report = STUNProbe(uri: uri("127.0.0.1:\(closedUDPPort())"), options: options).run()
        #expect(report.verdict == .closed)
    }
}

@Suite(.serialized) struct TURNProbeTests {
    @Test(arguments: [ProbeTransportKind.udp, .tcp, .tls])
    func relayedRoundTripWithTheRightSecret(_ transport: ProbeTransportKind) throws {
        let turn = try Coturn()
        var options = TURNProbe.Options(credentials: .rest(secret: turn.secret, user: "alice", ttl: 600))
        options.transport = transport
        options.caFile = turn.certFile
        options.count = 4
        let target = transport == .tls ? "turns:127.0.0.1:\(turn.tlsPort)" : "turn:127.0.0.1:\(turn.port)"
        let report = TURNProbe(uri: uri(target, .turn), options: options).run()
        #expect(report.ok, "\(report.message) \(report.steps.map { "\($0.name)=\($0.status) \($0.detail)" })")
        #expect(report.relayedAddress?.ipString == "127.0.0.1")
        #expect(report.roundTrip.sent == 4)
        #expect(report.roundTrip.received == 4)
        #expect(report.realm == turn.realm)
        #expect(report.steps.map(\.name) == ["resolve", "connect", "allocate", "permission", "channel-bind", "round-trip", "refresh"])
        #expect(report.steps.allSatisfy { $0.status == .pass })
    }

    @Test func wrongSecretIsNamed() throws {
        let turn = try Coturn()
        let options = TURNProbe.Options(credentials: .rest(secret: "not-the-secret", user: "alice", ttl: 600))
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(turn.port)", .turn), options: options).run()
        #expect(!report.ok)
        #expect(report.credentialProblem == .wrongSecret)
        #expect(report.message.contains("secret"))
        #expect(report.steps.first { $0.name == "allocate" }?.errorCode?.code == 401)
        #expect(report.steps.filter { $0.status == .skip }.count == 4)
        #expect(turn.log.contains("Cannot find credentials") || turn.log.contains("401"))
    }

    @Test func expiredCredentialsAreNamed() throws {
        let turn = try Coturn()
        let old = TURNCredentials.restCredentials(secret: turn.secret, user: "alice", expiry: Date().addingTimeInterval(-3600))
        let options = TURNProbe.Options(credentials: .longTerm(username: old.username, password: old.password))
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(turn.port)", .turn), options: options).run()
        #expect(!report.ok)
        #expect(report.credentialProblem == .expired)
        #expect(report.message.contains("expired"))
    }

    @Test func wrongStaticPasswordIsNamed() throws {
        let turn = try Coturn()
        let options = TURNProbe.Options(credentials: .longTerm(username: "bob", password: "nope"))
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(turn.port)", .turn), options: options).run()
        #expect(report.credentialProblem == .wrongPassword)
    }

    @Test func serverClockFarAheadIsToldApartFromAWrongSecret() throws {
        // coturn's clock 2 days ahead: credentials valid for 1 h here have expired there.
        let turn = try Coturn(clockOffset: "+2d")
        let options = TURNProbe.Options(credentials: .rest(secret: turn.secret, user: "alice", ttl: 3600))
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(turn.port)", .turn), options: options).run()
        #expect(report.credentialProblem == .clockSkew, "\(report.message)")
        #expect(!report.ok)
        #expect(report.warnings.contains { $0.contains("clock") })
        #expect(report.relayedAddress != nil, "the probe still completes with long-lived credentials")
    }

    @Test func echoPeerThatNeverAnswersIs100PercentLoss() throws {
        let turn = try Coturn()
        let silent = SilentUDP()
        var options = TURNProbe.Options(credentials: .rest(secret: turn.secret, user: "alice", ttl: 600))
        options.echoPeer = STUNAddress(ip: "127.0.0.1", port: silent.port)
        options.count = 3
        options.timeout = .seconds(8)
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(turn.port)", .turn), options: options).run()
        #expect(!report.ok)
        #expect(report.roundTrip.sent == 3 && report.roundTrip.received == 0)
        #expect(report.steps.first { $0.name == "round-trip" }?.status == .fail)
        #expect(report.steps.first { $0.name == "refresh" }?.status == .pass, "clean-up still runs")
    }

    @Test func turnPortClosed() {
        let options = TURNProbe.Options(credentials: .rest(secret: "x", user: "alice", ttl: 600))
        let report = TURNProbe(uri: uri("turn:127.0.0.1:\(closedUDPPort())", .turn), options: options).run()
        #expect(!report.ok)
        #expect(report.steps.first { $0.name == "allocate" }?.detail.contains("refused") == true)
    }
}

@Suite struct NATProbeOnLoopbackTests {
    @Test func loopbackIsNoNATAndHairpins() throws {
        let turn = try Coturn()
        var options = NATProbe.Options()
        options.hairpin = true
        let report = NATProbe(primary: uri("127.0.0.1:\(turn.port)"), comparison: [], options: options).run()
        #expect(report.mapping == .noNAT, "\(report.message)")
        #expect(report.otherAddress?.ipString == "127.0.0.2")
        #expect(report.hairpinning == true)
        #expect(report.decided)
    }

    @Test func twoServerFallback() throws {
        let turn = try Coturn()
        let report = NATProbe(
            primary: nil, comparison: [uri("127.0.0.1:\(turn.port)"), uri("127.0.0.2:\(turn.port)")], options: .init()
        ).run()
        #expect(report.method == "two-servers")
        #expect(report.mapping == .noNAT)
    }

    @Test func serverWithoutOtherAddressIsUndecided() throws {
        // A STUN responder with one address gives no OTHER-ADDRESS: the probe must say it cannot decide.
        let server = try TinySTUNServer()
        let report = NATProbe(primary: uri("127.0.0.1:\(server.port)"), comparison: [], options: .init()).run()
        #expect(!report.decided)
        #expect(report.message.contains("--servers"))
    }
}

@Suite struct PortsCheckTests {
    @Test func remoteStatesAndMethods() throws {
        let turn = try Coturn()
        let silent = SilentUDP()
        let closedUDP = closedUDPPort()
        let listener = try TCPListener()
        let closedTCP = closedUDPPort()
        let results = try PortsCheck.remote(
            host: "127.0.0.1",
            ports: [
                .init(.udp, turn.port), .init(.udp, silent.port), .init(.udp, closedUDP),
                .init(.tcp, listener.port), .init(.tcp, closedTCP),
            ], timeout: .milliseconds(800))
        #expect(results.map(\.state) == [.open, .openOrFiltered, .closed, .open, .closed])
        #expect(results[0].method == "STUN reply")
        #expect(results[2].method == "ICMP port unreachable")
        #expect(results[4].method == "TCP RST")
    }

    @Test func localBindFindsTheHolder() throws {
        let silent = SilentUDP()
        let results = PortsCheck.local([.init(.udp, silent.port), .init(.udp, closedUDPPort())], bindAddress: "127.0.0.1")
        #expect(results[0].state == .inUse)
        #expect(results[0].holder?.contains("pid \(getpid())") == true, "\(results[0].detail)")
        #expect(results[1].state == .free)
    }
}

@Suite struct ServerURITests {
    @Test(arguments: [
        ("stun.example.com", "stun:stun.example.com:3478"), ("stun:1.2.3.4:19302", "stun:1.2.3.4:19302"),
        ("stuns:turn.example.com", "stuns:turn.example.com:5349"), ("[::1]:3479", "stun:[::1]:3479"),
        ("stun://h:1", "stun:h:1"),
    ])
    func stunForms(_ text: String, _ expected: String) throws {
        #expect(try ServerURI(parsing: text, defaultScheme: .stun).description == expected)
    }

    @Test func turnTransportParameter() throws {
        let u = try ServerURI(parsing: "turn:turn.example.com?transport=tcp", defaultScheme: .turn)
        #expect(u.port == 3478 && u.impliedTransport == .tcp)
        #expect(try ServerURI(parsing: "turns:t:443", defaultScheme: .turn).impliedTransport == .tls)
    }

    @Test(arguments: ["", "stun:", "stun:h:0", "stun:h:70000", "turn:h?transport=sctp", "http://x", "stun:h?transport=tcp", "stun:a b"])
    func rejects(_ text: String) {
        #expect(throws: URIError.self) { try ServerURI(parsing: text, defaultScheme: .stun) }
    }
}

/// A one-address STUN responder (no OTHER-ADDRESS), answering on a thread for a bounded time.
final class TinySTUNServer {
    let socket: UDPProbeSocket
    let port: UInt16
    private let thread: Thread
    init() throws {
        socket = try UDPProbeSocket(family: .ipv4, local: STUNAddress(ip: "127.0.0.1", port: 0))
        port = socket.localAddress!.port
        nonisolated(unsafe) let s = socket
        thread = Thread {
            let end = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < end {
                guard let got = try? s.receive(until: min(end, ContinuousClock.now + .milliseconds(200))),
                    let request = try? STUNMessage(decoding: got.bytes)
                else { continue }
                let response = STUNMessage(
                    method: .binding, messageClass: .successResponse, transactionID: request.transactionID,
                    attributes: [.xorMappedAddress(got.from)])
                if let bytes = try? response.encoded(fingerprint: true) { try? s.send(bytes, to: got.from) }
            }
        }
        thread.start()
    }
}

final class TCPListener {
    let fd: Int32
    let port: UInt16
    init() throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 4)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: sin.sin_port)
    }
    deinit { close(fd) }
}
