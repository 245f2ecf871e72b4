/// A fault the harness injected, with when it began and when it was healed.
public struct Fault: Sendable, Hashable, Identifiable {
    /// Node ids or "redis".
    public static let redisTarget = "redis"

    public var id: Int
    /// What was done, e.g. "redis-down", "partition", "latency".
    public var kind: String
    /// Node ids the fault cut off, or `Fault.redisTarget`.
    public var targets: [String]
    public var start: Duration
    /// When it was healed; nil while it lasts (or if it never was).
    public var heal: Duration?
    /// Free text for the report (toxic parameters and the like).
    public var detail: String?
    /// For a failover: until when a write Redis acknowledged may have been lost in it (the
    /// master's death, or the moment every node had left the old master); nil for other faults.
    public var lossWindowEnd: Duration?

    public init(
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
    public var affectsAllNodes: Bool { targets.contains(Self.redisTarget) }
}

extension Fault: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, kind, targets, startMs, healMs, detail, lossWindowEndMs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int.self, forKey: .id)
        kind = try container.decode(String.self, forKey: .kind)
        targets = try container.decode([String].self, forKey: .targets)
        start = try container.decodeMilliseconds(forKey: .startMs)
        heal = try container.decodeMillisecondsIfPresent(forKey: .healMs)
        detail = try container.decodeIfPresent(String.self, forKey: .detail)
        lossWindowEnd = try container.decodeMillisecondsIfPresent(forKey: .lossWindowEndMs)
    }

    public func encode(to encoder: any Encoder) throws {
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
