extension RedisConfiguration {
    /// Where to find a Redis Cluster; when set, `host` and `port` are ignored, the slot map is
    /// learnt from the seeds and each command goes to the primary that owns its key's slot.
    public struct Cluster: Sendable, Equatable {
        /// One node's address.
        public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
            public var host: String
            public var port: Int

            public init(host: String, port: Int = 6379) {
                self.host = host
                self.port = port
            }

            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// Nodes asked for the topology at start; later refreshes also ask every node the topology named.
        public var seeds: [Endpoint]
        /// MOVED, ASK, TRYAGAIN and CLUSTERDOWN answers followed for one command before it fails
        /// with `.clusterRedirectLimit`; a loop of redirects ends there.
        public var maxRedirects: Int
        /// How often the topology is asked again when no MOVED asked for it earlier.
        public var topologyRefreshInterval: Duration
        /// The first retry after TRYAGAIN or CLUSTERDOWN waits up to this (full jitter, doubling).
        public var retryBackoffBase: Duration
        /// No retry after TRYAGAIN or CLUSTERDOWN waits longer than this.
        public var retryBackoffCap: Duration

        public init(
            seeds: [Endpoint],
            maxRedirects: Int = 5,
            topologyRefreshInterval: Duration = .seconds(5),
            retryBackoffBase: Duration = .milliseconds(20),
            retryBackoffCap: Duration = .milliseconds(500)
        ) {
            self.seeds = seeds
            self.maxRedirects = maxRedirects
            self.topologyRefreshInterval = topologyRefreshInterval
            self.retryBackoffBase = retryBackoffBase
            self.retryBackoffCap = retryBackoffCap
        }
    }
}
