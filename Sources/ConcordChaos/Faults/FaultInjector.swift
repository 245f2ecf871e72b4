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

    func inject(_ fault: ScheduledFault) async throws {
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
        case .memcachedKill:
            memcachedServer(fault)?.kill()
        case .memcachedPause:
            memcachedServer(fault)?.pause()
        case .memcachedPartition:
            memcachedProxy(fault)?.set(.down)
        case .memcachedFlush:
            try await flushMemcached(fault)
        }
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
