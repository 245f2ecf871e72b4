import Foundation

/// The faults `concord chaos` can inject, named as on its command line (`--faults`).
public enum FaultKind: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
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
    /// A latency spike on every node's link.
    case latency
    /// Every node's Redis connections are reset (RST) shortly after they open, over and over.
    case reset
    /// FLUSHALL on Redis: data, sequence and epoch gone in one step.
    case flushall
    /// SIGKILL one node; the heal restarts it with the same id and port.
    case nodeKill = "node-kill"
    /// Sentinel topology: a graceful `SENTINEL FAILOVER`; the heal waits until the old master
    /// is a replica of the new one, in sync.
    case failover
    /// Sentinel topology: SIGKILL the master; the Sentinels promote the replica, and the heal
    /// brings the old master back as a replica of the new one.
    case masterKill = "master-kill"
    /// Sentinel topology: replication to the replica stops (the replica is paused and its link
    /// cut), writes go on for a while, then the master is killed: the promoted replica is behind.
    case replicaLag = "replica-lag"

    public var description: String { rawValue }

    /// Faults that happen in one step: the heal follows at once, nothing is held.
    public var isInstant: Bool {
        switch self {
        case .redisRestartEmpty, .flushall: true
        default: false
        }
    }

    /// Faults on Redis itself rather than on some nodes' links or processes.
    public var targetsRedis: Bool {
        switch self {
        case .redisKill, .redisRestartEmpty, .redisPause, .flushall, .failover, .masterKill, .replicaLag: true
        default: false
        }
    }

    /// Failovers, in which Redis itself may lose writes it acknowledged (asynchronous
    /// replication): the checker does not hold Concord to writes acknowledged in their window.
    public var isFailover: Bool {
        switch self {
        case .failover, .masterKill, .replicaLag: true
        default: false
        }
    }

    /// The kinds a topology can inject: the proxy and single-server faults need the standalone
    /// topology; the failovers need Sentinel. A node crash works in both.
    public static func available(in topology: ChaosTopology) -> [FaultKind] {
        switch topology {
        case .standalone: allCases.filter { !$0.isFailover }
        case .sentinel: [.failover, .masterKill, .replicaLag, .nodeKill]
        }
    }

    /// The kinds `--quick --topology sentinel` injects.
    public static let quickSentinel: [FaultKind] = [.failover, .masterKill, .replicaLag]

    /// The kinds `--quick` injects: one of each family (process death, partition, data loss,
    /// a hung server, a node crash) in little time.
    public static let quick: [FaultKind] = [.redisKill, .partitionOne, .flushall, .redisPause, .nodeKill]

    /// Parses `all` (every kind `topology` can inject) or a comma-separated list; throws `ChaosError(.invalidArgument)` naming
    /// the unknown entry and the valid ones.
    public static func parseList(_ text: String, topology: ChaosTopology = .standalone) throws -> [FaultKind] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "all" { return available(in: topology) }
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
