/// One broken promise: the operation blamed, what it should have returned, and its neighbourhood.
package struct Violation: Sendable, Hashable, Codable {
    package var property: ContractProperty
    /// The read that returned too old a version.
    package var operation: Operation
    /// The smallest version the contract required.
    package var expectedAtLeast: Int64
    /// The operations that set the requirement (the write acknowledged, the earlier read...).
    package var evidence: [Operation]
    /// Operations on the same key around the blamed one, ordered by start.
    package var window: [Operation]
    /// The fault whose heal this concerns (C5), if any.
    package var faultID: Int?
    package var message: String
}

/// The verdict on one property.
package struct PropertyResult: Sendable, Hashable, Codable {
    package var property: ContractProperty
    /// Reads the property applied to.
    package var checked: Int
    /// Stale-flagged reads the property exempts (counted, not hidden).
    package var exempt: Int
    /// Every violation found.
    package var violationCount: Int
    /// The first violations in detail (bounded, so a badly broken run still writes a readable report).
    package var violations: [Violation]
    /// Things worth knowing that are not violations (inconclusive windows, overflow-explained losses).
    package var notes: [String]

    package var passed: Bool { violationCount == 0 }
}

/// How many operations of each sort the history holds.
package struct OperationCounts: Sendable, Hashable, Codable {
    package var reads = 0
    package var writes = 0
    package var deletes = 0
    package var invalidates = 0
    /// Keys superseded by DELETE /v1/tags/{tag} (one per key of the tag).
    package var tagRemovals = 0
    package var clears = 0
    /// PUTs made with `?background=true`.
    package var backgroundWrites = 0
    /// Operations of any kind that failed (not violations).
    package var errors = 0
    /// Successful reads flagged `Concord-Stale: true`.
    package var staleReads = 0
    /// Successful reads that found nothing.
    package var notFoundReads = 0
    package var probes = 0
    package var finalReads = 0

    package init() {}
}

/// How long the cluster took to serve the latest versions again after one heal (C5).
package struct ConvergenceMeasurement: Sendable, Hashable, Codable {
    package var faultID: Int
    package var kind: String
    package var heal: Duration
    /// Where the observation window stops: the next fault's start or the end of the history.
    package var windowEnd: Duration
    /// From the heal to the end of the first read serving the heal's latest acked version after
    /// the last read that served an older one, the largest over node/key pairs (zero if no read
    /// after the heal served an older version); nil when skipped or when some node never caught up.
    package var convergence: Duration?
    /// Every observed (node, key) pair reached the target version within the window.
    package var converged: Bool
    package var withinBound: Bool
    package var observedPairs: Int
    package var unobservedPairs: Int
    /// "node/key" pairs that lagged past the bound or never caught up.
    package var laggingPairs: [String]
    /// Why the heal was not measured, if it was not.
    package var skipped: String?

    private enum CodingKeys: String, CodingKey {
        case faultID, kind, healMs, windowEndMs, convergenceMs, converged, withinBound, observedPairs, unobservedPairs, laggingPairs, skipped
    }

    package init(
        faultID: Int, kind: String, heal: Duration, windowEnd: Duration, convergence: Duration?, converged: Bool,
        withinBound: Bool, observedPairs: Int, unobservedPairs: Int, laggingPairs: [String], skipped: String?
    ) {
        self.faultID = faultID
        self.kind = kind
        self.heal = heal
        self.windowEnd = windowEnd
        self.convergence = convergence
        self.converged = converged
        self.withinBound = withinBound
        self.observedPairs = observedPairs
        self.unobservedPairs = unobservedPairs
        self.laggingPairs = laggingPairs
        self.skipped = skipped
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        faultID = try container.decode(Int.self, forKey: .faultID)
        kind = try container.decode(String.self, forKey: .kind)
        heal = try container.decodeMilliseconds(forKey: .healMs)
        windowEnd = try container.decodeMilliseconds(forKey: .windowEndMs)
        convergence = try container.decodeMillisecondsIfPresent(forKey: .convergenceMs)
        converged = try container.decode(Bool.self, forKey: .converged)
        withinBound = try container.decode(Bool.self, forKey: .withinBound)
        observedPairs = try container.decode(Int.self, forKey: .observedPairs)
        unobservedPairs = try container.decode(Int.self, forKey: .unobservedPairs)
        laggingPairs = try container.decode([String].self, forKey: .laggingPairs)
        skipped = try container.decodeIfPresent(String.self, forKey: .skipped)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(faultID, forKey: .faultID)
        try container.encode(kind, forKey: .kind)
        try container.encodeMilliseconds(heal, forKey: .healMs)
        try container.encodeMilliseconds(windowEnd, forKey: .windowEndMs)
        try container.encodeMillisecondsIfPresent(convergence, forKey: .convergenceMs)
        try container.encode(converged, forKey: .converged)
        try container.encode(withinBound, forKey: .withinBound)
        try container.encode(observedPairs, forKey: .observedPairs)
        try container.encode(unobservedPairs, forKey: .unobservedPairs)
        try container.encode(laggingPairs, forKey: .laggingPairs)
        try container.encodeIfPresent(skipped, forKey: .skipped)
    }
}

/// A key whose final reads came back older than its highest acknowledged version (C6).
package struct LostWrite: Sendable, Hashable, Codable {
    package var node: String
    package var key: String
    package var expected: Int64
    package var observed: Int64?
    /// The node that acknowledged the lost version.
    package var writer: String
    package var writeID: Int
    package var readID: Int
    /// The writer's auto-recovery queue reported overflow, which the contract allows.
    package var explainedByOverflow: Bool
}

/// The largest staleness seen on one node.
package struct StalenessFigure: Sendable, Hashable, Codable {
    package var node: String
    package var worst: Duration
    /// The read that was that stale.
    package var readID: Int?

    private enum CodingKeys: String, CodingKey { case node, worstMs, readID }

    package init(node: String, worst: Duration, readID: Int?) {
        self.node = node
        self.worst = worst
        self.readID = readID
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        node = try container.decode(String.self, forKey: .node)
        worst = try container.decodeMilliseconds(forKey: .worstMs)
        readID = try container.decodeIfPresent(Int.self, forKey: .readID)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(node, forKey: .node)
        try container.encodeMilliseconds(worst, forKey: .worstMs)
        try container.encodeIfPresent(readID, forKey: .readID)
    }
}

/// Everything the checker concluded about one history.
package struct CheckResult: Sendable, Hashable {
    package var bounds: ContractBounds
    /// C1 to C6, in order.
    package var properties: [PropertyResult]
    package var counts: OperationCounts
    /// Among unflagged reads: read start − ack of the first acked write that superseded the
    /// version returned. Zero when every read was current.
    package var worstStaleness: Duration
    package var worstStalenessReadID: Int?
    /// Per node, in the history's node order.
    package var stalenessByNode: [StalenessFigure]
    package var convergence: [ConvergenceMeasurement]
    package var lostWrites: [LostWrite]
    /// Auto-recovery counters as given, summed over nodes.
    package var recovery: AutoRecoveryCounters
    /// Every blamed operation id, including those beyond the detailed lists (for the timeline).
    package var violatingOperationIDs: Set<Int>
    /// The shares of reads C3 and C4 judged.
    package var coverage: StalenessCoverage

    package var passed: Bool { properties.allSatisfy(\.passed) }

    package subscript(property: ContractProperty) -> PropertyResult {
        properties.first { $0.property == property }!
    }
}
