@_spi(ConcordBackend) import Concord
import ConcordRedis
import ConcordProcess
import Histogram
import Logging
import NIOCore
import NIOPosix

/// The `propagation` suite: how long after `set` on node A the entry is expired on node B,
/// timed by B's `.messageApplied` event, with 1, 4, 16 and 64 receiving nodes, writes
/// back-to-back and spaced apart. The reference is a raw PUBLISH to a message on as many `RedisSubscriber`s,
/// through the same client code and server, in the same modes.
///
/// Every node is a full `HybridCache` with its own command and subscriber connections, as
/// separate processes would have; all run in this process, so they share its two cores. Each
/// receiving node, each raw subscriber and the tap run on an event loop of their own, as in a
/// process of their own: on the writer's loops, the receivers' reading and applying delayed the
/// writer's own replies and next writes, which no separate receiver would.
struct PropagationSuite: Sendable {
    /// How writes follow each other.
    enum Mode: Sendable, Equatable, CustomStringConvertible {
        /// Each write starts when the previous one returns.
        case backToBack
        /// Writes start this far apart (or when the previous one returns, if later).
        case spaced(Duration)

        var description: String {
            switch self {
            case .backToBack: "back-to-back"
            case .spaced(let gap): "spaced \(gap.components.seconds * 1000 + gap.components.attoseconds / 1_000_000_000_000_000) ms"
            }
        }
    }

    /// What to measure and for how long.
    struct Configuration: Sendable {
        var receiverCounts = [1, 4, 16, 64]
        /// Receiver counts above this are measured to show how delivery grows with fan-out,
        /// without a target (the issue's targets stop at 16 receivers).
        var maxTargetedReceivers = 16
        var modes: [Mode] = [.backToBack, .spaced(.milliseconds(20))]
        var rounds = 3
        var backToBackWrites = 400
        var spacedWrites = 120
        /// How long to wait for the last arrivals of a round.
        var settleTimeout: Duration = .seconds(5)
        /// The p50 may exceed the raw p50 by this much.
        var p50Allowance: Duration = .microseconds(50)
        /// The p99 may be this many times the raw p99.
        var p99Factor = 2.0
        /// Also measures on a Redis Cluster of three primaries (sharded pub/sub: SPUBLISH and
        /// SSUBSCRIBE, for Concord and for the raw reference), after the standalone server, in the same run.
        var cluster = false

        init() {}

        static var quick: Configuration {
            var configuration = Configuration()
            configuration.rounds = 1
            configuration.receiverCounts = [1, 4, 16]
            configuration.backToBackWrites = 60
            configuration.spacedWrites = 15
            return configuration
        }
    }

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.propagation")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Percentiles of one round, in nanoseconds.
    struct RoundPercentiles {
        var p50: Double
        var p99: Double
        var samples: Int
        var missing: Int
    }

    /// Where a measurement runs: one redis-server, or a Redis Cluster.
    struct Target: Sendable {
        var redis: RedisConfiguration
        /// Sharded pub/sub (a cluster): the raw reference uses SPUBLISH/SSUBSCRIBE like Concord does.
        var sharded: Bool
        /// Appended to every result's name.
        var label: String
    }

    func run() async throws -> [BenchResult] {
        var results = try await BenchServices.withServer { server in
            var results: [BenchResult] = []
            let target = Target(redis: Self.patient(server.configuration()), sharded: false, label: "")
            for receivers in configuration.receiverCounts {
                results += try await measure(receivers: receivers, target: target)
            }
            return results
        }
        guard configuration.cluster else { return results }
        let standalone = results
        let topology: ClusterTopology
        do {
            topology = try await ClusterTopology.start(.init(primaries: 3, replicasPerPrimary: 0))
        } catch {
            throw BenchError("cannot start a Redis Cluster (run scripts/setup.sh): \(error)")
        }
        defer { topology.stop() }
        let target = Target(redis: Self.patient(try topology.configuration()), sharded: true, label: " on Redis Cluster")
        var clustered: [BenchResult] = []
        // The cluster comparison stays at the targeted counts; fan-out growth is the
        // standalone server's figure.
        for receivers in configuration.receiverCounts where receivers <= configuration.maxTargetedReceivers {
            clustered += try await measure(receivers: receivers, target: target)
        }
        results += clustered
        results += try await ShardSpreadBench(
            rounds: configuration.rounds,
            budget: BenchBudget(maxCount: 60_000, maxDuration: configuration.rounds == 1 ? .milliseconds(300) : .seconds(2)),
            logger: logger
        ).run(topology: topology)
        results += BenchResult.versus(clustered, standalone, suffix: " on Redis Cluster", suite: "propagation", what: "Redis Cluster against standalone")
        return results
    }

