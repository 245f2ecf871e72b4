import Foundation

/// The faults `concord chaos` can inject, named as on its command line (`--faults`).
package enum FaultKind: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// SIGKILL redis-server; the heal restarts it on the same port with an empty dataset.
    case redisKill = "redis-kill"
    /// Restart redis-server at once with an empty dataset (a restart without persistence).
    case redisRestartEmpty = "redis-restart-empty"
    /// SIGSTOP redis-server (it keeps its sockets and answers nothing); the heal is SIGCONT.
    case redisPause = "redis-pause"
    /// One node's link to Redis is down (its proxy refuses and drops connections).
    case partitionOne = "partition-one"
    /// Half the nodes' links are down.
    case partitionHalf = "partition-half"
    /// Every node's link is down while Redis itself stays up.
    case partitionAll = "partition-all"
    /// One node can send to Redis but hears nothing back (its link's downstream is down; new
    /// connections are refused).
    case partitionDeaf = "partition-deaf"
    /// One node hears Redis (pushed invalidations arrive) but what it sends is lost.
    case partitionMute = "partition-mute"
    /// One node's link swallows everything both ways, connections left open (no RST, no FIN):
    /// only timeouts can tell.
    case blackholeOne = "blackhole-one"
    /// One node's link swallows what Redis sends, connections left open, new ones accepted.
    case blackholeDeaf = "blackhole-deaf"
    /// A latency spike on every node's link.
    case latency
    /// Every node's Redis connections are reset (RST) shortly after they open, over and over.
    case reset
    /// FLUSHALL on Redis: data, sequence and epoch gone in one step.
    case flushall
    /// SIGKILL one node; the heal restarts it with the same id and port.
    case nodeKill = "node-kill"
    /// Redis at `maxmemory` under `allkeys-random` during a write burst: entries, tombstones,
    /// the head and the log may all be evicted. The heal lifts the limit.
    case redisEvict = "redis-evict"
    /// An RDB snapshot is taken; the heal restarts Redis from it, so the sequence, the log and
    /// the entries go back to that moment under the same epoch (a restore, a lagging replica).
    case redisRollback = "redis-rollback"
    /// An adversary without the backplane key publishes well-formed messages with extreme
    /// versions and the next sequence numbers; the nodes must ignore every one of them.
    case forge
    /// One node restarts with its wall clock tens of seconds ahead (`--test-clock-offset`);
    /// the heal restarts it with the right time.
    case clockSkew = "clock-skew"
    /// SIGKILL one memcached server (runs with `--l2 memcached`); the heal restarts it empty.
    case memcachedKill = "memcached-kill"
    /// SIGSTOP one memcached server; the heal is SIGCONT.
    case memcachedPause = "memcached-pause"
    /// Every node's link to one memcached server is down (its proxy refuses and drops connections).
    case memcachedPartition = "memcached-partition"
    /// `flush_all` on one memcached server: its items are gone, its connections stay.
    case memcachedFlush = "memcached-flush"
    /// Sentinel topology: a graceful `SENTINEL FAILOVER`; the heal waits until the old master
    /// is a replica of the new one, in sync.
    case failover
    /// Sentinel topology: SIGKILL the master; the Sentinels promote the replica, and the heal
    /// brings the old master back as a replica of the new one.
    case masterKill = "master-kill"
    /// Sentinel topology: replication to the replica stops (the replica is paused and its link
    /// cut), writes go on for a while, then the master is killed: the promoted replica is behind.
    case replicaLag = "replica-lag"
    /// Cluster topology: the cache's slot moves to another primary (`CLUSTER SETSLOT`
    /// IMPORTING/MIGRATING, `MIGRATE` of its keys, `SETSLOT … NODE`) while writes run.
    /// MIGRATE is synchronous, so Redis loses nothing: it is judged with no allowance.
    case slotMigrate = "slot-migrate"
    /// Cluster topology: `CLUSTER FAILOVER` on a replica of the shard that owns the cache's slot.
    case shardFailover = "shard-failover"
    /// Cluster topology: SIGKILL the primary that owns the cache's slot; the cluster promotes its
    /// replica, and the heal restarts the old primary, which rejoins as a replica.
    case primaryKill = "primary-kill"

    package var description: String { rawValue }

    /// Faults that happen in one step: the heal follows at once, nothing is held.
    package var isInstant: Bool {
        switch self {
        case .redisRestartEmpty, .flushall, .forge, .memcachedFlush: true
        default: false
        }
    }

    /// Faults on a memcached server; they apply only to runs with Memcached as L2.
    package var targetsMemcached: Bool {
        switch self {
        case .memcachedKill, .memcachedPause, .memcachedPartition, .memcachedFlush: true
        default: false
        }
    }

    /// The kinds `all` means for a run on this L2: every kind on Memcached (Redis still carries
    /// the backplane there), all but the memcached kinds on Redis.
    /// The failovers need the Sentinel topology and the cluster faults a Redis Cluster
    /// (`available(in:)`), so `all` leaves them out.
    package static func all(memcached: Bool) -> [FaultKind] {
        allCases.filter { !$0.isFailover && !$0.targetsCluster && (memcached || !$0.targetsMemcached) }
    }

    /// Failovers, in which Redis itself may lose writes it acknowledged (asynchronous
    /// replication): the checker does not hold Concord to writes acknowledged in their window.
    package var isFailover: Bool {
        switch self {
        case .failover, .masterKill, .replicaLag, .shardFailover, .primaryKill: true
        default: false
        }
    }

    /// Faults on a Redis Cluster; they need the cluster topology.
    package var targetsCluster: Bool {
        switch self {
        case .slotMigrate, .shardFailover, .primaryKill: true
        default: false
        }
    }

    /// The kinds a topology can inject: the proxy and single-server faults need the standalone
    /// topology; the failovers need Sentinel. A node crash works in both.
    package static func available(in topology: ChaosTopology, memcached: Bool = false) -> [FaultKind] {
        switch topology {
        case .standalone: all(memcached: memcached)
        case .sentinel: [.failover, .masterKill, .replicaLag, .nodeKill]
        case .cluster: [.slotMigrate, .shardFailover, .primaryKill, .nodeKill]
        }
    }

    /// The kinds `--quick --topology cluster` injects.
    package static let quickCluster: [FaultKind] = [.slotMigrate, .shardFailover, .primaryKill]

    /// The kinds `--quick --topology sentinel` injects.
    package static let quickSentinel: [FaultKind] = [.failover, .masterKill, .replicaLag]

    /// The kinds `--quick --l2 memcached` injects: a memcached server's death, data loss and hang,
    /// a backplane partition and a node crash.
    package static let quickMemcached: [FaultKind] = [.memcachedKill, .memcachedFlush, .memcachedPause, .nodeKill]

    /// Faults on Redis itself rather than on some nodes' links or processes.
    package var targetsRedis: Bool {
        switch self {
        case .redisKill, .redisRestartEmpty, .redisPause, .flushall, .redisEvict, .redisRollback, .forge,
             .failover, .masterKill, .replicaLag, .slotMigrate, .shardFailover, .primaryKill: true
        default: false
        }
    }

    /// The kinds `--quick` injects: one of each family (process death, partition, data loss,
    /// a hung server, a node crash) in little time.
    package static let quick: [FaultKind] = [.redisKill, .partitionOne, .flushall, .redisPause, .nodeKill]

    /// Parses `all` or a comma-separated list; throws `ChaosError(.invalidArgument)` naming
    /// the unknown entry and the valid ones.
    package static func parseList(_ text: String) throws -> [FaultKind] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "all" { return all(memcached: true) }
        if trimmed == "none" { return [] }
        var kinds: [FaultKind] = []
        for part in trimmed.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            if name.isEmpty { continue }
            guard let kind = FaultKind(rawValue: name) else {
                throw ChaosError(.invalidArgument, "unknown fault '\(name)'; known: all, \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        if kinds.isEmpty {
            throw ChaosError(.invalidArgument, "no fault named in '\(text)' (use all, none or a comma-separated list)")
        }
        return kinds
    }
}
