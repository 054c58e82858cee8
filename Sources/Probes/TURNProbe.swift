import CallsWire
import Foundation

/// `callsctl probe turn`: Allocate, permission, channel, a relayed round trip and clean-up, each
/// step timed and judged.
public struct TURNProbe: Sendable {
    public struct Options: Sendable {
        public var credentials: TURNCredentials
        public var transport: ProbeTransportKind?
        public var count = 5
        public var timeout: Duration = .seconds(10)
        public var policy = RetransmissionPolicy()
        public var caFile: String?
        /// Where relayed packets go: nil = a second local socket of this probe ("self"); else a UDP
        /// echo peer (such as coturn's turnutils_peer) that sends every datagram back.
        public var echoPeer: STUNAddress?
        public var software = "callsctl"
        public init(credentials: TURNCredentials) { self.credentials = credentials }
    }

    public enum StepStatus: String, Sendable {
        case pass, warn, fail, skip
    }

    public struct Step: Sendable {
        public let name: String
        public var status: StepStatus
        public var duration: Duration
        public var detail: String
        public var errorCode: STUNErrorCode?
    }

    public enum CredentialProblem: String, Sendable {
        case wrongSecret = "wrong-secret"
        case wrongPassword = "wrong-password"
        case expired
        case clockSkew = "clock-skew"
    }

    public struct RoundTrip: Sendable {
        public var sent = 0
        public var received = 0
        public var rtts: [Duration] = []
        public var lossPercent: Double { sent == 0 ? 100 : Double(sent - received) * 100 / Double(sent) }
        public var averageRTT: Duration? {
            rtts.isEmpty ? nil : rtts.reduce(Duration.zero, +) / rtts.count
        }
    }

    public struct Report: Sendable {
        public let target: String
        public var transport: ProbeTransportKind
        public var server: STUNAddress?
        public var steps: [Step] = []
        public var relayedAddress: STUNAddress?
        public var mappedAddress: STUNAddress?
        public var lifetime: UInt32?
        public var realm: String?
        public var software: String?
        public var tls: TLSPeerInfo?
        public var peer: STUNAddress?
        public var roundTrip = RoundTrip()
        public var credentialProblem: CredentialProblem?
        public var warnings: [String] = []
        public var ok = false
        public var message = ""
        public var elapsed: Duration = .zero
    }

    public let uri: ServerURI
    public let options: Options

    public init(uri: ServerURI, options: Options) {
        self.uri = uri
        self.options = options
    }

    /// Runs every step; never throws. The report says what passed and what failed.
    public func run(now: @escaping @Sendable () -> Date = Date.init, progress: @escaping (String) -> Void = { _ in }) -> Report {
        var runner = Runner(probe: self, now: now, progress: progress)
        return runner.run()
    }
}

private struct Runner {
    let probe: TURNProbe
    let now: @Sendable () -> Date
    let progress: (String) -> Void
    var report: TURNProbe.Report
    let clock = ContinuousClock()
    let deadline: ContinuousClock.Instant
    let started = ContinuousClock.now
    var session: STUNSession?
    var username = ""
    var key = STUNKey(bytes: [])
    var realm = ""
    var nonce = ""

    init(probe: TURNProbe, now: @escaping @Sendable () -> Date, progress: @escaping (String) -> Void) {
        self.probe = probe
        self.now = now
        self.progress = progress
        report = TURNProbe.Report(target: probe.uri.description, transport: probe.options.transport ?? probe.uri.impliedTransport)
        deadline = ContinuousClock.now + probe.options.timeout
    }

    mutating func step(_ name: String, _ body: (inout Runner) throws(StepFailure) -> (TURNProbe.StepStatus, String)) -> Bool {
        let start = clock.now
        var status = TURNProbe.StepStatus.pass
        var detail = ""
        var code: STUNErrorCode?
        do {
            (status, detail) = try body(&self)
        } catch {
            status = .fail
            detail = error.message
            code = error.code
        }
        report.steps.append(TURNProbe.Step(name: name, status: status, duration: clock.now - start, detail: detail, errorCode: code))
        progress("\(name): \(status.rawValue)\(detail.isEmpty ? "" : " — \(detail)")")
        return status != .fail
    }

