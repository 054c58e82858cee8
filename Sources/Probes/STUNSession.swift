import CallsWire
import Foundation
import NIOCore

/// How a probe reaches its server.
public enum ProbeTransportKind: String, Sendable, CaseIterable {
    case udp, tcp, tls
}

/// RFC 8489 §6.2.1 retransmission settings: over UDP a request is sent at 0, RTO, 3·RTO, 7·RTO, ...
/// (`retries` retransmissions), then the client waits one more RTO·2^retries at most; over TCP/TLS it
/// is sent once. Everything is also capped by the caller's deadline.
public struct RetransmissionPolicy: Sendable, Equatable {
    public var rto: Duration
    public var retries: Int
    public init(rto: Duration = .milliseconds(250), retries: Int = 3) {
        self.rto = rto
        self.retries = retries
    }
}

/// One request/response exchange.
public struct STUNExchange: Sendable {
    public let request: STUNMessage
    public let response: STUNMessage
    /// Time from the last transmission the response can belong to... measured from the first send
    /// when the response arrived before any retransmission (RFC 8489 §6.2.1 Karn's rule otherwise).
    public let rtt: Duration
    /// How many times the request was sent.
    public let transmissions: Int
}

/// Failure of an exchange.
public struct STUNExchangeError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case timeout(transmissions: Int)
        case network(ProbeNetworkError)
        case badResponse(String)
    }
    public let kind: Kind
    public var description: String {
        switch kind {
        case .timeout(let n): return "no answer after \(n) transmission\(n == 1 ? "" : "s")"
        case .network(let e): return e.description
        case .badResponse(let s): return s
        }
    }
    public var networkError: ProbeNetworkError? { if case .network(let e) = kind { e } else { nil } }
}

/// Anything that arrived that was not the awaited response (TURN Data indications, ChannelData,
/// requests such as a hairpinned Binding).
public enum STUNSideMessage: Sendable {
    case stun(STUNMessage, from: STUNAddress)
    case channelData(TURNChannelData)
    case other([UInt8], from: STUNAddress)
}

/// A STUN client over one transport: requests with retransmission, responses matched by
/// transaction id, everything else queued for the caller.
public final class STUNSession {
    public enum Link {
        case udp(UDPProbeSocket, server: STUNAddress)
        case stream(any ProbeStream)
    }

    public let link: Link
    public let policy: RetransmissionPolicy
    private var splitter = STUNStreamSplitter()
    public private(set) var side: [STUNSideMessage] = []

    public init(link: Link, policy: RetransmissionPolicy) {
        self.link = link
        self.policy = policy
    }

    public var kind: ProbeTransportKind {
        switch link {
        case .udp: return .udp
        case .stream(let s): return s is TLSProbeStream ? .tls : .tcp
        }
    }

    public var server: STUNAddress {
        switch link {
        case .udp(_, let server): return server
        case .stream(let s): return s.remoteAddress
        }
    }

    public var localAddress: STUNAddress? {
        switch link {
        case .udp(let socket, _): return socket.localAddress
        case .stream(let s): return s.localAddress
        }
    }

    /// Sends raw bytes to the server (for ChannelData and indications).
    public func sendRaw(_ bytes: [UInt8], until deadline: Deadline) throws(ProbeNetworkError) {
        switch link {
        case .udp(let socket, let server): try socket.send(bytes, to: server)
        case .stream(let s): try s.write(bytes, until: deadline)
        }
    }

