@_spi(ConcordBackend) import Concord
import ConcordProcess
import ConcordRedis
import Logging
import NIOCore
import NIOPosix

/// One cache node on real Redis: a `HybridCache` with its own connections, as a process would have.
struct BenchNode: Sendable {
    let cache: HybridCache
    let backend: RedisCacheBackend

    init(
        id: String,
        cacheName: String,
        server: RedisServer,
        logger: Logger,
        configureRedis: (inout RedisConfiguration) -> Void = { _ in },
        configure: (inout HybridCacheConfiguration) -> Void = { _ in }
    ) throws {
        try self.init(id: id, cacheName: cacheName, redis: server.configuration(), logger: logger, configureRedis: configureRedis, configure: configure)
    }

    /// A node on the Redis (standalone, Sentinel or Cluster) that `redis` describes, its
    /// connections on `eventLoopGroup`.
    init(
        id: String,
        cacheName: String,
        redis: RedisConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        configureRedis: (inout RedisConfiguration) -> Void = { _ in },
        configure: (inout HybridCacheConfiguration) -> Void = { _ in }
    ) throws {
        var redis = redis
        redis.clientName = "bench-\(id)"
        configureRedis(&redis)
        backend = RedisCacheBackend(configuration: redis, cacheName: cacheName, logger: logger, eventLoopGroup: eventLoopGroup)
        var configuration = HybridCacheConfiguration(cacheName: cacheName, nodeID: id)
        configuration.defaultEntryOptions.duration = .seconds(3600)
        configuration.eventBufferSize = 1 << 16
        configure(&configuration)
        cache = try HybridCache(configuration: configuration, distributed: backend.distributed, backplane: backend.backplane, logger: logger)
    }
}