    mutating func skipRest(_ names: [String], because reason: String) {
        for n in names {
            report.steps.append(TURNProbe.Step(name: n, status: .skip, duration: .zero, detail: reason, errorCode: nil))
        }
    }

    static let allSteps = ["resolve", "connect", "allocate", "permission", "channel-bind", "round-trip", "refresh"]

    mutating func run() -> TURNProbe.Report {
        var server: STUNAddress?
        guard step("resolve", { r throws(StepFailure) in
            do {
                let all = try Resolver.resolve(host: r.probe.uri.host, port: r.probe.uri.port)
                server = all[0]
                r.report.server = all[0]
                return (.pass, "\(r.probe.uri.host) → \(all.map(\.ipString).joined(separator: ", "))")
            } catch { throw StepFailure("\(error)") }
        }), let server else {
            return finish(failedAt: "resolve")
        }
        guard step("connect", { r throws(StepFailure) in
            do {
                let opened = try STUNConnector.open(
                    r.report.transport, to: server, serverName: r.probe.uri.host, caFile: r.probe.options.caFile,
                    policy: r.probe.options.policy, until: r.deadline)
                r.session = opened.session
                r.report.tls = opened.tls
                if let tls = opened.tls, !tls.verified {
                    r.report.warnings.append(
                        "the TLS certificate would not be trusted (\(tls.verifyError ?? "unverified")); browsers will refuse turns: on this server")
                    return (.warn, "\(r.report.transport.rawValue) to \(server), TLS \(tls.protocolVersion) but certificate not trusted: \(tls.verifyError ?? "?")")
                }
                return (.pass, "\(r.report.transport.rawValue) to \(server)" + (opened.tls.map { ", \($0.protocolVersion) \($0.cipher)" } ?? ""))
            } catch { throw StepFailure("\(error)") }
        }) else { return finish(failedAt: "connect") }

        guard step("allocate", { r throws(StepFailure) in try r.allocate() }) || report.credentialProblem == .clockSkew else {
            return finish(failedAt: "allocate")
        }
        // Learn where the relay should send: our own peer socket, or the given echo peer.
        var peerSocket: UDPProbeSocket?
        var peerAddress: STUNAddress?
        guard step("permission", { r throws(StepFailure) in
            if let echo = r.probe.options.echoPeer {
                peerAddress = echo
            } else {
                do {
                    let socket = try UDPProbeSocket(family: server.family)
                    peerSocket = socket
                    peerAddress = r.ownPeerAddress(socket: socket, server: server)
                } catch { throw StepFailure("cannot open the local peer socket: \(error)") }
            }
            guard let peer = peerAddress else { throw StepFailure("no peer address") }
            r.report.peer = peer
            let response = try r.authenticated(.createPermission, [.xorPeerAddress(peer)])
            if response.messageClass == .errorResponse {
                throw StepFailure.from(response, "CreatePermission for \(peer.ipString) refused", hint: r.permissionHint(response))
            }
            return (.pass, "peer \(peer.ipString) permitted")
        }), let peer = peerAddress else { return finish(failedAt: "permission") }

        let channel: UInt16 = 0x4000
        let bound = step("channel-bind", { r throws(StepFailure) in
            let response = try r.authenticated(.channelBind, [.channelNumber(channel), .xorPeerAddress(peer)])
            if response.messageClass == .errorResponse {
                throw StepFailure.from(response, "ChannelBind 0x4000 to \(peer) refused", hint: nil)
            }
            return (.pass, "channel 0x4000 → \(peer)")
        })
        _ = step("round-trip", { r throws(StepFailure) in
            try r.roundTrip(peerSocket: peerSocket, peer: peer, channel: bound ? channel : nil)
        })
        _ = step("refresh", { r throws(StepFailure) in
            let response = try r.authenticated(.refresh, [.lifetime(0)], deadlineOverride: ContinuousClock.now + .seconds(2))
            if response.messageClass == .errorResponse {
                return (.warn, "Refresh(0) answered \(response.errorCode?.description ?? "error"); the allocation expires by itself")
            }
            return (.pass, "allocation released (LIFETIME 0)")
        })
        return finish(failedAt: nil)
    }

