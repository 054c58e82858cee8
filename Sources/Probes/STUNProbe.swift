import CallsWire
import Foundation

/// `callsctl probe stun`: Binding requests to one server, with mapped address, RTTs and a verdict.
public struct STUNProbe: Sendable {
    public struct Options: Sendable {
        public var transport: ProbeTransportKind = .udp
        public var count = 3
        public var timeout: Duration = .seconds(5)
        public var policy = RetransmissionPolicy()
        public var caFile: String?
        public var software = "callsctl"
        public init() {}
    }

    public enum Verdict: String, Sendable {
        /// The server answered.
        case ok
        /// Nothing came back within the budget (filtered, dropped, or nothing there).
        case noAnswer = "no-answer"
        /// ICMP port unreachable or TCP RST: nothing listens on that port.
        case closed
        /// The server answered with an error response.
        case errorResponse = "error-response"
        /// Could not even start (name did not resolve, TLS failed, ...).
        case failed
    }

    public struct Attempt: Sendable {
        public let index: Int
        public let transmissions: Int
        public let rtt: Duration?
        public let error: String?
    }

    public struct Report: Sendable {
        public let target: String
        public let transport: ProbeTransportKind
        public var server: STUNAddress?
        public var local: STUNAddress?
        public var attempts: [Attempt] = []
        public var xorMappedAddress: STUNAddress?
        public var mappedAddress: STUNAddress?
        public var responseOrigin: STUNAddress?
        public var otherAddress: STUNAddress?
        public var software: String?
        public var errorCode: STUNErrorCode?
        public var tls: TLSPeerInfo?
        public var verdict: Verdict = .failed
        public var message = ""
        public var elapsed: Duration = .zero

        /// An ALG (or broken NAT) rewrote the plain MAPPED-ADDRESS but could not touch the XOR'd one.
        public var algRewrite: Bool {
            guard let x = xorMappedAddress, let m = mappedAddress else { return false }
            return x != m
        }
        public var rtts: [Duration] { attempts.compactMap(\.rtt) }
        public var mappedAddressForReport: STUNAddress? { xorMappedAddress ?? mappedAddress }
    }

    public let uri: ServerURI
    public let options: Options

    public init(uri: ServerURI, options: Options) {
        self.uri = uri
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
        let deadline = start + options.timeout
        var report = Report(target: uri.description, transport: options.transport)
        let server: STUNAddress
        do {
            server = try Resolver.resolve(host: uri.host, port: uri.port)[0]
        } catch {
            report.message = error.description
            return report
        }
        report.server = server
        progress("resolved \(uri.host) to \(server)")
        let session: STUNSession
        do {
            let opened = try STUNConnector.open(
                options.transport, to: server, serverName: uri.host, caFile: options.caFile, policy: options.policy,
                until: deadline)
            session = opened.session
            report.tls = opened.tls
        } catch {
            report.verdict = error.kind == .refused ? .closed : (error.kind == .timeout ? .noAnswer : .failed)
            report.message = error.description
            return report
        }
        report.local = session.localAddress
        for index in 1...max(1, options.count) {
            if clock.now >= deadline { break }
            let request = STUNMessage(
                method: .binding, messageClass: .request, attributes: [.software(options.software)])
            let bytes: [UInt8]
            do { bytes = try request.encoded(fingerprint: true) } catch {
                report.message = "cannot encode a Binding request: \(error)"
                return report
            }
            do {
                let exchange = try session.exchange(request, bytes: bytes, until: deadline)
                report.attempts.append(Attempt(index: index, transmissions: exchange.transmissions, rtt: exchange.rtt, error: nil))
                let r = exchange.response
                progress("attempt \(index): answer in \(String(format: "%.1f", exchange.rtt.inMilliseconds)) ms")
                if r.messageClass == .errorResponse {
                    report.errorCode = r.errorCode
                    report.verdict = .errorResponse
                    report.message = "the server refused the Binding request: \(r.errorCode?.description ?? "no ERROR-CODE")"
                    return report
                }
                report.xorMappedAddress = r.xorMappedAddress ?? report.xorMappedAddress
                report.mappedAddress = r.mappedAddress ?? report.mappedAddress
                report.responseOrigin = r.responseOrigin ?? report.responseOrigin
                report.otherAddress = r.otherAddress ?? report.otherAddress
                report.software = r.software ?? report.software
            } catch {
                report.attempts.append(
                    Attempt(index: index, transmissions: transmissionsOf(error), rtt: nil, error: error.description))
                progress("attempt \(index): \(error.description)")
                if let net = error.networkError, net.kind == .refused {
                    report.verdict = .closed
                    report.message = "\(server) port \(server.port)/\(options.transport.rawValue) is closed: \(net.message)"
                    return report
                }
                if let net = error.networkError, net.kind != .timeout {
                    report.verdict = .failed
                    report.message = net.message
                    return report
                }
            }
        }
        if report.rtts.isEmpty {
            report.verdict = .noAnswer
            let sent = report.attempts.reduce(0) { $0 + $1.transmissions }
            report.message =
                "no answer from \(server) over \(options.transport.rawValue) after \(sent) transmission\(sent == 1 ? "" : "s") in \(report.attempts.count) attempt\(report.attempts.count == 1 ? "" : "s") within \(String(format: "%.1f", options.timeout.inMilliseconds / 1000)) s: the port is filtered, the packets are dropped, or no STUN server listens there"
        } else if report.mappedAddressForReport == nil {
            report.verdict = .errorResponse
            report.message = "the server answered without a mapped address"
        } else {
            report.verdict = .ok
            report.message = "\(server) answered \(report.rtts.count) of \(report.attempts.count) requests"
        }
        return report
    }

    private func transmissionsOf(_ error: STUNExchangeError) -> Int {
        if case .timeout(let n) = error.kind { return n }
        return 1
    }
}
