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

    // MARK: Sentinel faults

    /// The old master takes writes until the Sentinels demote it, so the loss window lasts
    /// until every node has moved to the new master (and answers ready there).
    private func gracefulFailover() async throws -> Injected {
        let topology = cluster.sentinel
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let master = try await topology.failover()
            let promoted = clock.now - start
            let ready = try await waitForEveryNodeReady(since: start)
            return Injected(
                note: "port \(topology.clientPort(of: master)) promoted after \(promoted.shortDescription); every node ready after \(ready.shortDescription)",
                lossWindowEnd: clock.now)
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.setupFailed, "SENTINEL FAILOVER did not complete", underlying: error)
        }
    }

    /// SIGKILLs the master. With `afterCuttingReplication`, first pauses the replica and cuts
    /// its link, and lets writes land on the master alone for a while, so the replica that the
    /// Sentinels promote lacks them.
    /// The loss window ends with the master's death: later writes cannot reach it, and are
    /// queued by the nodes until the new master answers.
    private func killMaster(afterCuttingReplication: Bool) async throws -> Injected {
        let topology = cluster.sentinel
        let clock = ContinuousClock()
        do {
            let master = try await topology.master()
            var lagged: [RedisServer] = []
            if afterCuttingReplication {
                lagged = topology.servers.filter { $0 !== master && $0.processIdentifier != nil }
                for replica in lagged { replica.pause() }
                _ = try await topology.cli(master, ["CLIENT", "KILL", "TYPE", "replica"])
                // Shorter than the Sentinels' down-after time, so the paused replica is still
                // a candidate when the master is found down.
                try await Task.sleep(for: .milliseconds(600))
            }
            let killedAt = clock.now
            master.kill()
            for replica in lagged { replica.resume() }
            cluster.recordRedisPID()
            let newMaster = try await topology.waitForNewMaster(replacing: master)
            let promoted = clock.now - killedAt
            let ready = try await waitForEveryNodeReady(since: killedAt)
            return Injected(
                note: "master killed; port \(topology.clientPort(of: newMaster)) promoted after \(promoted.shortDescription); every node ready (connected to it and caught up) \(ready.shortDescription) after the kill",
                lossWindowEnd: killedAt)
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.setupFailed, "the master kill did not lead to a failover", underlying: error)
        }
    }

    /// Brings a killed server back as a replica of the current master, then waits until the
    /// topology is whole: one master, every other server its replica with the link up.
    private func healSentinelTopology() async throws {
        let topology = cluster.sentinel
        do {
            for server in topology.servers where server.processIdentifier == nil {
                try await topology.restartAsReplica(server)
            }
            cluster.recordRedisPID()
            try await topology.waitUntilWhole()
        } catch {
            throw ChaosError(.setupFailed, "the Sentinel topology did not heal", underlying: error)
        }
    }

    // MARK: Cluster faults

    /// The slot of the chaos cache's keys (`--cache-name chaos`).
    private var cacheSlot: Int { ClusterTopology.slot(ofCache: "chaos") }

    /// Moves the cache's slot to the next primary while the workload writes. Redis answers ASK
    /// for moved keys during the move and MOVED after it, and ends the nodes' sharded
    /// subscriptions; nothing is lost (MIGRATE is synchronous), so there is no loss window.
    private func migrateCacheSlot() async throws -> Injected {
        let topology = cluster.redisCluster
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let source = try await topology.owner(ofSlot: cacheSlot)
            let destination = try await topology.migrateSlot(cacheSlot)
            let moved = clock.now - start
            let ready = try await waitForEveryNodeReady(since: start)
            return Injected(
                note: "slot \(cacheSlot) moved from port \(source.port) to port \(destination.port) in \(moved.shortDescription); every node ready after \(ready.shortDescription)")
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.setupFailed, "the slot migration did not complete", underlying: error)
        }
    }

    /// `CLUSTER FAILOVER` on the owning shard's replica. As with `SENTINEL FAILOVER`, the old
    /// primary may take writes until it learns it was demoted, so the loss window lasts until
    /// every node is ready on the new primary.
    private func failOverCacheShard() async throws -> Injected {
        let topology = cluster.redisCluster
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let promoted = try await topology.failover(shardOf: cacheSlot)
            let took = clock.now - start
            let ready = try await waitForEveryNodeReady(since: start)
            return Injected(
                note: "port \(promoted.port) took over slot \(cacheSlot) after \(took.shortDescription); every node ready after \(ready.shortDescription)",
                lossWindowEnd: clock.now)
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.setupFailed, "CLUSTER FAILOVER did not complete", underlying: error)
        }
    }

    /// SIGKILLs the primary that owns the cache's slot; the cluster promotes its replica after
    /// `cluster-node-timeout`. The loss window ends with the primary's death.
    private func killCachePrimary() async throws -> Injected {
        let topology = cluster.redisCluster
        let clock = ContinuousClock()
        let killedAt = clock.now
        do {
            let killed = try await topology.killPrimary(ofSlot: cacheSlot)
            cluster.recordRedisPID()
            let promoted = clock.now - killedAt
            let owner = try await topology.owner(ofSlot: cacheSlot)
            let ready = try await waitForEveryNodeReady(since: killedAt)
            return Injected(
                note: "primary on port \(killed.port) killed; port \(owner.port) took over after \(promoted.shortDescription); every node ready \(ready.shortDescription) after the kill",
                lossWindowEnd: killedAt)
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.setupFailed, "the primary kill did not lead to a failover", underlying: error)
        }
    }

    /// Restarts a killed node (it rejoins as a replica) and waits until the cluster is whole.
    private func healRedisCluster() async throws {
        let topology = cluster.redisCluster
        do {
            for server in topology.servers where server.processIdentifier == nil {
                try await server.restart()
            }
            cluster.recordRedisPID()
            try await topology.waitUntilWhole()
        } catch {
            throw ChaosError(.setupFailed, "the Redis Cluster did not heal", underlying: error)
        }
    }

    /// How long after `start` every node answered `/ready` (backplane connected and caught up).
    private func waitForEveryNodeReady(since start: ContinuousClock.Instant, timeout: Duration = .seconds(30)) async throws -> Duration {
        let clock = ContinuousClock()
        var waiting = Set(cluster.nodes.map(\.index))
        // A node may still answer ready from its old connection for a moment after the switch.
        try await Task.sleep(for: .milliseconds(100))
        while !waiting.isEmpty {
            for index in waiting where (try? await cluster.nodes[index].client.ready()) == true {
                waiting.remove(index)
            }
            if waiting.isEmpty { break }
            guard clock.now - start < timeout else {
                throw ChaosError(.setupFailed, "nodes \(waiting.sorted().map { "n\($0 + 1)" }) not ready \(timeout.shortDescription) after the failover")
            }
            try await Task.sleep(for: .milliseconds(20))
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
