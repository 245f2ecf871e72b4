@_spi(ConcordBackend) import Concord
import ConcordProcess
import ConcordRedis
import Foundation

/// The faults of the Redis Cluster topology: the cache slot's migration, its shard's failover,
/// its primary's kill, and the heal that makes the cluster whole again.
extension FaultInjector {
    /// The slot of the chaos cache's keys (`--cache-name chaos`).
    var cacheSlot: Int { ClusterTopology.slot(ofCache: "chaos") }

    /// Moves the cache's slot to the next primary while the workload writes. Redis answers ASK
    /// for moved keys during the move and MOVED after it, and ends the nodes' sharded
    /// subscriptions; nothing is lost (MIGRATE is synchronous), so there is no loss window.
    func migrateCacheSlot() async throws -> Injected {
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
    func failOverCacheShard() async throws -> Injected {
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
    func killCachePrimary() async throws -> Injected {
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
    func healRedisCluster() async throws {
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
}
