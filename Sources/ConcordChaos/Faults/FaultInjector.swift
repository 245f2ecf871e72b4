@_spi(ConcordBackend) import Concord
import ConcordMemcached
import ConcordProcess
import ConcordRedis
import Foundation
import Logging

/// Applies scheduled faults to a cluster and heals them. Each fault has exactly one heal, and
/// after the heal the cluster's processes and links are as they were before the fault (Redis
/// possibly with an empty dataset, which the protocol must cope with).
struct FaultInjector: Sendable {
    let cluster: ChaosCluster
    let logger: Logger

    /// Node ids (or `Fault.redisTarget`) a fault affects, for the history.
    func targetIDs(_ fault: ScheduledFault) -> [String] {
        if fault.kind.targetsRedis { return [Fault.redisTarget] }
        if fault.kind.targetsMemcached { return [Fault.memcachedTarget] }
        let nodes = cluster.nodes
        return fault.targets.map { nodes[$0].id }
    }

    /// What an injection learned: a note for the report, and for a failover when the window in
    /// which Redis may have lost acknowledged writes closed.
    struct Injected: Sendable {
        var note: String?
        var lossWindowEnd: ContinuousClock.Instant?
    }

    /// Applies the fault.
    func inject(_ fault: ScheduledFault) async throws -> Injected {
        let nodes = cluster.nodes
        switch fault.kind {
        case .redisKill:
            cluster.redis.kill()
        case .redisRestartEmpty:
            try await restartRedis()
        case .redisPause:
            cluster.redis.pause()
        case .partitionOne, .partitionHalf, .partitionAll:
            try cut(fault, .link) { $0.set(.down) }
        case .partitionDeaf:
            try cut(fault, .deaf) { $0.set(.down, direction: .downstream) }
        case .partitionMute:
            try cut(fault, .mute) { $0.set(.down, direction: .upstream) }
        case .blackholeOne:
            try cut(fault, .blackhole) { $0.set(.timeout()) }
        case .blackholeDeaf:
            try cut(fault, .deaf) { $0.set(.timeout(), direction: .downstream) }
        case .latency:
            // Downstream only: replies arrive late, as from a slow or distant Redis; the added
            // delay stays below the nodes' 1s command timeout, so this is slowness, not an outage.
            let delay = fault.magnitude ?? .milliseconds(250)
            for index in fault.targets { nodes[index].proxy?.set(.latency(delay, jitter: delay / 4), direction: .downstream) }
        case .reset:
            let after = fault.magnitude ?? .milliseconds(500)
            for index in fault.targets { nodes[index].proxy?.set(.resetPeer(after: after)) }
        case .flushall:
            try await flushAll()
        case .nodeKill:
            for index in fault.targets { await cluster.killNode(index) }
        case .failover:
            return try await gracefulFailover()
        case .masterKill:
            return try await killMaster(afterCuttingReplication: false)
        case .replicaLag:
            return try await killMaster(afterCuttingReplication: true)
        case .slotMigrate:
            return try await migrateCacheSlot()
        case .shardFailover:
            return try await failOverCacheShard()
        case .primaryKill:
            return try await killCachePrimary()
        case .memcachedKill:
            memcachedServer(fault)?.kill()
        case .memcachedPause:
            memcachedServer(fault)?.pause()
        case .memcachedPartition:
            memcachedProxy(fault)?.set(.down)
        case .memcachedFlush:
            try await flushMemcached(fault)
        case .redisEvict:
            try await evictUnderBurst()
        case .redisRollback:
            try await takeSnapshot()
        case .forge:
            try await publishForgeries()
        case .clockSkew:
            let offset = fault.magnitude ?? .seconds(30)
            for index in fault.targets {
                await cluster.killNode(index)
                try await cluster.startNode(index, extraArguments: ["--test-clock-offset", DurationText.format(offset)])
            }
        }
        return Injected()
    }