    mutating func finish(failedAt: String?) -> TURNProbe.Report {
        report.elapsed = clock.now - started
        if let failedAt, let index = Self.allSteps.firstIndex(of: failedAt) {
            skipRest(Array(Self.allSteps[(index + 1)...]), because: "\(failedAt) failed")
        }
        let failed = report.steps.filter { $0.status == .fail }
        if report.credentialProblem == .clockSkew {
            report.ok = false
        } else {
            report.ok = failed.isEmpty && report.relayedAddress != nil && report.roundTrip.received > 0
        }
        if let first = failed.first {
            report.message = "\(first.name): \(first.detail)"
        } else if report.credentialProblem == .clockSkew {
            report.message = report.warnings.first ?? "clock skew"
        } else {
            report.message =
                "relayed \(report.roundTrip.received)/\(report.roundTrip.sent) packets through \(report.relayedAddress?.description ?? "?")"
        }
        return report
    }

    // MARK: Allocate and authentication

    mutating func allocate() throws(StepFailure) -> (TURNProbe.StepStatus, String) {
        let creds = probe.options.credentials.resolve(now: now())
        let first = try send(STUNMessage(method: .allocate, messageClass: .request, attributes: allocateAttributes()), integrity: nil)
        report.software = first.software
        var response = first
        if first.messageClass == .errorResponse {
            guard first.errorCode?.code == STUNErrorCode.unauthenticated, let realm = first.realm, let nonce = first.nonce else {
                throw StepFailure.from(first, "Allocate refused", hint: allocateHint(first))
            }
            self.realm = realm
            self.nonce = nonce
            report.realm = realm
            response = try authenticatedAllocate(username: creds.username, password: creds.password)
            if response.messageClass == .errorResponse, response.errorCode?.code == STUNErrorCode.unauthenticated {
                try diagnoseCredentials(rejected: creds.username)
                // diagnoseCredentials either throws or re-allocated with long-lived credentials.
                response = lastAllocate ?? response
            }
        }
        if response.messageClass == .errorResponse {
            throw StepFailure.from(response, "Allocate refused", hint: allocateHint(response))
        }
        guard let relayed = response.xorRelayedAddress else {
            throw StepFailure("Allocate succeeded without XOR-RELAYED-ADDRESS")
        }
        report.relayedAddress = relayed
        report.mappedAddress = response.xorMappedAddress ?? response.mappedAddress
        report.lifetime = response.lifetime
        var status = TURNProbe.StepStatus.pass
        if relayed.isPrivate, let server = report.server, !server.isPrivate, !server.isLoopback {
            report.warnings.append(
                "the relayed address \(relayed.ipString) is private while the server is public: set coturn's external-ip (relay peers on the internet cannot reach it)")
            status = .warn
        }
        if report.credentialProblem == .clockSkew {
            return (.fail, "fresh credentials refused: the TURN server's clock is ahead of this machine's by more than \(ttlText) (long-lived credentials worked: relayed \(relayed))")
        }
        return (status, "relayed \(relayed), mapped \(report.mappedAddress?.description ?? "?"), lifetime \(response.lifetime.map(String.init) ?? "?") s")
    }

    var lastAllocate: STUNMessage?

    mutating func authenticatedAllocate(username: String, password: String) throws(StepFailure) -> STUNMessage {
        self.username = username
        key = STUNKey.longTerm(username: username, realm: realm, password: password)
        var response = try sendAuthenticated(.allocate, allocateAttributes())
        if response.messageClass == .errorResponse, response.errorCode?.code == STUNErrorCode.staleNonce {
            nonce = response.nonce ?? nonce
            progress("allocate: stale nonce (438), retrying once with the new nonce")
            response = try sendAuthenticated(.allocate, allocateAttributes())
        }
        // A 401 carries a fresh NONCE (and REALM); later attempts must use them.
        if response.messageClass == .errorResponse, response.errorCode?.code == STUNErrorCode.unauthenticated {
            nonce = response.nonce ?? nonce
            realm = response.realm ?? realm
        }
        lastAllocate = response
        return response
    }