    /// `redis` with a command timeout of 10 s: with 64 receivers this process runs 129 threads
    /// on two cores, and on a loaded machine a reply or a subscriber's PONG can wait past the
    /// default 1 s, which failed the whole suite; the timeout bounds a lost reply and times
    /// nothing that is measured.
    static func patient(_ redis: RedisConfiguration) -> RedisConfiguration {
        var redis = redis
        redis.commandTimeout = .seconds(10)
        return redis
    }

    private func measure(receivers receiverCount: Int, target: Target) async throws -> [BenchResult] {
        // One loop each for every receiving node, raw subscriber and the tap; the writer and the
        // raw publisher share SwiftNIO's shared loops, as the writing process's own.
        let ownLoops = (0..<(2 * receiverCount + 1)).map { _ in MultiThreadedEventLoopGroup(numberOfThreads: 1) }
        do {
            let results = try await measure(receivers: receiverCount, target: target, ownLoops: ownLoops)
            for group in ownLoops { try? await group.shutdownGracefully() }
            return results
        } catch {
            for group in ownLoops { try? await group.shutdownGracefully() }
            throw error
        }
    }

    private func measure(receivers receiverCount: Int, target: Target, ownLoops: [MultiThreadedEventLoopGroup]) async throws -> [BenchResult] {
        let cacheName = "bench-propagation-\(receiverCount)"
        let nodes = try (0...receiverCount).map { index in
            try BenchNode(
                id: index == 0 ? "writer" : "receiver-\(index)", cacheName: cacheName, redis: target.redis, logger: logger,
                eventLoopGroup: index == 0 ? MultiThreadedEventLoopGroup.singleton : ownLoops[index - 1])
        }
        let writer = nodes[0]
        let receivers = Array(nodes.dropFirst())
        let concordBoard = LatencyBoard()

        // The raw reference: one publishing client, one subscriber per receiving node.
        let rawChannel = "bench:raw:\(receiverCount)"
        let publisher = RedisClient(configuration: target.redis, logger: logger)
        let subscribers = (0..<receiverCount).map {
            RedisSubscriber(configuration: target.redis, logger: logger, eventLoopGroup: ownLoops[receiverCount + $0])
        }
        let rawBoard = LatencyBoard()
        // A tap: a plain subscriber on the Concord channel, to split each delivery into the
        // writer's part (set → message on the channel) and the receiver's (channel → applied),
        // in a round of its own after the measured ones.
        let tap = RedisSubscriber(configuration: target.redis, logger: logger, eventLoopGroup: ownLoops[2 * receiverCount])
        let tapBoard = LatencyBoard()
        let tapMessages = tap.messages

        var services: [@Sendable () async throws -> Void] = nodes.map { node in { try await node.cache.run() } }
        for (index, node) in receivers.enumerated() {
            let events = node.cache.events()
            let writerID = writer.cache.nodeID
            services.append {
                for await event in events {
                    if case .messageApplied(.set, let key, writerID) = event {
                        concordBoard.arrived(key, receiver: index)
                    }
                }
            }
        }
        services.append { try await publisher.run() }
        services.append { try await tap.run() }
        services.append {
            for await message in tapMessages {
                if let decoded = try? BackplaneMessage.decode(message.payload), decoded.kind == .set {
                    tapBoard.arrived(decoded.key, receiver: 0)
                }
            }
        }
        for (index, subscriber) in subscribers.enumerated() {
            let messages = subscriber.messages
            services.append { try await subscriber.run() }
            services.append {
                for await message in messages {
                    rawBoard.arrived(String(decoding: message.payload, as: UTF8.self), receiver: index)
                }
            }
        }

        return try await BenchServices.withRunning(services) {
            let concordChannel = RedisNamespace(cacheName: cacheName).channel
            if target.sharded {
                for subscriber in subscribers { try await subscriber.ssubscribe(channels: [rawChannel]) }
            } else {
                for subscriber in subscribers { try await subscriber.subscribe(channels: [rawChannel]) }
            }
            try await tap.waitUntilConnected(timeout: .seconds(10))
            try await publisher.waitUntilConnected(timeout: .seconds(10))
            // The slow log with a zero threshold records every command's time inside the server,
            // which tells the write script's own cost from the rest of the path. (Not in a
            // cluster: CONFIG and SLOWLOG would reach whichever primary, not the cache's.)
            if !target.sharded {
                _ = try await publisher.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
                _ = try await publisher.send("CONFIG", "SET", "slowlog-max-len", "1000000")
            }
            for subscriber in subscribers { try await subscriber.waitUntilConnected(timeout: .seconds(10)) }
            guard try await BenchServices.waitUntil(timeout: .seconds(15), { nodes.allSatisfy { $0.cache.isBackplaneConnected } }) else {
                throw BenchError("the propagation nodes did not connect to the backplane within 15 s")
            }

            var results: [BenchResult] = []
            for mode in configuration.modes {
                let writes = mode == .backToBack ? configuration.backToBackWrites : configuration.spacedWrites
                var concordRounds: [RoundPercentiles] = []
                var rawRounds: [RoundPercentiles] = []
                var tapRounds: [RoundPercentiles] = []
                // The slow log is read after each measured drive and reset before the next: the
                // receivers' reads of a prefill (64 × 400 scripts) would otherwise fill it past
                // what one reply may carry.
                var scriptSamples: [Int64] = []
                var publishSamples: [Int64] = []
                func resetSlowLog() async throws {
                    if !target.sharded { _ = try await publisher.send("SLOWLOG", "RESET") }
                }
                func readSlowLog() async throws {
                    guard !target.sharded else { return }
                    let samples = try await Self.serverSamples(publisher)
                    scriptSamples += samples.writeScript
                    publishSamples += samples.publish
                }
                for round in 0..<configuration.rounds {
                    let keys = (0..<writes).map { "p\(receiverCount)-\(mode == .backToBack ? "b" : "s")\(round)-\($0)" }
                    for side in 0..<2 {
                        if (side == 0) == (round % 2 == 0) {
                            try await prefill(keys: keys, writer: writer, receivers: receivers)
                            concordBoard.begin(writes: writes, receivers: receiverCount)
                            try await resetSlowLog()
                            try await drive(keys: keys, mode: mode, boards: [concordBoard]) { key in
                                try await writer.cache.set(key, "value-of-" + key)
                            }
                            concordRounds.append(try await settle(concordBoard, expected: writes * receiverCount))
                            try await readSlowLog()
                        } else {
                            rawBoard.begin(writes: writes, receivers: receiverCount)
                            try await resetSlowLog()
                            try await drive(keys: keys, mode: mode, boards: [rawBoard]) { key in
                                _ = try await publisher.send(target.sharded ? "SPUBLISH" : "PUBLISH", RedisArgument(rawChannel), RedisArgument(key))
                            }
                            rawRounds.append(try await settle(rawBoard, expected: writes * receiverCount))
                            try await readSlowLog()
                        }
                    }
                }
                // The tap listens only in a round of its own: on the channel during the measured
                // rounds, Redis would write its copy of each message ahead of the receivers' (it
                // subscribed last, and Redis writes a message's subscribers last-subscribed first)
                // and its reading would take CPU from them, a cost the raw reference does not pay.
                let tapKeys = (0..<writes).map { "p\(receiverCount)-\(mode == .backToBack ? "b" : "s")tap-\($0)" }
                if target.sharded { try await tap.ssubscribe(channels: [concordChannel]) } else { try await tap.subscribe(channels: [concordChannel]) }
                try await tap.waitUntilConnected(timeout: .seconds(10))
                try await prefill(keys: tapKeys, writer: writer, receivers: receivers)
                tapBoard.begin(writes: writes, receivers: 1)
                try await drive(keys: tapKeys, mode: mode, boards: [tapBoard]) { key in
                    try await writer.cache.set(key, "value-of-" + key)
                }
                tapRounds.append(try await settle(tapBoard, expected: writes))
                if target.sharded { try await tap.sunsubscribe(channels: [concordChannel]) } else { try await tap.unsubscribe(channels: [concordChannel]) }
                let serverTimes = (Self.median(scriptSamples), Self.median(publishSamples))
                results += summarize(
                    concordRounds, raw: rawRounds, tap: tapRounds, serverTimes: serverTimes, receivers: receiverCount, mode: mode,
                    label: target.label)
            }
            return results
        }
    }

