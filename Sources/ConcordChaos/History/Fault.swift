/// A fault the harness injected, with when it began and when it was healed.
package struct Fault: Sendable, Hashable, Identifiable {
    /// Node ids or "redis".
    package static let redisTarget = "redis"
    /// The target of a fault on a memcached server (the shared L2 of every node).
    package static let memcachedTarget = "memcached"

    package var id: Int
    /// What was done, e.g. "redis-down", "partition", "latency".
    package var kind: String
    /// Node ids the fault cut off, or `Fault.redisTarget`.
    package var targets: [String]
    package var start: Duration
    /// When it was healed; nil while it lasts (or if it never was).
    package var heal: Duration?
    /// Free text for the report (toxic parameters and the like).
    package var detail: String?
    /// For a failover: until when a write Redis acknowledged may have been lost in it (the
    /// master's death, or the moment every node had left the old master); nil for other faults.
    package var lossWindowEnd: Duration?

    package init(
        id: Int, kind: String, targets: [String], start: Duration, heal: Duration? = nil, detail: String? = nil,
        lossWindowEnd: Duration? = nil
    ) {
        self.id = id
        self.kind = kind
        self.targets = targets
        self.start = start
        self.heal = heal
        self.detail = detail
        self.lossWindowEnd = lossWindowEnd
    }

    /// Whether the fault touches every node (Redis itself) rather than some nodes' links.
    package var affectsAllNodes: Bool { targets.contains(Self.redisTarget) || targets.contains(Self.memcachedTarget) }
}

extension Fault: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, kind, targets, startMs, healMs, detail, lossWindowEndMs
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int.self, forKey: .id)
        kind = try container.decode(String.self, forKey: .kind)
        targets = try container.decode([String].self, forKey: .targets)
        start = try container.decodeMilliseconds(forKey: .startMs)
        heal = try container.decodeMillisecondsIfPresent(forKey: .healMs)
        detail = try container.decodeIfPresent(String.self, forKey: .detail)
        lossWindowEnd = try container.decodeMillisecondsIfPresent(forKey: .lossWindowEndMs)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(targets, forKey: .targets)
        try container.encodeMilliseconds(start, forKey: .startMs)
        try container.encodeMillisecondsIfPresent(heal, forKey: .healMs)
        try container.encodeIfPresent(detail, forKey: .detail)
        try container.encodeMillisecondsIfPresent(lossWindowEnd, forKey: .lossWindowEndMs)
    }
}
