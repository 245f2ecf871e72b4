/// The time bounds of the consistency contract the checker holds the nodes to.
public struct ContractBounds: Sendable, Hashable, Codable {
    /// Δ: how long a healthy cluster may take to propagate an acknowledged write.
    public var delta: Duration
    /// How long a cut-off node may keep serving unflagged values (the node's setting).
    public var maxDisconnectedStaleness: Duration
    /// How long after a heal every node must serve the latest version: backoff cap + Δ.
    public var convergenceBound: Duration

    public init(
        delta: Duration = .milliseconds(500),
        maxDisconnectedStaleness: Duration = .seconds(5),
        convergenceBound: Duration = .milliseconds(2_500)
    ) {
        self.delta = delta
        self.maxDisconnectedStaleness = maxDisconnectedStaleness
        self.convergenceBound = convergenceBound
    }

    private enum CodingKeys: String, CodingKey {
        case deltaMs, maxDisconnectedStalenessMs, convergenceBoundMs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        delta = try container.decodeMilliseconds(forKey: .deltaMs)
        maxDisconnectedStaleness = try container.decodeMilliseconds(forKey: .maxDisconnectedStalenessMs)
        convergenceBound = try container.decodeMilliseconds(forKey: .convergenceBoundMs)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeMilliseconds(delta, forKey: .deltaMs)
        try container.encodeMilliseconds(maxDisconnectedStaleness, forKey: .maxDisconnectedStalenessMs)
        try container.encodeMilliseconds(convergenceBound, forKey: .convergenceBoundMs)
    }
}

/// The six properties of the consistency contract (DESIGN.md, C1–C6).
public enum ContractProperty: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case readYourWrites = "C1"
    case monotonicReads = "C2"
    case boundedStalenessHealthy = "C3"
    case boundedStalenessCutOff = "C4"
    case convergence = "C5"
    case noLostWrites = "C6"

    public var title: String {
        switch self {
        case .readYourWrites: "read-your-writes"
        case .monotonicReads: "monotonic reads"
        case .boundedStalenessHealthy: "bounded staleness while healthy"
        case .boundedStalenessCutOff: "bounded staleness while cut off"
        case .convergence: "convergence after heal"
        case .noLostWrites: "no acknowledged write lost"
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A node's auto-recovery counters (`autoRecovery` in `GET /v1/stats`), read after the run.
public struct AutoRecoveryCounters: Sendable, Hashable, Codable {
    public var queued: Int
    public var flushed: Int
    public var overflowed: Int

    public init(queued: Int = 0, flushed: Int = 0, overflowed: Int = 0) {
        self.queued = queued
        self.flushed = flushed
        self.overflowed = overflowed
    }
}
