import ConcordMemcached
import ConcordProcess
import ConcordRedis
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
        case .memcachedKill:
            memcachedServer(fault)?.kill()
        case .memcachedPause:
            memcachedServer(fault)?.pause()
        case .memcachedPartition:
            memcachedProxy(fault)?.set(.down)
        case .memcachedFlush:
            try await flushMemcached(fault)
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
        }
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

    private func restartRedis() async throws {
        do {
            try await cluster.redis.restart()
        } catch {
            throw ChaosError(.setupFailed, "could not restart redis-server", underlying: error)
        }
        cluster.recordRedisPID()
    }

    /// FLUSHALL straight to Redis, not through a proxy: the fault is Redis losing its data.
    private func flushAll() async throws {
        let redis = cluster.redis
        let client = RedisClient(configuration: RedisConfiguration(host: redis.host, port: redis.port), logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await client.waitUntilConnected(timeout: .seconds(5))
                _ = try await client.send("FLUSHALL")
            }
        } catch {
            throw ChaosError(.setupFailed, "FLUSHALL failed", underlying: error)
        }
    }
}
