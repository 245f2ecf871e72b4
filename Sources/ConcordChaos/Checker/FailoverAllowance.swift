/// What Redis itself may lose in a failover, taken out of what the contract demands.
///
/// Replication is asynchronous: a write the master acknowledged may not have reached the
/// replica the Sentinels promote, and a graceful failover leaves the old master taking writes
/// until it learns it was demoted. Those losses are Redis's (as in Jepsen's analysis of
/// Sentinel), not Concord's. So for each failover fault, a mutation acknowledged between Δ
/// before the fault began and the end of its loss window (the old master's death, or the
/// moment every node had left it; the heal when the harness recorded none) counts as indeterminate (it may or may not have
/// survived), and a read that returned such a version is exempt, like a flagged stale read:
/// a node that served it and later, after detecting the rollback, serves the older surviving
/// version has not broken monotonic reads. Every other write stays owed, before and after.
///
/// `redis-rollback` loses the same way, by design: Redis restarts from the snapshot taken when
/// the fault began, so what it acknowledged in between is gone. Its loss window ends at the heal.
struct FailoverAllowance: Sendable {
    /// Fault kinds (`Fault.kind`) in which Redis loses acknowledged writes: failovers and rollbacks.
    static let failoverKinds: Set<String> = Set(FaultKind.allCases.filter { $0.isFailover || $0 == .redisRollback }.map(\.rawValue))

    /// How long before a failover a write may still be unreplicated: Δ.
    let margin: Duration

    /// `history` with the failover windows' mutations made indeterminate and the reads of their
    /// versions exempt, and how many of each were changed.
    func apply(to history: History) -> (history: History, writes: Int, reads: Int) {
        let windows = history.faults.filter { Self.failoverKinds.contains($0.kind) }.map { fault in
            (start: fault.start - margin, end: fault.lossWindowEnd ?? fault.heal ?? history.end)
        }
        guard !windows.isEmpty else { return (history, 0, 0) }
        var changed = history
        var indeterminate: [String: Set<Int64>] = [:]
        var writes = 0
        for position in changed.operations.indices {
            let operation = changed.operations[position]
            guard operation.kind.isMutation, let version = operation.outcome.version,
                windows.contains(where: { $0.start <= operation.end && operation.end <= $0.end })
            else { continue }
            indeterminate[operation.key, default: []].insert(version)
            changed.operations[position].outcome = .failed("acknowledged during a failover or rollback; Redis may have lost it")
            writes += 1
        }
        var reads = 0
        for position in changed.operations.indices {
            let operation = changed.operations[position]
            guard operation.kind == .read, !operation.stale, let version = operation.outcome.version,
                indeterminate[operation.key]?.contains(version) == true
            else { continue }
            changed.operations[position].stale = true
            reads += 1
        }
        return (changed, writes, reads)
    }
}
