/// Checks a recorded history against the consistency contract (C1–C6) and says which reads
/// broke which promise, with the operations around them.
///
/// Versions are per-key integers that only grow, so every key is a register whose reads can be
/// compared with the writes acknowledged before them. An operation's ack is its end time; a read
/// only owes a write that ended before the read started, so overlapping reads may return either.
package struct ConsistencyChecker: Sendable {
    package var bounds: ContractBounds
    /// How many operations on the key before the blamed one a violation shows (half as many after).
    package var windowRadius: Int
    /// Violations kept in detail per property; all are counted.
    package var maxDetailedViolations: Int
    /// Which nodes a fault's window covers: the nodes it touched (the contract), or every node
    /// (the looser rule of earlier checkers, kept to compare coverage on a saved history).
    package var windowScope: FaultWindowScope = .perNode

    package init(bounds: ContractBounds = .init(), windowRadius: Int = 6, maxDetailedViolations: Int = 100) {
        self.bounds = bounds
        self.windowRadius = windowRadius
        self.maxDetailedViolations = maxDetailedViolations
    }

    /// Checks `history`. `recovery` holds each node's auto-recovery counters from `GET /v1/stats`
    /// at the end of the run, used to tell counted overflow from silent loss (C6).
    package func check(_ history: History, recovery: [String: AutoRecoveryCounters] = [:]) -> CheckResult {
        let allowance = FailoverAllowance(margin: bounds.delta).apply(to: history)
        let index = HistoryIndex(allowance.history, bounds: bounds, windowScope: windowScope)
        var collector = ViolationCollector(index: index, radius: windowRadius, limit: maxDetailedViolations)

        let counts = Self.count(index.operations)
        let readYourWrites = checkReadYourWrites(index, &collector)
        let monotonic = checkMonotonicReads(index, &collector)
        let (healthy, cutOff, staleness) = checkStaleness(index, &collector)
        let (convergence, measurements) = checkConvergence(index, &collector)
        var (lost, lostWrites) = checkLostWrites(index, recovery: recovery, &collector)
        if allowance.writes > 0 {
            lost.notes.append(
                "failovers: \(allowance.writes) mutations acknowledged from Δ before a failover to the end of its loss window are not owed (Redis may lose them; counted as errors), and \(allowance.reads) reads of their versions are exempt (counted as stale-flagged)")
        }

        var total = AutoRecoveryCounters()
        for counters in recovery.values {
            total.queued += counters.queued
            total.flushed += counters.flushed
            total.overflowed += counters.overflowed
        }

        return CheckResult(
            bounds: bounds,
            properties: [readYourWrites, monotonic, healthy, cutOff, convergence, lost].map(ViolationCollector.sorted),
            counts: counts,
            worstStaleness: staleness.worst,
            worstStalenessReadID: staleness.worstReadID,
            stalenessByNode: index.nodes.map { node in
                let figure = staleness.byNode[node]
                return StalenessFigure(node: node, worst: figure?.worst ?? .zero, readID: figure?.readID)
            },
            convergence: measurements,
            lostWrites: lostWrites,
            recovery: total,
            violatingOperationIDs: collector.blamed,
            coverage: StalenessCoverage(
                reads: index.operations.reduce(0) { $0 + ($1.kind == .read && $1.outcome.isOK ? 1 : 0) },
                judgedHealthy: healthy.checked, judgedCutOff: cutOff.checked)
        )
    }

    private static func count(_ operations: [Operation]) -> OperationCounts {
        var counts = OperationCounts()
        for operation in operations {
            switch operation.kind {
            case .read: counts.reads += 1
            case .write:
                counts.writes += 1
                if operation.background { counts.backgroundWrites += 1 }
            case .delete: counts.deletes += 1
            case .invalidate: counts.invalidates += 1
            case .removeTag: counts.tagRemovals += 1
            case .clear: counts.clears += 1
            }
            switch operation.purpose {
            case .workload: break
            case .probe: counts.probes += 1
            case .final: counts.finalReads += 1
            }
            switch operation.outcome {
            case .failed:
                counts.errors += 1
            case .ok(let version):
                if operation.kind == .read {
                    if operation.stale { counts.staleReads += 1 }
                    if version == nil { counts.notFoundReads += 1 }
                }
            }
        }
        return counts
    }

    // MARK: C1

    /// C1: a non-stale read on node N that starts after N's own acknowledged write, delete or
    /// invalidation of version v returns at least v.
    func checkReadYourWrites(_ index: HistoryIndex, _ collector: inout ViolationCollector) -> PropertyResult {
        var result = collector.start(.readYourWrites)
        for pair in index.readPairs {
            guard let own = index.ownAcks[pair], let reads = index.reads[pair] else { continue }
            for readIndex in reads {
                let read = index.operations[readIndex]
                guard let floor = HistoryIndex.latest(in: own, before: read.start.nanosecondsValue) else { continue }
                if read.stale {
                    result.exempt += 1
                    continue
                }
                result.checked += 1
                if read.rank < floor.version {
                    collector.report(
                        &result, read: readIndex, expected: floor.version, evidence: [floor.index],
                        message: "\(read.node) read \(Self.describe(read)) of \(read.key) after its own write of v\(floor.version) was acknowledged")
                }
            }
        }
        return result
    }

    // MARK: C2

    /// C2: for two non-stale reads on the same node and key where the second starts after the
    /// first ended, the second returns a version at least as new. Stale-flagged reads are exempt.
    func checkMonotonicReads(_ index: HistoryIndex, _ collector: inout ViolationCollector) -> PropertyResult {
        var result = collector.start(.monotonicReads)
        for pair in index.readPairs {
            let reads = index.reads[pair] ?? []
            let fresh = reads.filter { !index.operations[$0].stale }
            result.exempt += reads.count - fresh.count
            guard fresh.count > 1 else { continue }
            // Reads by end time with the running maximum version, to find "everything that ended before r2 started".
            let byEnd = fresh.sorted { index.operations[$0].end < index.operations[$1].end }
            var best: [Int] = []
            best.reserveCapacity(byEnd.count)
            for position in byEnd.indices {
                if let previous = best.last, index.operations[byEnd[previous]].rank >= index.operations[byEnd[position]].rank {
                    best.append(previous)
                } else {
                    best.append(position)
                }
            }
            for readIndex in fresh {
                let read = index.operations[readIndex]
                let ended = HistoryIndex.partitionPoint(byEnd) { index.operations[$0].end < read.start }
                guard ended > 0 else { continue }
                result.checked += 1
                let earlierIndex = byEnd[best[ended - 1]]
                let earlier = index.operations[earlierIndex]
                if read.rank < earlier.rank {
                    collector.report(
                        &result, read: readIndex, expected: earlier.outcome.version ?? Int64.min, evidence: [earlierIndex],
                        message: "\(read.node) read \(Self.describe(read)) of \(read.key) after it had already returned \(Self.describe(earlier)) (#\(earlier.id))")
                }
            }
        }
        return result
    }

    // MARK: C3, C4 and staleness

    struct StalenessSummary {
        var worst: Duration = .zero
        var worstReadID: Int?
        var byNode: [String: (worst: Duration, readID: Int)] = [:]
    }

    /// C3: a non-stale read outside the windows ([start, heal + convergence bound]) of the faults
    /// that touched its node returns at least every version whose healthy deadline passed before
    /// it started: the ack + Δ, or, for a write acknowledged during a fault that touched its
    /// writer (it may sit in the writer's auto-recovery queue), that fault's heal + the
    /// convergence bound. So a node a fault did not touch is held to Δ while another is cut off.
    /// C4: a non-stale read touching a window of a fault on its node never returns a version
    /// superseded by an acked write more than maxDisconnectedStaleness + Δ before the read
    /// started. A write acknowledged during a fault that touched its node counts from the heal
    /// for the nodes the fault left connected, and for every node once healed
    /// (`HistoryIndex.owedFrom`): its node queued it (auto-recovery), so it reaches Redis only
    /// with the flush after the heal, and C5 owes it within the convergence bound from there.
    func checkStaleness(
        _ index: HistoryIndex, _ collector: inout ViolationCollector
    ) -> (PropertyResult, PropertyResult, StalenessSummary) {
        var healthy = collector.start(.boundedStalenessHealthy)
        var cutOff = collector.start(.boundedStalenessCutOff)
        var summary = StalenessSummary()
        let cutOffAllowance = (bounds.maxDisconnectedStaleness + bounds.delta).nanosecondsValue

        for (position, read) in index.operations.enumerated() where read.kind == .read && read.outcome.isOK {
            let start = read.start.nanosecondsValue
            let inFault = index.overlapsFault(node: read.node, start: start, end: read.end.nanosecondsValue)
            if read.stale {
                if inFault { cutOff.exempt += 1 } else { healthy.exempt += 1 }
                continue
            }
            let superseding = index.firstOwedSuperseding(read.key, above: read.rank, reader: read.node, at: start)
            if let superseding, superseding.owedFrom < start {
                let staleness = Duration.nanoseconds(start - superseding.owedFrom)
                if staleness > summary.worst {
                    summary.worst = staleness
                    summary.worstReadID = read.id
                }
                if staleness > summary.byNode[read.node]?.worst ?? .zero {
                    summary.byNode[read.node] = (staleness, read.id)
                }
            }

            if inFault {
                cutOff.checked += 1
                if let superseding, start - superseding.owedFrom > cutOffAllowance {
                    let version = index.operations[superseding.ack.index].outcome.version ?? 0
                    let since = superseding.owedFrom == superseding.ack.end
                        ? "after v\(version) was acknowledged"
                        : "after the heal that made v\(version), acknowledged during the fault, owed"
                    collector.report(
                        &cutOff, read: position, expected: version, evidence: [superseding.ack.index],
                        message: "\(read.node) served \(Self.describe(read)) of \(read.key) during a fault, \(Duration.nanoseconds(start - superseding.owedFrom).shortDescription) \(since) (allowed \(Duration.nanoseconds(cutOffAllowance).shortDescription))")
                }
            } else if let floor = index.healthyFloor(read.key, at: start) {
                healthy.checked += 1
                if read.rank < floor.version {
                    let hidden = floor.healthyDeadline > floor.end + bounds.delta.nanosecondsValue
                    let owed = hidden
                        ? "\(Duration.nanoseconds(start - floor.healthyDeadline).shortDescription) past heal + convergence bound for v\(floor.version), acknowledged during a fault on its writer"
                        : "\(Duration.nanoseconds(start - floor.end).shortDescription) after v\(floor.version) was acknowledged (Δ = \(bounds.delta.shortDescription))"
                    collector.report(
                        &healthy, read: position, expected: floor.version, evidence: [floor.index],
                        message: "\(read.node) served \(Self.describe(read)) of \(read.key) while no fault touched it, \(owed)")
                }
            }
        }
        return (healthy, cutOff, summary)
    }

    static func describe(_ operation: Operation) -> String {
        switch operation.outcome {
        case .ok(let version?): "v\(version)"
        case .ok(nil): "not found"
        case .failed(let message): "an error (\(message))"
        }
    }
}