    /// 401 with credentials: tell expired, wrong secret and a clock far off apart.
    mutating func diagnoseCredentials(rejected username: String) throws(StepFailure) {
        let nowDate = now()
        if let expiry = TURNCredentials.restExpiry(of: username), expiry < nowDate {
            report.credentialProblem = .expired
            throw StepFailure(
                "the credentials expired at \(iso(expiry)) (\(Int(nowDate.timeIntervalSince(expiry))) s ago by this machine's clock); ask for fresh ones (REST credentials carry their expiry in the user name)",
                code: STUNErrorCode(code: 401))
        }
        switch probe.options.credentials {
        case .longTerm:
            report.credentialProblem = .wrongPassword
            throw StepFailure(
                "the server rejected user \"\(username)\" in realm \"\(realm)\" (401): wrong user name or password, or a realm mismatch",
                code: STUNErrorCode(code: 401))
        case .rest(let secret, let user, _):
            // Fresh credentials were refused. If far-future ones are accepted, the secret is right and the
            // server thinks ours have expired: its clock is ahead of ours by more than the TTL.
            let longLived = TURNCredentials.restCredentials(secret: secret, user: user, expiry: nowDate.addingTimeInterval(10 * 365 * 86400))
            progress("allocate: 401 with fresh credentials; retrying with a far-future expiry to tell a wrong secret from a clock far off")
            // coturn ties a 5-tuple to the first user name it saw (a second one gets 437), so ask
            // again from a new connection.
            guard let server = report.server else { throw StepFailure("no server address") }
            do {
                session = try STUNConnector.open(
                    report.transport, to: server, serverName: probe.uri.host, caFile: probe.options.caFile,
                    policy: probe.options.policy, until: deadline
                ).session
            } catch { throw StepFailure("cannot reconnect to \(server) for the credential check: \(error)") }
            let challenge = try send(STUNMessage(method: .allocate, messageClass: .request, attributes: allocateAttributes()), integrity: nil)
            nonce = challenge.nonce ?? nonce
            realm = challenge.realm ?? realm
            let retry = try authenticatedAllocate(username: longLived.username, password: longLived.password)
            progress("allocate: far-future credentials answered \(retry.messageClass == .successResponse ? "success" : (retry.errorCode?.description ?? "error"))")
            if retry.messageClass == .successResponse {
                report.credentialProblem = .clockSkew
                report.warnings.append(
                    "credentials valid for \(ttlText) by this machine's clock were refused, but long-lived ones with the same secret were accepted: the TURN server's clock is ahead of this machine's by more than \(ttlText). Synchronise both clocks (NTP); Mattermost and rtcd mint TURN credentials with their own clock")
                return
            }
            report.credentialProblem = .wrongSecret
            throw StepFailure(
                "the server rejected the TURN REST credentials (401) even with a far-future expiry: the shared secret does not match the server's static-auth-secret (or the realm \"\(realm)\" is not the server's)",
                code: STUNErrorCode(code: 401))
        }
    }

    var ttlText: String {
        if case .rest(_, _, let ttl) = probe.options.credentials { return "\(ttl) s" }
        return "the TTL"
    }

    func allocateAttributes() -> [STUNAttribute] {
        [.requestedTransport(17), .lifetime(600), .software(probe.options.software)]
    }

    mutating func sendAuthenticated(_ method: STUNMethod, _ attributes: [STUNAttribute], deadlineOverride: ContinuousClock.Instant? = nil)
        throws(StepFailure) -> STUNMessage
    {
        let message = STUNMessage(
            method: method, messageClass: .request,
            attributes: attributes + [.username(username), .realm(realm), .nonce(nonce)])
        return try send(message, integrity: .sha1(key), deadlineOverride: deadlineOverride)
    }

