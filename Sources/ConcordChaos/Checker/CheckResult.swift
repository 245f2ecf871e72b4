/// One broken promise: the operation blamed, what it should have returned, and its neighbourhood.
public struct Violation: Sendable, Hashable, Codable {
    public var property: ContractProperty
    /// The read that returned too old a version.
    public var operation: Operation
    /// The smallest version the contract required.
    public var expectedAtLeast: Int64
    /// The operations that set the requirement (the write acknowledged, the earlier read...).
    public var evidence: [Operation]
    /// Operations on the same key around the blamed one, ordered by start.
    public var window: [Operation]
    /// The fault whose heal this concerns (C5), if any.
    public var faultID: Int?
    public var message: String
}

/// The verdict on one property.
public struct PropertyResult: Sendable, Hashable, Codable {
    public var property: ContractProperty
    /// Reads the property applied to.
    public var checked: Int
    /// Stale-flagged reads the property exempts (counted, not hidden).
    public var exempt: Int
    /// Every violation found.
    public var violationCount: Int
    /// The first violations in detail (bounded, so a badly broken run still writes a readable report).
    public var violations: [Violation]
    /// Things worth knowing that are not violations (inconclusive windows, overflow-explained losses).
    public var notes: [String]

    public var passed: Bool { violationCount == 0 }
}

/// How many operations of each sort the history holds.
public struct OperationCounts: Sendable, Hashable, Codable {
    public var reads = 0
    public var writes = 0
    public var deletes = 0
    public var invalidates = 0
    /// Keys superseded by DELETE /v1/tags/{tag} (one per key of the tag).
    public var tagRemovals = 0
    public var clears = 0
    /// PUTs made with `?background=true`.
    public var backgroundWrites = 0
    /// Operations of any kind that failed (not violations).
    public var errors = 0
    /// Successful reads flagged `Concord-Stale: true`.
    public var staleReads = 0
    /// Successful reads that found nothing.
    public var notFoundReads = 0
    public var probes = 0
    public var finalReads = 0

    public init() {}
}

/// How long the cluster took to serve the latest versions again after one heal (C5).
public struct ConvergenceMeasurement: Sendable, Hashable, Codable {
    public var faultID: Int
    public var kind: String
    public var heal: Duration
    /// Where the observation window stops: the next fault's start or the end of the history.
    public var windowEnd: Duration
    /// From the heal to the end of the first read serving the heal's latest acked version after
    /// the last read that served an older one, the largest over node/key pairs (zero if no read
    /// after the heal served an older version); nil when skipped or when some node never caught up.
    public var convergence: Duration?
    /// Every observed (node, key) pair reached the target version within the window.
    public var converged: Bool
    public var withinBound: Bool
    public var observedPairs: Int
    public var unobservedPairs: Int
    /// "node/key" pairs that lagged past the bound or never caught up.
    public var laggingPairs: [String]
    /// Why the heal was not measured, if it was not.
    public var skipped: String?

    private enum CodingKeys: String, CodingKey {
        case faultID, kind, healMs, windowEndMs, convergenceMs, converged, withinBound, observedPairs, unobservedPairs, laggingPairs, skipped
    }

    public init(
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

    public init(from decoder: any Decoder) throws {
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

    public func encode(to encoder: any Encoder) throws {
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
public struct LostWrite: Sendable, Hashable, Codable {
    public var node: String
    public var key: String
    public var expected: Int64
    public var observed: Int64?
    /// The node that acknowledged the lost version.
    public var writer: String
    public var writeID: Int
    public var readID: Int
    /// The writer's auto-recovery queue reported overflow, which the contract allows.
    public var explainedByOverflow: Bool
}

/// The largest staleness seen on one node.
public struct StalenessFigure: Sendable, Hashable, Codable {
    public var node: String
    public var worst: Duration
    /// The read that was that stale.
    public var readID: Int?

    private enum CodingKeys: String, CodingKey { case node, worstMs, readID }

    public init(node: String, worst: Duration, readID: Int?) {
        self.node = node
        self.worst = worst
        self.readID = readID
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        node = try container.decode(String.self, forKey: .node)
        worst = try container.decodeMilliseconds(forKey: .worstMs)
        readID = try container.decodeIfPresent(Int.self, forKey: .readID)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(node, forKey: .node)
        try container.encodeMilliseconds(worst, forKey: .worstMs)
        try container.encodeIfPresent(readID, forKey: .readID)
    }
}

/// Everything the checker concluded about one history.
public struct CheckResult: Sendable, Hashable {
    public var bounds: ContractBounds
    /// C1 to C6, in order.
    public var properties: [PropertyResult]
    public var counts: OperationCounts
    /// Among unflagged reads: read start − ack of the first acked write that superseded the
    /// version returned. Zero when every read was current.
    public var worstStaleness: Duration
    public var worstStalenessReadID: Int?
    /// Per node, in the history's node order.
    public var stalenessByNode: [StalenessFigure]
    public var convergence: [ConvergenceMeasurement]
    public var lostWrites: [LostWrite]
    /// Auto-recovery counters as given, summed over nodes.
    public var recovery: AutoRecoveryCounters
    /// Every blamed operation id, including those beyond the detailed lists (for the timeline).
    public var violatingOperationIDs: Set<Int>
    /// The shares of reads C3 and C4 judged.
    public var coverage: StalenessCoverage

    public var passed: Bool { properties.allSatisfy(\.passed) }

    public subscript(property: ContractProperty) -> PropertyResult {
        properties.first { $0.property == property }!
    }
}