/// Gathers violations: counts all, keeps the first few in detail with their history windows.
struct ViolationCollector {
    let index: HistoryIndex
    let radius: Int
    let limit: Int
    private(set) var blamed: Set<Int> = []

    init(index: HistoryIndex, radius: Int, limit: Int) {
        self.index = index
        self.radius = radius
        self.limit = limit
    }

    func start(_ property: ContractProperty) -> PropertyResult {
        PropertyResult(property: property, checked: 0, exempt: 0, violationCount: 0, violations: [], notes: [])
    }

    mutating func report(
        _ result: inout PropertyResult, read: Int, expected: Int64, evidence: [Int], faultID: Int? = nil, message: String
    ) {
        result.violationCount += 1
        blamed.insert(index.operations[read].id)
        guard result.violations.count < limit else { return }
        result.violations.append(
            Violation(
                property: result.property,
                operation: index.operations[read],
                expectedAtLeast: expected,
                evidence: evidence.map { index.operations[$0] },
                window: index.window(around: read, radius: radius, including: evidence),
                faultID: faultID,
                message: message))
    }

    /// Keeps detailed violations in time order however the dictionary walk found them.
    static func sorted(_ result: PropertyResult) -> PropertyResult {
        var result = result
        result.violations.sort { ($0.operation.start, $0.operation.id) < ($1.operation.start, $1.operation.id) }
        return result
    }
}