    /// A request with credentials; a 438 stale nonce is retried once with the new nonce.
    mutating func authenticated(_ method: STUNMethod, _ attributes: [STUNAttribute], deadlineOverride: ContinuousClock.Instant? = nil)
        throws(StepFailure) -> STUNMessage
    {
        var response = try sendAuthenticated(method, attributes, deadlineOverride: deadlineOverride)
        if response.messageClass == .errorResponse, response.errorCode?.code == STUNErrorCode.staleNonce {
            nonce = response.nonce ?? nonce
            response = try sendAuthenticated(method, attributes, deadlineOverride: deadlineOverride)
        }
        return response
    }

    func send(_ message: STUNMessage, integrity: STUNIntegrity?, deadlineOverride: ContinuousClock.Instant? = nil)
        throws(StepFailure) -> STUNMessage
    {
        guard let session else { throw StepFailure("not connected") }
        let bytes: [UInt8]
        do { bytes = try message.encoded(integrity: integrity, fingerprint: true) } catch {
            throw StepFailure("cannot encode \(message.method): \(error)")
        }
        do {
            return try session.exchange(message, bytes: bytes, until: min(deadline, deadlineOverride ?? deadline)).response
        } catch {
            switch error.kind {
            case .timeout(let n):
                throw StepFailure(
                    "no answer to \(message.method) after \(n) transmission\(n == 1 ? "" : "s") over \(session.kind.rawValue)")
            case .network(let e): throw StepFailure(e.message)
            case .badResponse(let s): throw StepFailure(s)
            }
        }
    }

    func allocateHint(_ response: STUNMessage) -> String? {
        switch response.errorCode?.code {
        case 403: return "the server forbids this client (denied-peer or user quota rules)"
        case 437: return "an allocation already exists for this 5-tuple; wait for it to expire"
        case 440, 442: return "the server does not support the requested address family or UDP relaying"
        case 486: return "the user's allocation quota is reached (coturn user-quota/total-quota)"
        case 508: return "the server is out of relay ports or capacity (coturn min-port/max-port, total-quota)"
        case 300: return "the server redirects to \(response.alternateServer?.description ?? "another server") (ALTERNATE-SERVER)"
        default: return nil
        }
    }

    func permissionHint(_ response: STUNMessage) -> String? {
        if response.errorCode?.code == 403 {
            return "the server forbids relaying to this peer address (coturn denied-peer-ip, or loopback peers without --allow-loopback-peers)"
        }
        return nil
    }

    /// The address the TURN server will see for our peer socket: ask the server itself with a
    /// Binding from that socket (handles NAT), else the local source address of the route.
    func ownPeerAddress(socket: UDPProbeSocket, server: STUNAddress) -> STUNAddress? {
        let port = socket.localAddress?.port ?? 0
        let udpServer = STUNAddress(ip: server.ipString, port: probe.uri.scheme.isSecure ? 3478 : server.port) ?? server
        let request = STUNMessage(method: .binding, messageClass: .request)
        if let bytes = try? request.encoded(fingerprint: true), (try? socket.send(bytes, to: udpServer)) != nil {
            let wait = min(deadline, ContinuousClock.now + .milliseconds(500))
            while let got = try? socket.receive(until: wait) {
                if let m = try? STUNMessage(decoding: got.bytes), m.transactionID == request.transactionID,
                    let mapped = m.reflexiveAddress
                {
                    return mapped
                }
            }
        }
        // Fall back to the source address the kernel would use towards the server.
        guard let probeSocket = try? UDPProbeSocket(family: server.family), (try? probeSocket.connect(to: server)) != nil,
            let local = probeSocket.localAddress
        else { return nil }
        return STUNAddress(ip: local.ipString, port: port)
    }

    // MARK: Relayed round trip

