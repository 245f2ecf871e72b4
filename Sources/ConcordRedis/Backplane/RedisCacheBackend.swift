import Concord
import Logging
import NIOCore
import NIOPosix

/// Builds the Redis client, subscriber, L2 and backplane of one cache from one configuration.
public struct RedisCacheBackend: Sendable {
    public let client: RedisClient
    public let subscriber: RedisSubscriber
    public let distributed: RedisDistributedCache
    public let backplane: RedisBackplane

    /// The parts of one cache on `configuration`. `authenticator` signs and checks messages and
    /// log entries (`HMACMessageAuthenticator` with the backplane keys; every node of a cache
    /// needs the same keys); `maxClockDrift` is the cache's `HybridCacheConfiguration.maxClockDrift`.
    /// The connections run on `eventLoopGroup` (SwiftNIO's shared one unless given).
    public init(
        configuration: RedisConfiguration, cacheName: String, logMaxLength: Int = 100_000,
        authenticator: (any MessageAuthenticator)? = nil,
        maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift,
        logger: Logger = Logger(label: "concord.redis"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        var commandConfiguration = configuration
        commandConfiguration.clientName = configuration.clientName ?? "concord-\(cacheName)"
        var subscriberConfiguration = configuration
        subscriberConfiguration.clientName = (configuration.clientName ?? "concord-\(cacheName)") + "-sub"
        client = RedisClient(configuration: commandConfiguration, logger: logger, eventLoopGroup: eventLoopGroup)
        subscriber = RedisSubscriber(configuration: subscriberConfiguration, logger: logger, eventLoopGroup: eventLoopGroup)
        distributed = RedisDistributedCache(
            client: client, cacheName: cacheName, logMaxLength: logMaxLength, authenticator: authenticator,
            maxClockDrift: maxClockDrift, runsClient: true, logger: logger
        )
        backplane = RedisBackplane(
            client: client, subscriber: subscriber, cacheName: cacheName, logMaxLength: logMaxLength,
            authenticator: authenticator, maxClockDrift: maxClockDrift, runsClient: false, logger: logger
        )
    }
}