    /// Writes every key once from the writer, lets every receiver catch up with the log, then has
    /// every receiver read every key into its L1, so the measured write has an entry to expire.
    private func prefill(keys: [String], writer: BenchNode, receivers: [BenchNode]) async throws {
        for key in keys { try await writer.cache.set(key, "old") }
        let head = try await writer.backend.backplane.head().sequence
        guard try await BenchServices.waitUntil(timeout: configuration.settleTimeout, {
            receivers.allSatisfy { $0.cache.statistics.backplane.lastSeq >= head }
        }) else {
            throw BenchError("receivers did not catch up with the invalidation log within \(configuration.settleTimeout)")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for receiver in receivers {
                group.addTask {
                    for key in keys {
                        guard try await receiver.cache.getResult(key, as: String.self) != nil else {
                            throw BenchError("a receiver could not read '\(key)' from L2 during the prefill")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Sends one write per key in `mode`, timing each from just before the call.
    private func drive(keys: [String], mode: Mode, boards: [LatencyBoard], write: (String) async throws -> Void) async throws {
        let gap: UInt64
        switch mode {
        case .backToBack: gap = 0
        case .spaced(let duration): gap = BenchClock.nanoseconds(duration)
        }
        var next = BenchClock.nanoseconds()
        for (index, key) in keys.enumerated() {
            if gap > 0 {
                let now = BenchClock.nanoseconds()
                if next > now { try await Task.sleep(for: .nanoseconds(Int64(next - now))) }
                next = max(next, now) &+ gap
            }
            for board in boards { board.send(index, key: key) }
            try await write(key)
        }
    }

    /// Waits for every arrival (or the settle timeout) and reads the round's percentiles.
    private func settle(_ board: LatencyBoard, expected: Int) async throws -> RoundPercentiles {
        _ = try await BenchServices.waitUntil(timeout: configuration.settleTimeout, interval: .milliseconds(2)) {
            board.arrivedCount >= expected
        }
        let (latencies, missing) = board.latencies()
        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
        for latency in latencies { histogram.record(max(1, latency)) }
        guard histogram.totalCount > 0 else { return RoundPercentiles(p50: .nan, p99: .nan, samples: 0, missing: missing) }
        return RoundPercentiles(
            p50: Double(histogram.valueAtPercentile(50)),
            p99: Double(histogram.valueAtPercentile(99)),
            samples: latencies.count,
            missing: missing)
    }

    private func summarize(
        _ concord: [RoundPercentiles],
        raw: [RoundPercentiles],
        tap: [RoundPercentiles],
        serverTimes: (writeScript: Double?, publish: Double?),
        receivers: Int,
        mode: Mode,
        label suffix: String = ""
    ) -> [BenchResult] {
        func micros(_ rounds: [RoundPercentiles], _ value: KeyPath<RoundPercentiles, Double>) -> BenchResult.Summary {
            let values = rounds.map { $0[keyPath: value] / 1000 }.filter { !$0.isNaN }
            return BenchResult.Summary(values.isEmpty ? [.nan] : values)
        }
        let missing = concord.map(\.missing).reduce(0, +)
        let rawMissing = raw.map(\.missing).reduce(0, +)
        let samples = concord.map(\.samples).reduce(0, +)
        var note = "\(samples) deliveries over \(concord.count) round\(concord.count == 1 ? "" : "s")"
        if missing > 0 || rawMissing > 0 { note += "; \(missing) Concord and \(rawMissing) raw deliveries never arrived" }
        let label = "\(receivers) receiver\(receivers == 1 ? "" : "s"), \(mode)\(suffix)"
        let tapP50 = micros(tap, \.p50).median
        let tapP99 = micros(tap, \.p99).median
        note += "; of it, set → message on the channel: p50 \(BenchFormat.adaptive(tapP50)) µs, p99 \(BenchFormat.adaptive(tapP99)) µs"
        note += "; inside Redis: write script p50 \(serverTimes.writeScript.map { BenchFormat.adaptive($0) } ?? "-") µs, PUBLISH p50 \(serverTimes.publish.map { BenchFormat.adaptive($0) } ?? "-") µs"

        let p50 = micros(concord, \.p50)
        let rawP50 = micros(raw, \.p50)
        let allowance = Double(BenchClock.nanoseconds(configuration.p50Allowance)) / 1000
        let p99 = micros(concord, \.p99)
        let rawP99 = micros(raw, \.p99)
        let isTargeted = receivers <= configuration.maxTargetedReceivers
        return [
            BenchResult(
                suite: "propagation", name: "p50, \(label)", value: p50, unit: "µs", reference: rawP50,
                ratio: p50.median / rawP50.median,
                target: isTargeted ? "<= raw + \(BenchFormat.adaptive(allowance)) µs" : "growth with fan-out (no target)",
                met: isTargeted ? missing == 0 && p50.median <= rawP50.median + allowance : nil,
                note: note + "; over by \(BenchFormat.adaptive(p50.median - rawP50.median)) µs"),
            BenchResult(
                suite: "propagation", name: "p99, \(label)", value: p99, unit: "µs", reference: rawP99,
                ratio: p99.median / rawP99.median,
                target: isTargeted ? "ratio <= \(BenchFormat.adaptive(configuration.p99Factor))" : "growth with fan-out (no target)",
                met: isTargeted ? missing == 0 && p99.median <= rawP99.median * configuration.p99Factor : nil,
                note: note),
        ]
    }
}
