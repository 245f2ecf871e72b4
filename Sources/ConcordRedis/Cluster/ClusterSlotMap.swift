/// A Redis Cluster's shards and the primary that owns each slot, as one node reported them.
///
/// Built from `CLUSTER SHARDS` (Redis 7+) or `CLUSTER SLOTS`. Both parsers treat the reply as
/// untrusted: a wrong shape, a slot out of range, overlapping ranges or a bad port is a
/// `.clusterTopologyInvalid` error, never a trap.
public struct ClusterSlotMap: Sendable, Equatable {
    /// One shard: its primary, its replicas and the slot ranges it serves.
    public struct Shard: Sendable, Equatable {
        public var primary: RedisConfiguration.Cluster.Endpoint
        public var replicas: [RedisConfiguration.Cluster.Endpoint]
        public var slots: [ClosedRange<Int>]

        public init(primary: RedisConfiguration.Cluster.Endpoint, replicas: [RedisConfiguration.Cluster.Endpoint] = [], slots: [ClosedRange<Int>]) {
            self.primary = primary
            self.replicas = replicas
            self.slots = slots
        }
    }

    /// Shards that serve at least one slot, ordered by their first slot.
    public let shards: [Shard]
    /// Whether the reply came from `CLUSTER SHARDS`, which only Redis 7+ has (and with it sharded pub/sub).
    public let fromShards: Bool

    public init(shards: [Shard], fromShards: Bool = true) throws(RedisError) {
        var owned = [Bool](repeating: false, count: ClusterHashSlot.count)
        for shard in shards {
            for range in shard.slots {
                guard range.lowerBound >= 0, range.upperBound < ClusterHashSlot.count else {
                    throw RedisError(.clusterTopologyInvalid, "slot range \(range) is outside 0...\(ClusterHashSlot.count - 1)")
                }
                for slot in range {
                    guard !owned[slot] else {
                        throw RedisError(.clusterTopologyInvalid, "slot \(slot) is claimed by two shards")
                    }
                    owned[slot] = true
                }
            }
        }
        self.shards = shards.filter { !$0.slots.isEmpty }.sorted { ($0.slots.map(\.lowerBound).min() ?? 0) < ($1.slots.map(\.lowerBound).min() ?? 0) }
        self.fromShards = fromShards
    }

    /// The primary serving `slot`, nil when no shard claims it.
    public func primary(forSlot slot: Int) -> RedisConfiguration.Cluster.Endpoint? {
        shards.first(where: { $0.slots.contains(where: { $0.contains(slot) }) })?.primary
    }

    /// Every node named, primaries first.
    public var nodes: [RedisConfiguration.Cluster.Endpoint] {
        shards.map(\.primary) + shards.flatMap(\.replicas)
    }

    /// Slots no shard claims (the cluster is not whole while there are any).
    public var unassignedSlots: Int {
        ClusterHashSlot.count - shards.reduce(0) { total, shard in total + shard.slots.reduce(0) { $0 + $1.count } }
    }

    /// What routing depends on, for comparing two nodes' views: each slot range with its primary, merged and sorted.
    public var routing: [Route] {
        var routes: [Route] = []
        for shard in shards {
            for range in shard.slots { routes.append(Route(slots: range, primary: shard.primary)) }
        }
        routes.sort { $0.slots.lowerBound < $1.slots.lowerBound }
        var merged: [Route] = []
        for route in routes {
            if let last = merged.last, last.primary == route.primary, last.slots.upperBound + 1 == route.slots.lowerBound {
                merged[merged.count - 1] = Route(slots: last.slots.lowerBound...route.slots.upperBound, primary: route.primary)
            } else {
                merged.append(route)
            }
        }
        return merged
    }

    /// A slot range and the primary that serves it.
    public struct Route: Sendable, Hashable {
        public var slots: ClosedRange<Int>
        public var primary: RedisConfiguration.Cluster.Endpoint
    }
}

// MARK: Parsing