    func heal(_ fault: ScheduledFault) async throws {
        let nodes = cluster.nodes
        switch fault.kind {
        case .redisKill:
            try await restartRedis()
        case .redisRestartEmpty, .flushall:
            break
        case .redisPause:
            cluster.redis.resume()
        case .partitionOne, .partitionHalf, .partitionAll, .partitionDeaf, .partitionMute, .blackholeOne, .blackholeDeaf, .latency, .reset:
            for index in fault.targets {
                nodes[index].proxy?.clear()
                try cluster.network?.heal(node: index)
            }
        case .nodeKill:
            for index in fault.targets { try await cluster.startNode(index) }
        case .failover, .masterKill, .replicaLag:
            try await healSentinelTopology()
        case .slotMigrate, .shardFailover, .primaryKill:
            try await healRedisCluster()
        case .memcachedKill:
            do {
                try await memcachedServer(fault)?.restart()
            } catch {
                throw ChaosError(.setupFailed, "could not restart memcached", underlying: error)
            }
            cluster.recordRedisPID()
        case .memcachedPause:
            memcachedServer(fault)?.resume()
        case .memcachedPartition:
            memcachedProxy(fault)?.clear()
        case .memcachedFlush:
            break
        case .redisEvict:
            try await withAdminClient("lifting maxmemory") { client in
                _ = try await client.send("CONFIG", "SET", "maxmemory", "0")
                _ = try await client.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
            }
        case .redisRollback:
            try await restartFromSnapshot()
        case .forge:
            break
        case .clockSkew:
            for index in fault.targets {
                await cluster.killNode(index)
                try await cluster.startNode(index)
            }
        }
    }

    /// Sets `maxmemory` a little above what Redis holds, under `allkeys-random`, and writes
    /// filler (expiring on its own) until Redis has evicted keys or the burst ends: whatever
    /// Redis picks goes, Concord's protocol keys included.
    private func evictUnderBurst() async throws {
        try await withAdminClient("the eviction burst") { client in
            let info = try await client.send("INFO", "memory").string ?? ""
            let used = info.split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix("used_memory:") }
                .flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 4_000_000
            _ = try await client.send("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            _ = try await client.send("CONFIG", "SET", "maxmemory", RedisArgument(used + 256 * 1024))
            let filler = RedisArgument([UInt8](repeating: 0x78, count: 4096))
            for index in 0..<400 {
                _ = try? await client.send("SET", RedisArgument("chaos-filler:\(index)"), filler, "PX", "20000")
            }
        }
    }

    /// The snapshot `redis-rollback` goes back to, beside the server's own files.
    private var snapshotFile: URL { cluster.redis.directory.appendingPathComponent("rollback.rdb") }
    private var dumpFile: URL { cluster.redis.directory.appendingPathComponent("dump.rdb") }

    /// SAVE, then moves the dump aside, so that only the heal (and no other restart) loads it.
    private func takeSnapshot() async throws {
        try await withAdminClient("SAVE") { client in
            _ = try await client.send("SAVE")
        }
        let files = FileManager.default
        try? files.removeItem(at: snapshotFile)
        do {
            try files.moveItem(at: dumpFile, to: snapshotFile)
        } catch {
            throw ChaosError(.io, "cannot move the Redis snapshot aside", underlying: error)
        }
    }

    /// Restarts Redis from the snapshot: same epoch, older sequence, older log, older entries.
    private func restartFromSnapshot() async throws {
        let files = FileManager.default
        do {
            try? files.removeItem(at: dumpFile)
            try files.copyItem(at: snapshotFile, to: dumpFile)
        } catch {
            throw ChaosError(.io, "cannot put the Redis snapshot back", underlying: error)
        }
        defer { try? files.removeItem(at: dumpFile) }
        try await restartRedis()
    }

    /// Publishes forged messages for the current epoch: the next sequence numbers, extreme and
    /// plausible versions, removals of workload keys and clears, unsigned or signed with a key
    /// the nodes do not have. Straight to Redis: the adversary has PUBLISH rights, not the key.
    private func publishForgeries() async throws {
        let strangerKey = (0..<32).map { _ in UInt8.random(in: 0 ... .max) }
        let stranger = try HMACMessageAuthenticator(keys: [strangerKey])
        try await withAdminClient("the forged messages") { client in
            let head = try await client.send("HMGET", "concord:{chaos}:head", "epoch", "seq")
            guard let fields = head.array, fields.count == 2, let epoch = fields[0].string else { return }
            let sequence = UInt64(fields[1].string ?? "0") ?? 0
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let versions: [Int64] = [.max, .min, now, now + 3_600_000, -1]
            let kinds: [(MutationKind, String)] = [(.clearRemove, ""), (.remove, "k0"), (.set, "k1"), (.expire, "k2"), (.removeTag, "t")]
            for index in 0..<60 {
                let (kind, key) = kinds[index % kinds.count]
                let message = BackplaneMessage(
                    epoch: epoch, sequence: sequence + 1 + UInt64(index % 3), kind: kind, key: key,
                    version: CacheVersion(milliseconds: versions[index % versions.count], counter: .max, node: "n1"),
                    writeID: UInt64(index + 1), instance: 1
                )
                let bytes = index % 2 == 0 ? message.encoded() : message.encoded(authenticator: stranger)
                _ = try await client.send("PUBLISH", "concord:{chaos}:bp", RedisArgument(bytes))
            }
        }
    }

