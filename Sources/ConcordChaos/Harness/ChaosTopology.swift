/// The Redis set-up a chaos run (or a local cluster) starts the nodes against.
package enum ChaosTopology: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// One redis-server; each node reaches it through its own fault proxy.
    case standalone
    /// A master, a replica and three Sentinels; nodes find the master through the Sentinels.
    case sentinel
    /// A Redis Cluster of three primaries and three replicas; nodes reach it through `redis+cluster://`.
    case cluster

    package var description: String { rawValue }
}
