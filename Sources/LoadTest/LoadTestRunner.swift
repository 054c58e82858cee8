import CallsMedia
import CallsServer
import CallsStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Probes

/// What `callsctl loadtest` was asked to do.
public struct LoadTestPlan: Sendable {
    public var host: String
    public var port: Int
    /// Join tokens: signed here with the server's token secret, or minted by the admin API with the admin key.
    public var tokenSecret: [UInt8]?
    public var adminKey: String?
    public var apiURL: ProbeURL
    public var calls = 1
    public var participants = 10
    public var speakers = 1
    /// Presenters per call (0 or 1): participant 0 of each call also shares a screen (a VP8 stream).
    public var presenters = 0
    public var duration: Duration = .seconds(10)
    /// Joins started per second (all calls together).
    public var ramp = 50
    public var transport: MediaClientConfiguration.Transport = .udp
    /// Channels to use, one per call; generated when empty.
    public var channels: [String] = []
    public var role: JoinTokenClaims.Role = .user
    /// The local server process to sample CPU and RSS from (`/proc`).
    public var serverPID: Int32?
    public var joinTimeout: Duration = .seconds(20)
    /// Where participants join, in turn (a cluster's nodes); empty: `host:port`. Redirects are followed from there.
    public var joinTargets: [(host: String, port: Int)] = []

    public init(host: String, port: Int, apiURL: ProbeURL) {
        self.host = host
        self.port = port
        self.apiURL = apiURL
    }
}

/// The outcome of a load test.
public struct LoadTestReport: Sendable {
    public var participants = 0
    public var joined = 0
    public var failedJoins: [String] = []
    public var joinWallSeconds = 0.0
    public var joinSeconds: [Double] = []
    public var renegotiations = 0
    /// Redirects followed to reach a call's node (a cluster), and how many participants joined at each address.
    public var redirects = 0
    public var joinedAt: [String: Int] = [:]
    /// Presenters whose screen the server took, and the screen's packets: sent by the presenters during the media
    /// time, expected (sent × viewers) and received by the viewers; loss per viewer.
    public var presenting = 0
    public var videoPacketsSent = 0
    public var videoExpectedPackets = 0
    public var videoReceivedPackets = 0
    public var viewerLoss: [Double] = []
    public var mediaSeconds = 0.0
    public var expectedPackets = 0
    public var receivedPackets = 0
    /// Loss per listener (0...1), one entry per joined participant.
    public var listenerLoss: [Double] = []
    public var undecryptable = 0
    /// Participants whose speaker map named at least as many participants as they should hear (every other speaker of
    /// their call, up to the slots).
    public var listenersWithFullSpeakerMap = 0
    public var serverCPUSeconds: Double?
    public var serverRSSBytesBefore: Int?
    public var serverRSSBytesAfter: Int?
    /// Where the server figures came from: `proc` (a local --server-pid) or `metrics` (the server's /metrics).
    public var serverSource: String?
    /// RFC 3550 interarrival jitter of the received streams (ms): the mean over listeners of each one's mean, and the
    /// worst stream.
    public var meanJitterMilliseconds: Double?
    public var worstJitterMilliseconds: Double?
    /// One sample per second of the whole run (joins, media, settling).
    public var timeline: [LoadTestSample] = []
    public var channels: [String] = []

    public var meanLoss: Double { listenerLoss.isEmpty ? 0 : listenerLoss.reduce(0, +) / Double(listenerLoss.count) }
    public var meanVideoLoss: Double { viewerLoss.isEmpty ? 0 : viewerLoss.reduce(0, +) / Double(viewerLoss.count) }
    public var worstLoss: Double { listenerLoss.max() ?? 0 }
    public func percentile(_ q: Double) -> Double {
        let s = joinSeconds.sorted()
        guard !s.isEmpty else { return 0 }
        return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
    }
    public var joinsPerSecond: Double { joinWallSeconds > 0 ? Double(joined) / joinWallSeconds : 0 }
}

