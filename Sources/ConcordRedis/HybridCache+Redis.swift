import Concord
import Logging

extension HybridCache {
    /// A cache on Redis, L2 and backplane, configured in one place: the Redis connections take
    /// the cache's name, clock-drift bound and logger from `configuration` and `logger`, so
    /// nothing is passed twice. Run the cache in a `ServiceGroup` and await `ready(timeout:)`.
    ///
    /// - Parameters:
    ///   - redis: where Redis is and how to reach it (address, credentials, TLS, Sentinel).
    ///   - configuration: the cache's configuration; its name and clock-drift bound also go to
    ///     the Redis connections.
    ///   - authenticator: signs and checks backplane messages (`HMACMessageAuthenticator`
    ///     with the backplane keys); every node of a cache needs the same keys.
    ///   - serializer: encodes values for L2 and the backplane.
    ///   - logger: the cache's logger; the Redis connections log through it too.
    public static func redis(
        _ redis: RedisConfiguration,
        configuration: HybridCacheConfiguration = HybridCacheConfiguration(),
        authenticator: (any MessageAuthenticator)? = nil,
        serializer: any CacheSerializer = JSONCacheSerializer(),
        logger: Logger = Logger(label: "concord")
    ) throws -> HybridCache {
        var redisLogger = logger
        redisLogger[metadataKey: "concord.cache"] = .string(configuration.cacheName)
        let backend = RedisCacheBackend(
            configuration: redis, cacheName: configuration.cacheName, authenticator: authenticator,
            maxClockDrift: configuration.maxClockDrift, logger: redisLogger
        )
        return try HybridCache(
            configuration: configuration, distributed: backend.distributed, backplane: backend.backplane,
            serializer: serializer, logger: logger
        )
    }

    /// `redis(_:configuration:authenticator:serializer:logger:)` from a `redis://`, `rediss://`
    /// or `redis+sentinel://` URL. Throws `RedisError(.invalidURL)` for a malformed one.
    public static func redis(
        url: String,
        configuration: HybridCacheConfiguration = HybridCacheConfiguration(),
        authenticator: (any MessageAuthenticator)? = nil,
        logger: Logger = Logger(label: "concord")
    ) throws -> HybridCache {
        try redis(try RedisConfiguration(url: url), configuration: configuration, authenticator: authenticator, logger: logger)
    }
}
