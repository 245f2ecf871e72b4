extension ConsistencyChecker {
    /// C6: once everything has healed, every node returns, for every key, at least the highest
    /// version acknowledged before the read began.
    ///
    /// The read judged is the last final read (`purpose == .final`); for a node and key without
    /// one, the last probe starting a convergence bound after the last heal stands in (earlier
    /// probes may legitimately lag; that is C5's business). A loss is a violation unless the writer
    /// of the lost version reported auto-recovery overflow, which the contract allows if counted.
    func checkLostWrites(
        _ index: HistoryIndex, recovery: [String: AutoRecoveryCounters], _ collector: inout ViolationCollector
    ) -> (PropertyResult, [LostWrite]) {
        var result = collector.start(.noLostWrites)
        var lost: [LostWrite] = []
        let settled = (index.history.faults.compactMap(\.heal).max() ?? .zero) + bounds.convergenceBound
        var unobserved = 0

        for key in index.keys.keys.sorted() where !(index.keys[key]?.byEnd.isEmpty ?? true) {
            for node in index.nodes {
                let reads = index.reads[.init(node: node, key: key)] ?? []
                // The last final read: one answered stale-flagged was read again (see
                // `Workload.Configuration.finalStaleRereads`).
                var judged = reads.filter { index.operations[$0].purpose == .final }
                    .max { index.operations[$0].start < index.operations[$1].start }.map { [$0] } ?? []
                if judged.isEmpty, let probe = reads.last(where: {
                    index.operations[$0].purpose == .probe && index.operations[$0].start >= settled
                }) {
                    judged = [probe]
                }
                if judged.isEmpty {
                    unobserved += 1
                    continue
                }
                for readIndex in judged {
                    let read = index.operations[readIndex]
                    guard let highest = index.latestAcked(key, before: read.start.nanosecondsValue) else { continue }
                    result.checked += 1
                    guard read.rank < highest.version else { continue }
                    let writer = index.operations[highest.index]
                    let explained = (recovery[writer.node]?.overflowed ?? 0) > 0
                    lost.append(
                        LostWrite(
                            node: node, key: key, expected: highest.version, observed: read.outcome.version,
                            writer: writer.node, writeID: writer.id, readID: read.id, explainedByOverflow: explained))
                    if explained {
                        result.notes.append("\(node)/\(key): v\(highest.version) from \(writer.node) lost, explained by that node's counted auto-recovery overflow")
                    } else {
                        collector.report(
                            &result, read: readIndex, expected: highest.version, evidence: [highest.index],
                            message: "\(node) returned \(Self.describe(read)) of \(key) at the end, but v\(highest.version) was acknowledged by \(writer.node) (#\(writer.id)) and no auto-recovery overflow was counted there")
                    }
                }
            }
        }
        if unobserved > 0 {
            result.notes.append("\(unobserved) node/key pairs had no final read or post-heal probe")
        }
        let totals = recovery.values.reduce(into: (queued: 0, flushed: 0, overflowed: 0)) {
            $0.queued += $1.queued
            $0.flushed += $1.flushed
            $0.overflowed += $1.overflowed
        }
        if !recovery.isEmpty {
            result.notes.append("auto-recovery: \(totals.queued) queued, \(totals.flushed) flushed, \(totals.overflowed) overflowed")
        }
        return (result, lost)
    }
}