/// Runs real participants against a media server: joins at `ramp` per second, lets `speakers` per call send Opus
/// tones with audio levels every 20 ms for `duration`, and counts what every listener received.
public enum LoadTestRunner {
    /// `progress` gets a line at each step (joins started, joined); `onSample` gets the figures of every second.
    public static func run(
        _ plan: LoadTestPlan, logger: Logger, progress: (@Sendable (String) -> Void)? = nil,
        onSample: (@Sendable (LoadTestSample) -> Void)? = nil
    ) async -> LoadTestReport {
        var report = LoadTestReport()
        report.participants = plan.calls * plan.participants
        let channels = (0..<plan.calls).map { i in i < plan.channels.count ? plan.channels[i] : randomChannelID() }
        report.channels = channels
        _ = MediaLibraries.initializeSRTP()
        // Listeners share one event loop, speakers another (a speaker's sends never wait behind receive work).
        let listenerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let speakerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = MediaClientConfiguration()
        configuration.transport = plan.transport
        configuration.deliverReceivedPackets = false
        configuration.connectTimeout = plan.joinTimeout
        configuration.audioLevelExtensionID = 1
        // A listener authenticates one packet in 8 and counts the rest from their clear headers: the generator then
        // costs less than the server it drives (a failed sample counts as undecryptable).
        configuration.authenticateOneIn = 8

        let cost: ServerCostSource = plan.serverPID.map { .process($0) } ?? .metrics(plan.apiURL)
        let costBefore = cost.read()
        report.serverSource = costBefore.cpuSeconds == nil ? nil : (plan.serverPID == nil ? "metrics" : "proc")
        report.serverRSSBytesBefore = costBefore.residentBytes

        var participants: [(call: Int, p: LoadParticipant)] = []
        for c in 0..<plan.calls {
            for i in 0..<plan.participants {
                participants.append(
                    (c, LoadParticipant(index: i, user: "load-\(c)-\(i)", speaks: i < plan.speakers, presents: i == 0 && plan.presenters > 0)))
            }
        }
        let sampler = LoadSampler(cost: report.serverSource == nil ? nil : cost)
        let all = participants.map(\.p)
        let sampling = Task { await sampler.run(all, progress: onSample) }
        defer { sampling.cancel() }
        // Joins at `ramp` per second, every join bounded by the join timeout.
        let joinStart = ContinuousClock.now
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(max(plan.ramp, 1)))
        await withTaskGroup(of: Void.self) { group in
            var next = joinStart
            for (n, entry) in participants.enumerated() {
                try? await Task.sleep(until: next, clock: .continuous)
                next = next + interval
                var c = configuration
                c.eventLoopGroup = entry.p.speaks ? speakerGroup : listenerGroup
                let clientConfiguration = c
                let channel = channels[entry.call]
                let token = await token(plan, channel: channel, user: entry.p.user)
                group.addTask {
                    guard let token else {
                        entry.p.failWithoutToken()
                        return
                    }
                    let target = plan.joinTargets.isEmpty ? (host: plan.host, port: plan.port) : plan.joinTargets[n % plan.joinTargets.count]
                    await entry.p.join(
                        host: target.host, port: target.port, token: token, channel: channel, configuration: clientConfiguration,
                        logger: logger, timeout: plan.joinTimeout)
                }
                if n % 50 == 49 { progress?("joining: \(n + 1) of \(participants.count) started") }
            }
        }
        report.joinWallSeconds = LoadParticipant.seconds(ContinuousClock.now - joinStart)
        for (_, p) in participants {
            if let e = p.error { report.failedJoins.append("\(p.user): \(e)") }
            if let s = p.joinSeconds { report.joinSeconds.append(s) }
            report.redirects += p.redirects
            if p.joinSeconds != nil, let at = p.joinedAt { report.joinedAt[at, default: 0] += 1 }
        }
        report.joined = report.joinSeconds.count
        progress?("joined: \(report.joined) of \(participants.count), \(report.failedJoins.count) failed")

        // Presenters: wait (bounded) until the server took each screen and the viewers' offers carry a video slot.
        let presenters = participants.filter { $0.p.presents && $0.p.joinSeconds != nil }
        if !presenters.isEmpty {
            let until = ContinuousClock.now + plan.joinTimeout
            while ContinuousClock.now < until, !presenters.allSatisfy({ $0.p.presenting }) {
                try? await Task.sleep(for: .milliseconds(100))
            }
            report.presenting = presenters.filter { $0.p.presenting }.count
            progress?("presenting: \(report.presenting) of \(presenters.count) screen(s)")
            try? await Task.sleep(for: .seconds(1))  // the viewers' renegotiations
        }

