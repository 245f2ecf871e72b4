@_spi(ConcordBackend) import Concord
import ConcordProcess
import ConcordRedis
import Foundation

/// The faults of the Sentinel topology: a graceful failover, a master kill (optionally after
/// cutting replication), and the heal that makes the topology whole again.
extension FaultInjector {
    /// The old master takes writes until the Sentinels demote it, so the loss window lasts
    /// until every node has moved to the new master (and answers ready there).
    func gracefulFailover() async throws -> Injected {
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
    func killMaster(afterCuttingReplication: Bool) async throws -> Injected {
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
    func healSentinelTopology() async throws {
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
}