    /// Sends `request` (already encoded as `bytes`) and waits for the response with its transaction id.
    public func exchange(_ request: STUNMessage, bytes: [UInt8], until deadline: Deadline) throws(STUNExchangeError)
        -> STUNExchange
    {
        let clock = ContinuousClock()
        var transmissions = 0
        var firstSent = clock.now
        var lastSent = clock.now
        let isUDP: Bool
        if case .udp = link { isUDP = true } else { isUDP = false }
        var nextSend = clock.now
        var interval = policy.rto
        let maxTransmissions = isUDP ? policy.retries + 1 : 1
        var giveUpAt = deadline
        while true {
            let now = clock.now
            if transmissions < maxTransmissions && now >= nextSend {
                do { try sendRaw(bytes, until: deadline) } catch { throw STUNExchangeError(kind: .network(error)) }
                transmissions += 1
                lastSent = clock.now
                if transmissions == 1 { firstSent = lastSent }
                nextSend = lastSent + interval
                if transmissions == maxTransmissions {
                    // After the last transmission wait one more (doubled) interval, within the budget.
                    giveUpAt = min(deadline, isUDP ? lastSent + interval : deadline)
                }
                interval = interval * 2
            }
            let waitUntil = transmissions < maxTransmissions ? min(nextSend, deadline) : giveUpAt
            if clock.now >= giveUpAt && transmissions >= maxTransmissions { break }
            if clock.now >= deadline { break }
            let frame: (bytes: [UInt8], from: STUNAddress)?
            do { frame = try receiveFrame(until: waitUntil) } catch { throw STUNExchangeError(kind: .network(error)) }
            guard let frame else { continue }
            if let message = classify(frame.bytes, from: frame.from), message.transactionID == request.transactionID,
                message.messageClass == .successResponse || message.messageClass == .errorResponse
            {
                // Karn: with retransmissions, time from the last send is the honest lower bound.
                let rtt = transmissions == 1 ? clock.now - firstSent : clock.now - lastSent
                return STUNExchange(request: request, response: message, rtt: rtt, transmissions: transmissions)
            }
        }
        throw STUNExchangeError(kind: .timeout(transmissions: transmissions))
    }

    /// Waits for the next non-response frame (Data indication, ChannelData, request), or nil at the deadline.
    public func nextSideMessage(until deadline: Deadline) throws(ProbeNetworkError) -> STUNSideMessage? {
        if !side.isEmpty { return side.removeFirst() }
        while ContinuousClock.now < deadline {
            guard let frame = try receiveFrame(until: deadline) else { return nil }
            _ = classify(frame.bytes, from: frame.from)
            if !side.isEmpty { return side.removeFirst() }
        }
        return nil
    }

    /// Decodes a frame; responses are returned, everything else goes to the side queue.
    private func classify(_ bytes: [UInt8], from: STUNAddress) -> STUNMessage? {
        guard let first = bytes.first else { return nil }
        if TURNChannelData.isChannelData(firstByte: first) {
            if let data = try? TURNChannelData(decoding: bytes) { side.append(.channelData(data)) }
            return nil
        }
        guard let message = try? STUNMessage(decoding: bytes) else {
            side.append(.other(bytes, from: from))
            return nil
        }
        if message.messageClass == .successResponse || message.messageClass == .errorResponse { return message }
        side.append(.stun(message, from: from))
        return nil
    }

    private var pendingFrames: [[UInt8]] = []

    private func receiveFrame(until deadline: Deadline) throws(ProbeNetworkError) -> (bytes: [UInt8], from: STUNAddress)? {
        switch link {
        case .udp(let socket, _):
            return try socket.receive(until: deadline)
        case .stream(let stream):
            while true {
                if !pendingFrames.isEmpty { return (pendingFrames.removeFirst(), stream.remoteAddress) }
                do {
                    while let frame = try splitter.nextFrame() {
                        switch frame {
                        case .stun(let b), .channelData(let b): pendingFrames.append(Array(b.readableBytesView))
                        }
                    }
                } catch {
                    throw ProbeNetworkError(.other, "\(stream.remoteAddress) sent bytes that are not STUN/TURN framing: \(error)")
                }
                if !pendingFrames.isEmpty { continue }
                guard let bytes = try stream.read(until: deadline) else { return nil }
                splitter.append(contentsOf: bytes)
            }
        }
    }
}

/// Opens a session of `kind` to `server`.
public enum STUNConnector {
    public static func open(
        _ kind: ProbeTransportKind, to server: STUNAddress, serverName: String?, caFile: String?,
        policy: RetransmissionPolicy, until deadline: Deadline
    ) throws(ProbeNetworkError) -> (session: STUNSession, tls: TLSPeerInfo?) {
        switch kind {
        case .udp:
            let socket = try UDPProbeSocket(family: server.family)
            try socket.connect(to: server)
            return (STUNSession(link: .udp(socket, server: server), policy: policy), nil)
        case .tcp:
            let tcp = try TCPProbeStream(connectingTo: server, until: deadline)
            return (STUNSession(link: .stream(tcp), policy: policy), nil)
        case .tls:
            let tcp = try TCPProbeStream(connectingTo: server, until: deadline)
            let tls = try TLSProbeStream(over: tcp, serverName: serverName, caFile: caFile, until: deadline)
            return (STUNSession(link: .stream(tls), policy: policy), tls.peer)
        }
    }
}