    /// Runs `body` with a client connected straight to Redis (not through a proxy).
    private func withAdminClient(_ what: String, _ body: @Sendable (RedisClient) async throws -> Void) async throws {
        let redis = cluster.redis
        let client = RedisClient(configuration: RedisConfiguration(host: redis.host, port: redis.port), logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await client.waitUntilConnected(timeout: .seconds(5))
                try await body(client)
            }
        } catch {
            throw ChaosError(.setupFailed, "\(what) failed", underlying: error)
        }
    }

    private func restartRedis() async throws {
        do {
            try await cluster.redis.restart()
        } catch {
            throw ChaosError(.setupFailed, "could not restart redis-server", underlying: error)
        }
        cluster.recordRedisPID()
    }

    private func memcachedServer(_ fault: ScheduledFault) -> MemcachedServer? {
        let servers = cluster.memcachedServers
        guard let index = fault.targets.first, servers.indices.contains(index) else { return nil }
        return servers[index]
    }

    private func memcachedProxy(_ fault: ScheduledFault) -> FaultProxy? {
        let proxies = cluster.memcachedProxies
        guard let index = fault.targets.first, proxies.indices.contains(index) else { return nil }
        return proxies[index]
    }

    /// `flush_all` straight to the server, not through its proxy: the fault is memcached losing its data.
    private func flushMemcached(_ fault: ScheduledFault) async throws {
        guard let server = memcachedServer(fault) else { return }
        let client = MemcachedClient(configuration: MemcachedConfiguration(servers: [.init(host: server.host, port: server.port)]), logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await client.waitUntilConnected(timeout: .seconds(5))
                try await client.flushAll(server: 0)
            }
        } catch {
            throw ChaosError(.setupFailed, "flush_all failed", underlying: error)
        }
    }

    /// How long after `start` every node answered `/ready` (backplane connected and caught up).
    func waitForEveryNodeReady(since start: ContinuousClock.Instant, timeout: Duration = .seconds(30)) async throws -> Duration {
        let clock = ContinuousClock()
        var waiting = Set(cluster.nodes.map(\.index))
        // A node may still answer ready from its old connection for a moment after the switch.
        try await Task.sleep(for: .milliseconds(100))
        let allReady = await Retry.until(backoff: .fixed(.milliseconds(20)), limit: .duration(max(timeout - (clock.now - start), .zero))) {
            for index in waiting where (try? await cluster.nodes[index].client.ready()) == true {
                waiting.remove(index)
            }
            return waiting.isEmpty
        }
        try Task.checkCancellation()
        guard allReady else {
            throw ChaosError(.setupFailed, "nodes \(waiting.sorted().map { "n\($0 + 1)" }) not ready \(timeout.shortDescription) after the failover")
        }
        return clock.now - start
    }

    /// Cuts the targets' links: in the kernel with `--network netns`, else with their proxies.
    private func cut(_ fault: ScheduledFault, _ kernelCut: NetnsNetwork.Cut, proxy: (FaultProxy) -> Void) throws {
        for index in fault.targets {
            if let network = cluster.network {
                try network.cut(node: index, kernelCut)
            } else if let link = cluster.nodes[index].proxy {
                proxy(link)
            }
        }
    }

    /// FLUSHALL straight to Redis, not through a proxy: the fault is Redis losing its data.
    private func flushAll() async throws {
        try await withAdminClient("FLUSHALL") { client in
            _ = try await client.send("FLUSHALL")
        }
    }
}
