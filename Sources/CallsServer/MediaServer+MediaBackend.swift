// The bridge from CallsMedia's MediaServer to the API side.
import CallsMedia

extension MediaServer: MediaBackend {
    public func heartbeat() async -> Bool {
        (try? await runOnDataPlaneThread { true }) ?? false
    }

    public func createSession(offer: String, label: String, channel: String?, participant: String) async throws
        -> (sessionID: String, answer: String)
    {
        try await createSession(
            offer: offer, label: label, route: channel.map { .call($0) } ?? .echo, participant: participant)
    }

    public func createSession(offer: String, label: String) async throws -> (sessionID: String, answer: String) {
        try await createSession(offer: offer, label: label, route: .echo, participant: nil)
    }

    public func backendEvents(_ id: String) -> AsyncStream<MediaBackendEvent> {
        // Pulled in the consumer's task (no task of its own), so it runs wherever the consumer runs.
        let events = EventIterator(sessionEvents(id).makeAsyncIterator())
        return AsyncStream(unfolding: {
            switch await events.next() {
            case .iceConnected(let transport, let remote)?:
                return .iceConnected(transport: "\(transport)", remote: "\(remote)")
            case .dtlsConnected(let profile)?:
                return .dtlsConnected(profile: "\(profile)")
            case .renegotiationNeeded(let audio, let video)?:
                return .renegotiationNeeded(audioSlots: audio, videoSlots: video)
            case .speakers(let slots)?:
                return .speakers(slots.map { SlotSpeaker(slot: $0.slot, mid: $0.mid, ssrc: $0.ssrc, participant: $0.participant) })
            case .closed(let reason)?:
                return .closed(reason: "\(reason)")
            case nil:
                return nil
            }
        })
    }

    public var backendMetrics: MediaBackendMetrics {
        let m = metrics
        var b = MediaBackendMetrics(
            sessions: Int(m.sessions), packetsIn: UInt64(m.packetsIn), packetsOut: UInt64(m.packetsOut),
            bytesIn: UInt64(m.bytesIn), bytesOut: UInt64(m.bytesOut), dtlsFailures: UInt64(m.dtlsFailures),
            iceFailures: UInt64(m.iceFailures), droppedPackets: UInt64(m.droppedPackets))
        b.audioPacketsForwarded = m.audioPacketsForwarded
        b.videoPacketsForwarded = m.videoPacketsForwarded
        b.bytesForwarded = m.bytesForwarded
        b.mutedDropped = m.mutedDropped
        b.forwardLatencyBounds = m.forwardLatencyBucketBounds
        b.forwardLatencyCounts = m.forwardLatencyBuckets
        b.forwardLatencySum = m.forwardLatencySum
        b.sendErrors = m.sendErrors
        b.sendBufferFull = m.sendBufferFull
        b.udpReceiveBufferBytes = m.udpReceiveBufferBytes
        b.udpReceiveDrops = m.udpReceiveDrops
        b.nacksReceived = m.nacksReceived
        b.packetsRetransmitted = m.packetsRetransmitted
        b.keyFrameRequestsForwarded = m.keyFrameRequestsForwarded
        b.keyFrameRequestsLimited = m.keyFrameRequestsLimited
        b.receiverReportsSent = m.receiverReportsSent
        b.rembSent = m.rembSent
        b.rejectedSections = m.rejectedSections
        b.calls = m.calls.map {
            var f = MediaCallFigures(
                key: $0.key, participants: $0.participants, speakers: $0.speakers, presenters: $0.presenters,
                packetsForwarded: $0.packetsForwarded)
            f.listenerReportedLost = $0.listenerReportedLost
            return f
        }
        return b
    }
}

extension MediaServerConfiguration {
    /// The transport's settings from the ones `serve` resolved.
    public init(_ c: MediaBackendConfiguration) {
        self.init()
        udpListen = c.udpListen
        tcpListen = c.tcpListen
        advertisedAddresses = c.advertisedAddresses
        offerUDPCandidates = c.offerUDPCandidates
        offerTCPCandidates = c.offerTCPCandidates
        consentTimeout = c.consentTimeout
        audioSlots = c.audioSlots
        if let n = c.fanoutThreads { fanoutThreads = n }
        realtimePriority = c.realtimePriority
    }
}

/// One consumer's iterator over a session's events.
private final class EventIterator: @unchecked Sendable {
    // @unchecked: `AsyncStream(unfolding:)` calls `next()` from one consumer, one call at a time.
    private var iterator: AsyncStream<MediaSessionEvent>.AsyncIterator

    init(_ iterator: AsyncStream<MediaSessionEvent>.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async -> MediaSessionEvent? {
        await iterator.next()
    }
}
