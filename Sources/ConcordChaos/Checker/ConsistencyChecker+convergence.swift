extension ConsistencyChecker {
    /// C5: after each heal, every node serves, for every key, at least the latest version
    /// acknowledged by the heal, within the convergence bound.
    ///
    /// Per heal, the window runs from the heal to the next fault's start (or the end of the history).
    /// For each node and key, an unflagged read in the window returning an older version shows
    /// the node not yet converged (a stale-flagged one is exempt and counted). The measured convergence is the time from the heal
    /// to the end of the first read that served the latest version after the last that did not
    /// (the harness probes densely right after each heal, so this is close to the true moment);
    /// the heal's figure is the largest over the pairs that served an older version after it
    /// (zero when none did). A pair is a violation when a read starting more than the bound
    /// after the heal still returned an older version. A pair whose only stale reads started
    /// within the bound and that was not read again in the window is inconclusive (noted, not a
    /// pass): the history cannot say whether it caught up in time. A heal while another fault is
    /// still active is skipped: convergence is owed after the last one heals.
    func checkConvergence(
        _ index: HistoryIndex, _ collector: inout ViolationCollector
    ) -> (PropertyResult, [ConvergenceMeasurement]) {
        var result = collector.start(.convergence)
        var measurements: [ConvergenceMeasurement] = []
        let faults = index.history.faults.sorted { ($0.start, $0.id) < ($1.start, $1.id) }
        let bound = bounds.convergenceBound.nanosecondsValue
        let keys = index.keys.keys.sorted()

        for fault in faults {
            guard let heal = fault.heal else {
                measurements.append(Self.skipped(fault, heal: index.history.end, reason: "never healed"))
                continue
            }
            if let other = faults.first(where: { $0.id != fault.id && $0.start <= heal && ($0.heal ?? index.history.end) > heal }) {
                measurements.append(Self.skipped(fault, heal: heal, reason: "fault #\(other.id) (\(other.kind)) still active at heal"))
                continue
            }
            let healTime = heal.nanosecondsValue
            let nextStart = faults.map(\.start).filter { $0 > heal }.min()
            let windowEnd = min(nextStart ?? index.history.end, index.history.end)
            let windowEndTime = windowEnd.nanosecondsValue

            var convergence: Int64 = 0
            var converged = true
            var observed = 0
            var unobserved = 0
            var lagging: [String] = []
            var inconclusive = 0

            for key in keys {
                guard let target = index.latestAcked(key, before: healTime, inclusive: true) else { continue }
                for node in index.nodes {
                    // A pair's reads are sorted by start: the window is one slice of them.
                    let all = index.reads[.init(node: node, key: key)] ?? []
                    let from = HistoryIndex.partitionPoint(all) { index.operations[$0].start.nanosecondsValue < healTime }
                    let upTo = HistoryIndex.partitionPoint(all) { index.operations[$0].start.nanosecondsValue < windowEndTime }
                    let window = from < upTo ? all[from..<upTo] : []
                    guard !window.isEmpty else {
                        unobserved += 1
                        continue
                    }
                    observed += 1
                    // A stale-flagged read is fail-safe saying the node could not confirm the
                    // current value in time (the origin slower than the soft timeout, L2 out of
                    // reach): exempt and counted, as C2 and C3 treat it. A node that stays stale
                    // fails C6 at its final reads.
                    result.exempt += window.count { index.operations[$0].stale && index.operations[$0].rank < target.version }
                    let reads = window.filter { !index.operations[$0].stale }
                    let lastBad = reads.last { index.operations[$0].rank < target.version }
                    let lastBadStart = lastBad.map { index.operations[$0].start.nanosecondsValue } ?? Int64.min
                    let firstGood = reads.first {
                        index.operations[$0].start.nanosecondsValue > lastBadStart && index.operations[$0].rank >= target.version
                    }
                    if let firstGood {
                        // A pair current at its first read after the heal says nothing about when.
                        guard let lastBad else { continue }
                        convergence = max(convergence, index.operations[firstGood].end.nanosecondsValue - healTime)
                        if lastBadStart - healTime > bound {
                            lagging.append("\(node)/\(key)")
                            collector.report(
                                &result, read: lastBad, expected: target.version, evidence: [target.index], faultID: fault.id,
                                message: "\(node) still served \(Self.describe(index.operations[lastBad])) of \(key) \(Duration.nanoseconds(lastBadStart - healTime).shortDescription) after fault #\(fault.id) (\(fault.kind)) healed; v\(target.version) was acknowledged by then (bound \(bounds.convergenceBound.shortDescription))")
                        }
                    } else if let lastBad {
                        converged = false
                        if lastBadStart - healTime > bound {
                            lagging.append("\(node)/\(key)")
                            collector.report(
                                &result, read: lastBad, expected: target.version, evidence: [target.index], faultID: fault.id,
                                message: "\(node) never served v\(target.version) of \(key) in the \(Duration.nanoseconds(windowEndTime - healTime).shortDescription) after fault #\(fault.id) (\(fault.kind)) healed; last read returned \(Self.describe(index.operations[lastBad]))")
                        } else {
                            // Stale only within the bound, and not read again: whether it caught
                            // up in time is not in the history.
                            inconclusive += 1
                        }
                    }
                }
            }
            result.checked += observed
            if inconclusive > 0 {
                result.notes.append("fault #\(fault.id) (\(fault.kind)): \(inconclusive) node/key pairs were last read stale within the bound and not read again before the window ended, \(Duration.nanoseconds(windowEndTime - healTime).shortDescription) after the heal: inconclusive")
            }
            if unobserved > 0 {
                result.notes.append("fault #\(fault.id) (\(fault.kind)): \(unobserved) node/key pairs had no successful read after the heal (no probes?)")
            }
            let measured = converged ? Duration.nanoseconds(convergence) : nil
            measurements.append(
                ConvergenceMeasurement(
                    faultID: fault.id, kind: fault.kind, heal: heal, windowEnd: windowEnd,
                    convergence: measured, converged: converged,
                    withinBound: lagging.isEmpty,
                    observedPairs: observed, unobservedPairs: unobserved, laggingPairs: lagging, skipped: nil))
        }
        return (result, measurements)
    }

    private static func skipped(_ fault: Fault, heal: Duration, reason: String) -> ConvergenceMeasurement {
        ConvergenceMeasurement(
            faultID: fault.id, kind: fault.kind, heal: heal, windowEnd: heal, convergence: nil, converged: false,
            withinBound: true, observedPairs: 0, unobservedPairs: 0, laggingPairs: [], skipped: reason)
    }
}
