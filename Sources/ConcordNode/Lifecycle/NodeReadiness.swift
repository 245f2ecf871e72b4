import Concord
import ConcordMemcached
import ConcordRedis

/// Decides what `GET /ready` answers. A node is ready when it can keep its L1 coherent: its
/// backplane is subscribed and caught up. A node started without a backplane has nothing to
/// keep coherent, so it is ready while its Redis connection is up.
public struct NodeReadiness: Sendable {
    /// One answer: ready or not, and why not.
    public struct Report: Sendable, Equatable, Codable {
        public var ready: Bool
        /// `connected`, `disconnected` or `disabled`.
        public var backplane: String
        public var reason: String?

        public init(ready: Bool, backplane: String, reason: String? = nil) {
            self.ready = ready
            self.backplane = backplane
            self.reason = reason
        }
    }

    public let check: @Sendable () -> Report

    public init(check: @escaping @Sendable () -> Report) {
        self.check = check
    }

    /// Ready while the cache's backplane is connected and synchronized, and no other live process
    /// uses this node's id.
    public static func backplane(of cache: HybridCache) -> Self {
        Self {
            guard cache.isBackplaneConnected else {
                return Report(ready: false, backplane: "disconnected", reason: "the backplane is not connected to Redis")
            }
            if cache.hasDuplicateNodeID {
                return Report(ready: false, backplane: "connected", reason: "another live process uses this node's id \(cache.nodeID)")
            }
            return Report(ready: true, backplane: "connected")
        }
    }

    /// For a node without a backplane: ready while the Redis command connection is up.
    public static func redis(_ client: RedisClient) -> Self {
        Self {
            client.isConnected
                ? Report(ready: true, backplane: "disabled")
                : Report(ready: false, backplane: "disabled", reason: "Redis is not connected")
        }
    }

    /// For a node on Memcached without a backplane: ready while some memcached server is on the ring.
    public static func memcached(_ client: MemcachedClient) -> Self {
        Self {
            client.liveServers.contains(where: { client.isConnected(server: $0) })
                ? Report(ready: true, backplane: "disabled")
                : Report(ready: false, backplane: "disabled", reason: "no memcached server is connected")
        }
    }

    /// Always ready: for a node on in-memory backends.
    public static var always: Self {
        Self { Report(ready: true, backplane: "disabled") }
    }
}
