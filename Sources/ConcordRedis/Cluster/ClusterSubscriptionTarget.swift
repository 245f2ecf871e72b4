import Logging
import NIOCore
import Synchronization

/// Where a subscriber in a Redis Cluster connects: the primary that owns the slot of its
/// sharded channels, asked of the cluster before every connect, or the node a MOVED answer to
/// SSUBSCRIBE named (gossip can lag behind a migration for a moment; the MOVED is first-hand).
final class ClusterSubscriptionTarget: Sendable {
    private struct State {
        var slot: Int?
        var movedTo: RedisConfiguration.Cluster.Endpoint?
        var known: ClusterSlotMap?
    }

    private let configuration: RedisConfiguration
    private let cluster: RedisConfiguration.Cluster
    private let logger: Logger
    private let state = Mutex(State())

    init(configuration: RedisConfiguration, cluster: RedisConfiguration.Cluster, logger: Logger) {
        self.configuration = configuration
        self.cluster = cluster
        self.logger = logger
    }

    /// The slot every sharded channel of the subscriber hashes to.
    var slot: Int? {
        get { state.withLock { $0.slot } }
        set { state.withLock { $0.slot = newValue } }
    }

    /// A MOVED answer to SSUBSCRIBE: connect there next time.
    func moved(to endpoint: RedisConfiguration.Cluster.Endpoint) {
        state.withLock { $0.movedTo = endpoint }
    }

    /// The configuration of the node to connect to now.
    func resolve(eventLoop: any EventLoop) async throws(RedisError) -> RedisConfiguration {
        let (slot, movedTo, known) = state.withLock { state in
            defer { state.movedTo = nil }
            return (state.slot, state.movedTo, state.known)
        }
        if let movedTo { return ClusterDiscovery.configuration(configuration, for: movedTo) }
        let map = try await ClusterDiscovery.discover(
            base: configuration, seeds: cluster.seeds, known: known, eventLoop: eventLoop, logger: logger)
        state.withLock { $0.known = map }
        guard let owner = map.primary(forSlot: slot ?? 0) ?? map.shards.first?.primary else {
            throw RedisError(.clusterUnreachable, "the cluster serves no slot")
        }
        return ClusterDiscovery.configuration(configuration, for: owner)
    }
}
