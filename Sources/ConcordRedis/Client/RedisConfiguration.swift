/// Everything the Redis client and subscriber need to reach and talk to one Redis server; every field has a default.
public struct RedisConfiguration: Sendable {
    /// Reconnection backoff: capped exponential with full jitter.
    public struct Reconnect: Sendable {
        /// Upper bound of the first delay after a failure; doubles with each consecutive failure.
        public var backoffBase: Duration
        /// No delay is ever longer than this.
        public var backoffCap: Duration

        public init(backoffBase: Duration = .milliseconds(100), backoffCap: Duration = .seconds(2)) {
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
        }
    }

    /// Settings that only the pub/sub connection uses.
    public struct Subscriber: Sendable {
        /// How often the subscriber PINGs to detect a dead link; a PONG later than `commandTimeout` closes the connection.
        public var pingInterval: Duration
        /// Messages buffered per consumer of `messages` before the oldest unread ones are kept and new ones dropped.
        public var messageBufferSize: Int

        public init(pingInterval: Duration = .seconds(1), messageBufferSize: Int = 65_536) {
            self.pingInterval = pingInterval
            self.messageBufferSize = messageBufferSize
        }
    }

    public var host: String
    public var port: Int
    /// ACL user name; nil authenticates as the default user (`AUTH password`).
    public var username: String?
    /// nil sends no AUTH.
    public var password: String?
    public var database: Int
    /// Sent with `CLIENT SETNAME` on every (re)connect; visible in `CLIENT LIST`.
    public var clientName: String?
    /// TCP connect plus the handshake (AUTH, SELECT, CLIENT SETNAME) must finish within this.
    public var connectTimeout: Duration
    /// A command without a reply after this fails with `.timeout` and the connection is closed.
    public var commandTimeout: Duration
    /// How long a command issued while disconnected waits for a connection; zero fails fast with `.notConnected`.
    public var waitForConnectionTimeout: Duration
    public var reconnect: Reconnect
    public var subscriber: Subscriber
    /// nil speaks plaintext; set (by `rediss://`) wraps every connection, Sentinels included, in TLS.
    public var tls: TLS?
    /// nil connects to `host`:`port`; set (by `redis+sentinel://`) finds the master through Sentinel.
    public var sentinel: Sentinel?
    /// nil talks to one server; set (by `redis+cluster://`) routes every command by slot through a Redis Cluster.
    public var cluster: Cluster?

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        waitForConnectionTimeout: Duration = .zero,
        reconnect: Reconnect = .init(),
        subscriber: Subscriber = .init(),
        tls: TLS? = nil,
        sentinel: Sentinel? = nil,
        cluster: Cluster? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.waitForConnectionTimeout = waitForConnectionTimeout
        self.reconnect = reconnect
        self.subscriber = subscriber
        self.tls = tls
        self.sentinel = sentinel
        self.cluster = cluster
    }

    /// Where the configuration points, for messages: `host:port`, the Sentinels and master name, or the cluster's seeds.
    public var endpointDescription: String {
        if let cluster {
            return "cluster via \(cluster.seeds.map(\.description).joined(separator: ","))"
        }
        if let sentinel {
            return "master '\(sentinel.masterName)' via Sentinel \(sentinel.endpoints.map(\.description).joined(separator: ","))"
        }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
