extension RedisConfiguration {
    /// Where to find the master through Redis Sentinel; when set, `host` and `port` are ignored
    /// and the master's address is asked of the Sentinels before every connect.
    public struct Sentinel: Sendable, Equatable {
        /// One Sentinel's address.
        public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
            public var host: String
            public var port: Int

            public init(host: String, port: Int = 26_379) {
                self.host = host
                self.port = port
            }

            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// The name the Sentinels monitor the master under (`sentinel monitor <name> ...`).
        public var masterName: String
        /// Asked in order; the first that answers moves to the front for next time.
        public var endpoints: [Endpoint]
        /// ACL user for the Sentinels; nil with a password authenticates as the default user.
        public var username: String?
        /// The Sentinels' password (`requirepass` in sentinel.conf); nil sends no AUTH.
        public var password: String?
        /// How often a connected client asks the Sentinels whether the master moved, besides
        /// listening for `+switch-master`, whose delivery pub/sub does not guarantee.
        public var pollInterval: Duration

        public init(
            masterName: String,
            endpoints: [Endpoint],
            username: String? = nil,
            password: String? = nil,
            pollInterval: Duration = .seconds(1)
        ) {
            self.masterName = masterName
            self.endpoints = endpoints
            self.username = username
            self.password = password
            self.pollInterval = pollInterval
        }
    }
}