    mutating func roundTrip(peerSocket: UDPProbeSocket?, peer: STUNAddress, channel: UInt16?) throws(StepFailure)
        -> (TURNProbe.StepStatus, String)
    {
        guard let session, let relayed = report.relayedAddress else { throw StepFailure("no allocation") }
        let count = max(1, probe.options.count)
        let perPacket = Duration.milliseconds(1000)
        for i in 0..<count {
            if clock.now >= deadline { break }
            let payload = Array("callsctl-turn-probe \(i) \(UInt64.random(in: 0...UInt64.max))".utf8)
            let sentAt = clock.now
            let packetDeadline = min(deadline, sentAt + perPacket)
            report.roundTrip.sent += 1
            if let peerSocket {
                // peer → relay → us, then us → relay → peer.
                do { try peerSocket.send(payload, to: relayed) } catch { throw StepFailure("peer send failed: \(error)") }
                guard let inbound = try receiveRelayed(session: session, until: packetDeadline), inbound == payload else { continue }
                try sendRelayed(session: session, payload, to: peer, channel: channel)
                while let got = try? peerSocket.receive(until: packetDeadline) {
                    if got.bytes == payload && got.from == relayed {
                        report.roundTrip.received += 1
                        report.roundTrip.rtts.append(clock.now - sentAt)
                        break
                    }
                }
            } else {
                // us → relay → echo peer → relay → us.
                try sendRelayed(session: session, payload, to: peer, channel: channel)
                if let echoed = try receiveRelayed(session: session, until: packetDeadline), echoed == payload {
                    report.roundTrip.received += 1
                    report.roundTrip.rtts.append(clock.now - sentAt)
                }
            }
        }
        let rt = report.roundTrip
        let avg = rt.averageRTT.map { String(format: "%.1f ms", $0.inMilliseconds) } ?? "-"
        let summary = "\(rt.received)/\(rt.sent) packets back, loss \(String(format: "%.0f", rt.lossPercent)) %, average RTT \(avg)"
        if rt.received == 0 {
            throw StepFailure(
                "\(summary): nothing came back through the relay. Open the relay port range (coturn min-port..max-port, UDP) on the TURN host's firewall, and check that the peer \(peer) can reach \(relayed)")
        }
        return (rt.received < rt.sent ? .warn : .pass, summary)
    }

    func sendRelayed(session: STUNSession, _ payload: [UInt8], to peer: STUNAddress, channel: UInt16?) throws(StepFailure) {
        let bytes: [UInt8]
        do {
            if let channel {
                bytes = try TURNChannelData(channelNumber: channel, bytes: payload).encoded(padded: session.kind != .udp)
            } else {
                bytes = try STUNMessage(method: .send, messageClass: .indication, attributes: [.xorPeerAddress(peer), .data(payload)])
                    .encoded(fingerprint: true)
            }
        } catch { throw StepFailure("cannot encode relayed data: \(error)") }
        do { try session.sendRaw(bytes, until: deadline) } catch { throw StepFailure(error.message) }
    }

    func receiveRelayed(session: STUNSession, until deadline: ContinuousClock.Instant) throws(StepFailure) -> [UInt8]? {
        while true {
            let message: STUNSideMessage?
            do { message = try session.nextSideMessage(until: deadline) } catch { throw StepFailure(error.message) }
            guard let message else { return nil }
            switch message {
            case .channelData(let data): return Array(data.data.readableBytesView)
            case .stun(let m, _) where m.method == .data && m.messageClass == .indication:
                if let d = m.data { return d }
            default: continue
            }
        }
    }
}

/// A failed step: what went wrong, and the STUN error if the server sent one.
struct StepFailure: Error {
    let message: String
    let code: STUNErrorCode?
    init(_ message: String, code: STUNErrorCode? = nil) {
        self.message = message
        self.code = code
    }
    static func from(_ response: STUNMessage, _ what: String, hint: String?) -> StepFailure {
        let code = response.errorCode
        var text = "\(what): \(code?.description ?? "error response without ERROR-CODE")"
        if let hint { text += " — \(hint)" }
        return StepFailure(text, code: code)
    }
}

func iso(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
}
