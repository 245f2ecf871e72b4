@_spi(ConcordBackend) import Concord
import ConcordProcess
import ConcordRedis
import Logging

/// Writes with invalidation to several caches in one process, on a Redis Cluster: the caches'
/// slots on three different shards against the same number of caches whose slots share one
/// shard. Each cache has a writer node and a receiver node (every write is announced with
/// SPUBLISH and applied by the receiver); rounds alternate the two layouts.
///
/// Part of `concord bench --suite propagation --cluster`. On one machine every shard shares
/// its cores with the clients, so this shows what spreading costs or saves on this host, not
/// what separate hosts would give.
struct ShardSpreadBench: Sendable {
    var caches = 3
    var writersPerCache = 8
    var rounds = 3
    var budget = BenchBudget(maxCount: 60_000, maxDuration: .seconds(2))
    var logger: Logger

    /// Cache names whose slots the cluster serves on distinct shards (`spread`) or on one shard.
    static func cacheNames(count: Int, map: ClusterSlotMap, spread: Bool) throws -> [String] {
        var chosen: [String] = []
        var owners: [RedisConfiguration.Cluster.Endpoint] = []
        // Bounded: names are tried in order until enough fit; a 3-shard map fits within a few dozen.
        for index in 0..<10_000 where chosen.count < count {
            let name = "bench-shard-\(spread ? "s" : "o")\(index)"
            guard let owner = map.primary(forSlot: ClusterHashSlot.slot(of: "concord:{\(name)}")) else { continue }
            if spread ? !owners.contains(owner) : (owners.isEmpty || owners[0] == owner) {
                chosen.append(name)
                owners.append(owner)
            }
        }
        guard chosen.count == count else { throw BenchError("could not place \(count) caches \(spread ? "on distinct shards" : "on one shard")") }
        return chosen
    }

    func run(topology: ClusterTopology) async throws -> [BenchResult] {
        let redis = try topology.configuration()
        let probe = RedisClient(configuration: redis, logger: logger)
        let map: ClusterSlotMap = try await BenchServices.withRunning([{ try await probe.run() }]) {
            try await probe.waitUntilConnected(timeout: .seconds(10))
            guard let map = probe.clusterSlotMap else { throw BenchError("no slot map from the cluster") }
            return map
        }
        guard map.shards.count >= caches else { throw BenchError("the cluster has \(map.shards.count) shards, fewer than \(caches)") }
        let layouts = [try Self.cacheNames(count: caches, map: map, spread: true), try Self.cacheNames(count: caches, map: map, spread: false)]
        var pairs: [[(writer: BenchNode, receiver: BenchNode)]] = []
        for names in layouts {
            pairs.append(try names.map { name in
                (try BenchNode(id: "w-\(name)", cacheName: name, redis: redis, logger: logger),
                 try BenchNode(id: "r-\(name)", cacheName: name, redis: redis, logger: logger))
            })
        }
        var services: [@Sendable () async throws -> Void] = []
        for layout in pairs {
            for pair in layout {
                services.append { try await pair.writer.cache.run() }
                services.append { try await pair.receiver.cache.run() }
            }
        }
        return try await BenchServices.withRunning(services) {
            let nodes = pairs.flatMap { $0.flatMap { [$0.writer, $0.receiver] } }
            guard try await BenchServices.waitUntil(timeout: .seconds(20), { nodes.allSatisfy { $0.cache.isBackplaneConnected } }) else {
                throw BenchError("the shard-spread nodes did not connect to the backplane within 20 s")
            }
            var spreadRates: [Double] = []
            var oneShardRates: [Double] = []
            var ratios: [Double] = []
            var written = 0
            for round in 0..<rounds {
                var rates = [0.0, 0.0]
                for step in 0..<2 {
                    let side = (step + round) % 2
                    let (rate, count) = try await writeRate(pairs[side].map(\.writer), round: round)
                    rates[side] = rate
                    written += count
                }
                spreadRates.append(rates[0])
                oneShardRates.append(rates[1])
                ratios.append(rates[0] / rates[1])
            }
            // Every write was announced in its cache's log; each receiver must reach its log's head.
            var caughtUp = 0
            for pair in pairs.flatMap({ $0 }) {
                let head = try await pair.writer.backend.backplane.head().sequence
                if try await BenchServices.waitUntil(timeout: .seconds(10), { pair.receiver.cache.statistics.backplane.lastSeq >= head }) {
                    caughtUp += 1
                }
            }
            return [
                BenchResult(
                    suite: "propagation",
                    name: "writes with invalidation, \(caches) caches on \(caches) shards",
                    value: BenchResult.Summary(spreadRates),
                    unit: "ops/s",
                    reference: BenchResult.Summary(oneShardRates),
                    ratio: BenchResult.Summary(ratios).median,
                    target: "- (diagnostic)",
                    met: nil,
                    note: "reference: \(caches) caches whose slots share one shard; \(writersPerCache) writing tasks per cache, a receiver node per cache; \(written) writes, \(caughtUp) of \(pairs.count * caches) receivers caught up with their cache's log; every shard shares this host's cores")
            ]
        }
    }

    /// Sets per second from `writersPerCache` tasks on each writer, within the budget.
    private func writeRate(_ writers: [BenchNode], round: Int) async throws -> (Double, Int) {
        let perTask = max(1, budget.maxCount / (writers.count * writersPerCache))
        let begin = BenchClock.nanoseconds()
        let deadline = begin &+ BenchClock.nanoseconds(budget.maxDuration)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for (cache, writer) in writers.enumerated() {
                for task in 0..<writersPerCache {
                    group.addTask {
                        var done = 0
                        while done < perTask {
                            try await writer.cache.set("k-\(round)-\(task)-\(done % 64)", "value-\(done)")
                            done += 1
                            if done % 8 == 0, BenchClock.nanoseconds() >= deadline { break }
                        }
                        _ = cache
                        return done
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = BenchClock.nanoseconds() &- begin
        return (Double(total) / (Double(elapsed) / 1e9), total)
    }
}
