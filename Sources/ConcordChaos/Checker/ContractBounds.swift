/// The time bounds of the consistency contract the checker holds the nodes to.
package struct ContractBounds: Sendable, Hashable, Codable {
    /// Δ: how long a healthy cluster may take to propagate an acknowledged write.
    package var delta: Duration
    /// How long a cut-off node may keep serving unflagged values (the node's setting).
    package var maxDisconnectedStaleness: Duration
    /// How long after a heal every node must serve the latest version: backoff cap + Δ.
    package var convergenceBound: Duration

    package init(
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

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        delta = try container.decodeMilliseconds(forKey: .deltaMs)
        maxDisconnectedStaleness = try container.decodeMilliseconds(forKey: .maxDisconnectedStalenessMs)
        convergenceBound = try container.decodeMilliseconds(forKey: .convergenceBoundMs)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeMilliseconds(delta, forKey: .deltaMs)
        try container.encodeMilliseconds(maxDisconnectedStaleness, forKey: .maxDisconnectedStalenessMs)
        try container.encodeMilliseconds(convergenceBound, forKey: .convergenceBoundMs)
    }
}

/// The six properties of the consistency contract (DESIGN.md, C1–C6).
package enum ContractProperty: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case readYourWrites = "C1"
    case monotonicReads = "C2"
    case boundedStalenessHealthy = "C3"
    case boundedStalenessCutOff = "C4"
    case convergence = "C5"
    case noLostWrites = "C6"

    package var title: String {
        switch self {
        case .readYourWrites: "read-your-writes"
        case .monotonicReads: "monotonic reads"
        case .boundedStalenessHealthy: "bounded staleness while healthy"
        case .boundedStalenessCutOff: "bounded staleness while cut off"
        case .convergence: "convergence after heal"
        case .noLostWrites: "no acknowledged write lost"
        }
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A node's auto-recovery counters (`autoRecovery` in `GET /v1/stats`), read after the run.
package struct AutoRecoveryCounters: Sendable, Hashable, Codable {
    package var queued: Int
    package var flushed: Int
    package var overflowed: Int

    package init(queued: Int = 0, flushed: Int = 0, overflowed: Int = 0) {
        self.queued = queued
        self.flushed = flushed
        self.overflowed = overflowed
    }
}