        // Media: every call's speakers send one Opus frame per 20 ms, presenters a VP8 frame every 1/15 s.
        let frames = OpusToneFrames.decoded
        let toneKeys = frames.keys.sorted()
        try? await Task.sleep(for: .milliseconds(500))  // speaker maps settle
        let videoSSRCs = Set(presenters.compactMap { $0.p.client?.videoSSRC })
        let countsBefore = await counts(participants.map(\.p), video: videoSSRCs)
        let start = ContinuousClock.now
        let showing = presenters.filter { $0.p.presenting }
        let videoSent = ManagedCounter()
        let screens = Task {
            guard !showing.isEmpty else { return }
            let screen = VP8ScreenFrames.decoded
            let fps = VP8ScreenFrames.framesPerSecond
            let frameCount = Int(LoadParticipant.seconds(plan.duration) * Double(fps))
            var next = ContinuousClock.now
            for f in 0..<frameCount {
                let frame = screen[f % screen.count]
                let timestamp = UInt32(truncatingIfNeeded: f * (90_000 / fps))
                for (_, p) in showing {
                    for (k, payload) in frame.enumerated() {
                        p.client?.sendVideo(payload: payload, timestamp: timestamp, marker: k == frame.count - 1)
                    }
                }
                videoSent.add(frame.count)
                sampler.countSent(frame.count * showing.count)
                next = next + .nanoseconds(1_000_000_000 / Int64(fps))
                try? await Task.sleep(until: next, clock: .continuous)
            }
        }
        let total = Int(LoadParticipant.seconds(plan.duration) * 50)
        var deadline = start
        // Speakers are spread over the 20 ms (real microphones are not in phase).
        let speaking = participants.filter { $0.p.speaks && $0.p.joinSeconds != nil && $0.p.client != nil }
        var expectedRate = 0.0
        for entry in participants where entry.p.joinSeconds != nil {
            let others = speaking.filter { $0.call == entry.call && $0.p !== entry.p }.count
            expectedRate += Double(min(others, 3) * 50)
            if presenters.contains(where: { $0.call == entry.call && $0.p !== entry.p && $0.p.presenting }) {
                expectedRate += Double(VP8ScreenFrames.decoded.reduce(0) { $0 + $1.count })  // one second of the screen
            }
        }
        sampler.setPhase("media", expectedRate: expectedRate)
        progress?("media: \(speaking.count) speaker(s) for \(total / 50) s")
        let step = Duration.milliseconds(20) / max(speaking.count, 1)
        for n in 0..<total {
            for (_, p) in speaking {
                let tone = frames[toneKeys[p.index % toneKeys.count]] ?? []
                if !tone.isEmpty {
                    p.client?.sendAudio(payload: tone[n % tone.count], timestamp: UInt32(truncatingIfNeeded: n * 960), audioLevel: 25)
                    sampler.countSent(1)
                }
                deadline = deadline + step
                try? await Task.sleep(until: deadline, clock: .continuous)
            }
            if speaking.isEmpty {
                deadline = deadline + .milliseconds(20)
                try? await Task.sleep(until: deadline, clock: .continuous)
            }
        }
        // The last packets in flight: wait until the listeners' counts stop growing (500 ms quiet, 5 s at most), so
        // a generator that fell behind is not charged as loss.
        await screens.value
        report.mediaSeconds = LoadParticipant.seconds(ContinuousClock.now - start)
        sampler.setPhase("settling")
        var countsAfter = await counts(participants.map(\.p), video: videoSSRCs)
        var quietSince = ContinuousClock.now
        let settleDeadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now - quietSince < .milliseconds(500), ContinuousClock.now < settleDeadline {
            try? await Task.sleep(for: .milliseconds(100))
            let now = await counts(participants.map(\.p), video: videoSSRCs)
            if now.map(\.received) != countsAfter.map(\.received) || now.map(\.video) != countsAfter.map(\.video) {
                countsAfter = now
                quietSince = .now
            }
        }

