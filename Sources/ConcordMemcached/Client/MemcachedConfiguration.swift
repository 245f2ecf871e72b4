/// Everything the Memcached client needs to reach its servers; every field has a default.
public struct MemcachedConfiguration: Sendable {
    /// One memcached server and its share of the keys.
    public struct Server: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// Relative share of the ketama ring (libmemcached's server weight).
        public var weight: Int

        public init(host: String, port: Int = 11211, weight: Int = 1) {
            self.host = host
            self.port = port
            self.weight = max(1, weight)
        }

        public var description: String { "\(host):\(port)" }
    }

    /// Reconnection backoff: capped exponential with full jitter, the Redis client's policy.
    public struct Reconnect: Sendable {
        public var backoffBase: Duration
        public var backoffCap: Duration

        public init(backoffBase: Duration = .milliseconds(100), backoffCap: Duration = .seconds(2)) {
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
        }
    }

    public var servers: [Server]
    /// TCP connect plus the first `mn` round trip must finish within this.
    public var connectTimeout: Duration
    /// A request without a response after this fails with `.timeout` and its connection closes.
    public var requestTimeout: Duration
    public var reconnect: Reconnect
    /// The largest item the servers store (memcached's `-I`, 1 MiB by default). A value whose key
    /// and bytes exceed it fails with `.valueTooLarge` before it is sent.
    public var itemSizeLimit: Int
    /// Whether a server whose connection fails leaves the ring until it is back, so its keys move to
    /// the others (libmemcached's auto-eject). Without it, its keys fail until it returns.
    public var ejectFailedServers: Bool

    public init(
        servers: [Server] = [Server(host: "127.0.0.1")],
        connectTimeout: Duration = .seconds(1),
        requestTimeout: Duration = .seconds(1),
        reconnect: Reconnect = .init(),
        itemSizeLimit: Int = 1_048_576,
        ejectFailedServers: Bool = true
    ) {
        self.servers = servers
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.reconnect = reconnect
        self.itemSizeLimit = itemSizeLimit
        self.ejectFailedServers = ejectFailedServers
    }

    /// Item overhead memcached counts against the size limit besides key and value (item header,
    /// CAS, suffix), rounded up so a value accepted here is accepted by the server.
    static let itemOverhead = 64

    /// The biggest value announced on the wire that the parser accepts.
    var maxResponseValueBytes: Int { max(itemSizeLimit * 2, 1_048_576) }
}
