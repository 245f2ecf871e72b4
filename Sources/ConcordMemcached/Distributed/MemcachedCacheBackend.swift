import Concord
import ConcordRedis
import Logging

/// Builds the Memcached L2 of one cache and, when a Redis configuration is given, its Redis
/// backplane: the Memcached counterpart of `RedisCacheBackend`, so a service picks its backend in
/// code the same way.
public struct MemcachedCacheBackend: Sendable {
    public let client: MemcachedClient
    public let distributed: MemcachedDistributedCache
    /// The Redis backplane (pub/sub, invalidation log, epoch), or nil without one: nodes are then
    /// coherent only within their L1 duration.
    public let backplane: RedisBackplane?

    public init(
        configuration: MemcachedConfiguration,
        backplane redis: RedisConfiguration?,
        cacheName: String,
        l2: MemcachedDistributedCache.Configuration = .init(),
        authenticator: (any MessageAuthenticator)? = nil,
        maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift,
        logger: Logger = Logger(label: "concord.memcached")
    ) {
        client = MemcachedClient(configuration: configuration, logger: logger)
        if let redis {
            var commandConfiguration = redis
            commandConfiguration.clientName = redis.clientName ?? "concord-\(cacheName)"
            var subscriberConfiguration = redis
            subscriberConfiguration.clientName = (redis.clientName ?? "concord-\(cacheName)") + "-sub"
            backplane = RedisBackplane(
                client: RedisClient(configuration: commandConfiguration, logger: logger),
                subscriber: RedisSubscriber(configuration: subscriberConfiguration, logger: logger),
                cacheName: cacheName,
                authenticator: authenticator,
                maxClockDrift: maxClockDrift,
                runsClient: true,
                logger: logger
            )
        } else {
            backplane = nil
        }
        distributed = MemcachedDistributedCache(client: client, cacheName: cacheName, backplane: backplane, configuration: l2, logger: logger)
    }
}