        // Loss per listener: every joined speaker of its call (not itself), up to the slots.
        for (k, entry) in participants.enumerated() where entry.p.joinSeconds != nil {
            let speakersInCall = participants.filter { $0.call == entry.call && $0.p.speaks && $0.p.joinSeconds != nil }
            let heard = min(speakersInCall.filter { $0.p !== entry.p }.count, 3)
            let expected = heard * total
            let got = (countsAfter[k].received - countsAfter[k].video) - (countsBefore[k].received - countsBefore[k].video)
            report.expectedPackets += expected
            report.receivedPackets += got
            report.undecryptable += countsAfter[k].undecryptable
            if expected > 0 { report.listenerLoss.append(max(0, Double(expected - got)) / Double(expected)) }
            if entry.p.speakersSeen.count >= heard { report.listenersWithFullSpeakerMap += 1 }
            report.renegotiations += entry.p.renegotiations
            // The screen: every participant of a call with a presenter views it, but the presenter.
            if showing.contains(where: { $0.call == entry.call && $0.p !== entry.p }) {
                let expected = videoSent.value
                let got = countsAfter[k].video - countsBefore[k].video
                report.videoExpectedPackets += expected
                report.videoReceivedPackets += got
                if expected > 0 { report.viewerLoss.append(max(0, Double(expected - got)) / Double(expected)) }
            }
        }
        report.videoPacketsSent = videoSent.value * showing.count
        let costAfter = cost.read()
        if let before = costBefore.cpuSeconds, let after = costAfter.cpuSeconds { report.serverCPUSeconds = after - before }
        report.serverRSSBytesAfter = costAfter.residentBytes
        var listenerJitter: [Double] = []
        var worstJitter: Double?
        for (_, p) in participants where p.joinSeconds != nil {
            guard let values = await p.client?.receivedJitterMilliseconds().values, !values.isEmpty else { continue }
            listenerJitter.append(values.reduce(0, +) / Double(values.count))
            worstJitter = max(worstJitter ?? 0, values.max() ?? 0)
        }
        if !listenerJitter.isEmpty {
            report.meanJitterMilliseconds = listenerJitter.reduce(0, +) / Double(listenerJitter.count)
            report.worstJitterMilliseconds = worstJitter
        }
        sampling.cancel()
        report.timeline = sampler.samples

        await withTaskGroup(of: Void.self) { group in
            for (_, p) in participants { group.addTask { await p.leave() } }
        }
        try? await listenerGroup.shutdownGracefully()
        try? await speakerGroup.shutdownGracefully()
        return report
    }

    /// Packets each participant received (all, and those of the `video` SSRCs among them) and failed to decrypt.
    static func counts(
        _ ps: [LoadParticipant], video: Set<UInt32> = []
    ) async -> [(received: Int, undecryptable: Int, video: Int)] {
        // All participants at once, one question per event loop: asked one by one, each waited for a turn of its
        // loop, and a busy listener loop (tens of ms a turn beside a server at real-time priority) made a
        // 1,000-participant count take the whole media phase.
        let clients = ps.compactMap(\.client)
        var answers = await MediaClient.receiveCounters(of: clients)[...]
        var out: [(received: Int, undecryptable: Int, video: Int)] = []
        for p in ps {
            guard p.client != nil, let a = answers.popFirst() else {
                out.append((0, 0, 0))
                continue
            }
            let videoCount = video.isEmpty ? 0 : a.perSSRC.reduce(0) { $0 + (video.contains($1.key) ? $1.value : 0) }
            out.append((a.perSSRC.values.reduce(0, +), a.undecryptable, videoCount))
        }
        return out
    }

    static func token(_ plan: LoadTestPlan, channel: String, user: String) async -> String? {
        if let secret = plan.tokenSecret, let id = try? ChannelID(validating: channel) {
            return JoinTokenSigner(secret: secret).sign(JoinTokenClaims(channel: id, user: user, role: plan.role, ttl: 3600))
        }
        guard let key = plan.adminKey else { return nil }
        let url = plan.apiURL.with(path: "/api/v1/tokens?channel=\(channel)&user=\(user)&role=\(plan.role.rawValue)&ttl=3600")
        let response = try? HTTPProbe.request(
            url, method: "POST", headers: [("Authorization", "Bearer \(key)"), ("Content-Length", "0")], caFile: nil,
            timeout: .seconds(10))
        guard let response, response.status == 201,
            let object = try? JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any]
        else { return nil }
        return object["token"] as? String
    }
}

extension LoadParticipant {
    func failWithoutToken() {
        // The admin API refused to mint a token (wrong key, or unreachable): reported per participant.
        setError("no join token: the admin API did not mint one (check --admin-key-file and --url)")
    }
}

/// A counter shared between the sending task and the runner.
final class ManagedCounter: @unchecked Sendable {
    // @unchecked: `count` is behind `lock`.
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.withLock { count += n } }
    var value: Int { lock.withLock { count } }
}

extension VP8ScreenFrames {
    /// The frames as payload bytes.
    static let decoded: [[[UInt8]]] = frames.map { $0.compactMap { Data(base64Encoded: $0).map { [UInt8]($0) } } }
}

extension OpusToneFrames {
    /// The tones as frame bytes, by frequency.
    static let decoded: [Int: [[UInt8]]] = tones.mapValues { $0.compactMap { Data(base64Encoded: $0).map { [UInt8]($0) } } }
}

/// A random Mattermost-style channel id (26 characters of a-z0-9) for a load test's call.
public func randomChannelID() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<26).map { _ in alphabet.randomElement()! })
}