extension ClusterSlotMap {
    /// Parses a `CLUSTER SHARDS` reply. `askedHost` stands in for a node whose address is empty
    /// (Redis leaves it out when it only knows the node by the connection it was asked on); with
    /// `tls`, a node's `tls-port` is used.
    public static func parseShards(_ reply: RESPValue, askedHost: String, tls: Bool = false) throws(RedisError) -> ClusterSlotMap {
        guard let items = reply.array else { throw invalid("CLUSTER SHARDS answered \(reply.kindDescription), not an array") }
        var shards: [Shard] = []
        for item in items {
            let fields = try pairs(item, what: "a shard")
            guard let slotList = fields["slots"]?.array else { throw invalid("a shard has no slots list") }
            guard slotList.count % 2 == 0 else { throw invalid("a shard's slots list has an odd length") }
            var slots: [ClosedRange<Int>] = []
            var index = 0
            while index < slotList.count {
                slots.append(try range(slotList[index], slotList[index + 1]))
                index += 2
            }
            guard let nodeList = fields["nodes"]?.array else { throw invalid("a shard has no nodes list") }
            var primary: RedisConfiguration.Cluster.Endpoint?
            var replicas: [RedisConfiguration.Cluster.Endpoint] = []
            for nodeItem in nodeList {
                let node = try pairs(nodeItem, what: "a node")
                let host = [node["endpoint"], node["ip"]].compactMap { $0?.string }.first(where: { !$0.isEmpty && $0 != "?" }) ?? askedHost
                let portValue = tls ? (node["tls-port"] ?? node["port"]) : (node["port"] ?? node["tls-port"])
                guard let portValue, let port = try portNumber(portValue) else {
                    throw invalid("a node has no \(tls ? "tls-port" : "port")")
                }
                let endpoint = RedisConfiguration.Cluster.Endpoint(host: host, port: port)
                switch node["role"]?.string {
                case "master":
                    guard primary == nil else { throw invalid("a shard names two primaries") }
                    primary = endpoint
                case "replica", "slave":
                    replicas.append(endpoint)
                default:
                    throw invalid("a node's role is \(node["role"].map { "\($0)" } ?? "missing")")
                }
            }
            guard let primary else {
                if slots.isEmpty { continue }
                throw invalid("a shard serving slots has no primary")
            }
            shards.append(Shard(primary: primary, replicas: replicas, slots: slots))
        }
        return try ClusterSlotMap(shards: shards, fromShards: true)
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [host, port, id…], replica…]` per range.
    public static func parseSlots(_ reply: RESPValue, askedHost: String) throws(RedisError) -> ClusterSlotMap {
        guard let items = reply.array else { throw invalid("CLUSTER SLOTS answered \(reply.kindDescription), not an array") }
        var byPrimary: [RedisConfiguration.Cluster.Endpoint: Shard] = [:]
        var order: [RedisConfiguration.Cluster.Endpoint] = []
        for item in items {
            guard let parts = item.array, parts.count >= 3 else { throw invalid("a CLUSTER SLOTS entry is not [start, end, primary, …]") }
            let slots = try range(parts[0], parts[1])
            var nodes: [RedisConfiguration.Cluster.Endpoint] = []
            for nodeItem in parts[2...] {
                guard let node = nodeItem.array, node.count >= 2, let host = node[0].string else {
                    throw invalid("a CLUSTER SLOTS node is not [host, port, …]")
                }
                guard let port = try portNumber(node[1]) else { throw invalid("a CLUSTER SLOTS node has no port") }
                nodes.append(.init(host: host.isEmpty || host == "?" ? askedHost : host, port: port))
            }
            let primary = nodes[0]
            if byPrimary[primary] == nil {
                byPrimary[primary] = Shard(primary: primary, replicas: Array(nodes.dropFirst()), slots: [])
                order.append(primary)
            }
            byPrimary[primary]!.slots.append(slots)
        }
        return try ClusterSlotMap(shards: order.compactMap { byPrimary[$0] }, fromShards: false)
    }

    private static func invalid(_ message: String) -> RedisError {
        RedisError(.clusterTopologyInvalid, "malformed cluster topology: \(message)")
    }

    /// A flat `[name, value, name, value…]` array as a dictionary (first occurrence wins).
    private static func pairs(_ value: RESPValue, what: String) throws(RedisError) -> [String: RESPValue] {
        guard let items = value.array, items.count % 2 == 0 else { throw invalid("\(what) is not a list of name/value pairs") }
        var fields: [String: RESPValue] = [:]
        var index = 0
        while index < items.count {
            guard let name = items[index].string else { throw invalid("\(what) has a field name that is not a string") }
            if fields[name] == nil { fields[name] = items[index + 1] }
            index += 2
        }
        return fields
    }

    private static func range(_ start: RESPValue, _ end: RESPValue) throws(RedisError) -> ClosedRange<Int> {
        guard let low = start.int, let high = end.int else { throw invalid("a slot bound is not an integer") }
        guard low >= 0, high < Int64(ClusterHashSlot.count), low <= high else {
            throw invalid("slot range \(low)-\(high) is outside 0...\(ClusterHashSlot.count - 1) or reversed")
        }
        return Int(low)...Int(high)
    }

    /// A port in 1...65535; nil for 0 (Redis's "no such port", e.g. `tls-port` without TLS).
    private static func portNumber(_ value: RESPValue) throws(RedisError) -> Int? {
        guard let number = value.int else { throw invalid("a port is not an integer") }
        if number == 0 { return nil }
        guard (1...65_535).contains(number) else { throw invalid("port \(number) is outside 1-65535") }
        return Int(number)
    }
}

extension RESPValue {
    /// The reply's kind, for error messages that must not echo untrusted payloads at length.
    var kindDescription: String {
        switch self {
        case .simpleString: "a status"
        case .error(let message): "the error \(message.prefix(120))"
        case .integer: "an integer"
        case .bulkString: "a string"
        case .null: "nil"
        case .array: "an array"
        }
    }
}
