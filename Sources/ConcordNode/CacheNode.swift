import Concord
import ConcordMemcached
import ConcordRedis
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// One `concord node`: a `HybridCache` on Redis (L2 + backplane), an optional origin, and the
/// HTTP API in front of them, run together in a `ServiceGroup` that shuts down gracefully on
/// SIGTERM and SIGINT: the server stops taking requests first, then the cache flushes its
/// queued Redis writes for at most `shutdownTimeout`.
public final class CacheNode: Sendable {
    public let configuration: NodeConfiguration
    public let cache: HybridCache
    /// The caches besides the default one, by name (`--cache-name` repeated), each served under `/v1/caches/NAME/…`.
    public let otherCaches: [String: HybridCache]
    public let origin: (any Origin)?
    /// Where `/metrics` reads from. The `concord` executable bootstraps swift-metrics onto this
    /// same registry, so cache metrics and the node's HTTP metrics come out together.
    public let registry: PrometheusCollectorRegistry
    public let readiness: NodeReadiness
    /// The bearer tokens read from the configuration's token files at start.
    public let tokens: AccessTokens
    /// The server's TLS settings, read from `--tls-cert` and `--tls-key` at start.
    let tls: TLSConfiguration?
    let metrics: NodeMetrics
    let logger: Logger

    /// A node on the Redis and origin the configuration names, as `concord node` runs it.
    /// Throws for an unusable configuration or an origin that cannot be opened; Redis itself is
    /// reached in the background, so a node starts (not ready) while Redis is down.
    public convenience init(
        configuration: NodeConfiguration,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        logger: Logger = Logger(label: "concord.node")
    ) throws {
        try configuration.validate()
        var logger = logger
        logger.logLevel = configuration.logLevel
        logger[metadataKey: "concord.node"] = .string(configuration.nodeID)
        let authenticator = try configuration.backplaneKeys().map { try HMACMessageAuthenticator(keys: $0) }
        let clock: any CacheClock = configuration.testClockOffset == .zero
            ? SystemCacheClock()
            : OffsetWallClock(base: SystemCacheClock(), offset: configuration.testClockOffset)
        if configuration.testClockOffset != .zero {
            logger.warning("testing only: this node's wall clock is offset", metadata: ["concord.offset": "\(configuration.testClockOffset)"])
        }
        var caches: [(HybridCache, NodeReadiness)] = []
        for name in configuration.cacheNames {
            caches.append(try Self.makeCache(named: name, configuration: configuration, authenticator: authenticator, clock: clock, logger: logger))
        }
        let (cache, defaultReadiness) = caches[0]
        let others = Array(caches.dropFirst())
        // Ready when every cache the node holds can keep its L1 coherent.
        let readiness = others.isEmpty ? defaultReadiness : NodeReadiness {
            for (other, readiness) in [(cache, defaultReadiness)] + others {
                let report = readiness.check()
                guard report.ready else {
                    return NodeReadiness.Report(ready: false, backplane: report.backplane, reason: "cache '\(other.configuration.cacheName)': \(report.reason ?? "not ready")")
                }
            }
            return defaultReadiness.check()
        }
        let origin = try configuration.origin?.open(http: configuration.httpOriginConfiguration)
        try self.init(
            configuration: configuration, cache: cache, otherCaches: Dictionary(uniqueKeysWithValues: others.map { ($0.0.configuration.cacheName, $0.0) }),
            origin: origin, readiness: readiness, registry: registry, logger: logger)
    }

    /// One of the node's caches on the backends the configuration names, with its readiness.
    private static func makeCache(
        named name: String,
        configuration: NodeConfiguration,
        authenticator: (any MessageAuthenticator)?,
        clock: any CacheClock,
        logger: Logger
    ) throws -> (HybridCache, NodeReadiness) {
        if let memcached = try configuration.memcachedConfiguration() {
            // Memcached holds L2; Redis, when the backplane is on, only carries invalidations.
            let backend = MemcachedCacheBackend(
                configuration: memcached,
                backplane: configuration.isBackplaneEnabled ? try configuration.redisConfiguration(cacheName: name) : nil,
                cacheName: name,
                authenticator: authenticator,
                maxClockDrift: configuration.maxClockDrift,
                logger: logger
            )
            let cache = try HybridCache(
                configuration: configuration.cacheConfiguration(named: name),
                distributed: backend.distributed,
                backplane: backend.backplane,
                clock: clock,
                logger: logger
            )
            return (cache, backend.backplane == nil ? .memcached(backend.client) : .backplane(of: cache))
        }
        let backend = RedisCacheBackend(
            configuration: try configuration.redisConfiguration(cacheName: name), cacheName: name,
            authenticator: authenticator, maxClockDrift: configuration.maxClockDrift, logger: logger
        )
        let backplane: RedisBackplane? = configuration.isBackplaneEnabled ? backend.backplane : nil
        let cache = try HybridCache(
            configuration: configuration.cacheConfiguration(named: name),
            distributed: backend.distributed,
            backplane: backplane,
            clock: clock,
            logger: logger
        )
        return (cache, backplane == nil ? .redis(backend.client) : .backplane(of: cache))
    }

    /// A node around a cache (and `otherCaches`, served under `/v1/caches/NAME/…`) built
    /// elsewhere: in-memory backends in tests, or an app that embeds the API. The cache's own configuration decides key and value limits; token and
    /// TLS files come from `configuration` and are read here.
    public init(
        configuration: NodeConfiguration,
        cache: HybridCache,
        otherCaches: [String: HybridCache] = [:],
        origin: (any Origin)?,
        readiness: NodeReadiness,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        logger: Logger = Logger(label: "concord.node")
    ) throws {
        self.configuration = configuration
        self.cache = cache
        self.otherCaches = otherCaches
        self.origin = origin
        self.readiness = readiness
        self.tokens = try AccessTokens(configuration: configuration)
        self.tls = try NodeTLS.serverConfiguration(configuration)
        self.registry = registry
        self.metrics = NodeMetrics(registry: registry, node: cache.nodeID)
        self.logger = logger
    }

    /// The `Server` header of every HTTP answer.
    static let serverName = "concord"

    /// The Hummingbird application: the API's router, the HTTP/1.1 server, and the cache as a
    /// service of the application, so HummingbirdTesting runs it too. `onServerRunning` gets
    /// the bound port (useful with port 0).
    public func makeApplication(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        var routes = NodeRoutes(cache: cache, origin: origin, readiness: readiness, metrics: metrics, tokens: tokens, logger: logger)
        routes.namedCaches = otherCaches
        routes.namedCaches[cache.configuration.cacheName] = cache
        let idleTimeout = TimeAmount.nanoseconds(configuration.idleTimeout.nanosecondsClamped)
        let requestTimeout = TimeAmount.nanoseconds(configuration.requestTimeout.nanosecondsClamped)
        let logger = self.logger
        let baseURL = configuration.bindHost
        let scheme = tls == nil ? "http" : "https"
        // The idle timeout closes connections that send nothing; the request deadline closes
        // those that trickle a request in a byte at a time, which resets any idle timer.
        let http1 = { @Sendable (idleTimeout: TimeAmount?) in
            HTTP1Channel.Configuration(
                additionalChannelHandlers: [makeHTTP1CloseAfterResponseHandler(), makeHTTP1RequestDeadlineHandler(timeout: requestTimeout)],
                idleTimeout: idleTimeout
            )
        }
        // L1 hits are answered on the event loop, without the router. Not with an origin: there
        // a GET is `getOrSet`, whose hit may be due for an eager refresh that only it starts.
        // Not when the process traces either: every request then goes through the router's
        // tracing middleware, so each one gets its span.
        let directHits = origin == nil && !NodeRoutes.isTracingBootstrapped
            ? MemoryHitResponder(cache: cache, tokens: tokens, metrics: metrics, serverName: Self.serverName)
            : nil
        var server = HTTPServerBuilder { responder -> any ServerChildChannel in
            guard let directHits else { return HTTP1Channel(responder: responder, configuration: http1(idleTimeout)) }
            // With direct hits, their byte handler keeps the idle timeout (Hummingbird's timer
            // never sees the requests it answers).
            return MemoryHitHTTP1Channel(
                base: HTTP1Channel(responder: responder, configuration: http1(nil)), responder: directHits,
                idleTimeout: idleTimeout)
        }
        if let tls { server = try .tls(server, tlsConfiguration: tls) }
        return Application(
            router: routes.makeRouter(),
            server: server,
            configuration: .init(
                address: .hostname(configuration.bindHost, port: configuration.port),
                serverName: Self.serverName,
                availableConnectionsDelegate: .maximum(configuration.maxConnections, logger: logger)
            ),
            services: [cache] + otherCaches.keys.sorted().compactMap { otherCaches[$0] },
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("listening on \(scheme)://\(baseURL.contains(":") ? "[\(baseURL)]" : baseURL):\(port)")
                await onServerRunning(port)
            },
            logger: logger
        )
    }

    /// The RESP front end on `respPort`, or nil when the configuration has none.
    /// `onBound` gets the bound port (useful with port 0).
    public func makeRESPServer(onBound: @escaping @Sendable (Int) async -> Void = { _ in }) -> RESPServer? {
        guard let port = configuration.respPort else { return nil }
        return RESPServer(
            configuration: .init(host: configuration.bindHost, port: port, maxConnections: configuration.respMaxConnections,
                          token: configuration.respToken, accessTokens: tokens),
            cache: cache, logger: logger, onBound: onBound)
    }

    /// Runs the node until SIGTERM or SIGINT (or, with `parentProcessID`, until that parent is
    /// gone), then shuts down gracefully within `shutdownTimeout` plus a margin for the server.
    /// `exporters` (a trace exporter, say) start before the server and stop after it, so the
    /// spans of the last requests still go out; one that ends or fails does not stop the node.
    public func run(
        exporters: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        onRESPBound: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        // A group shuts its services down in the reverse order of this list.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = exporters.map {
            .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)
        }
        services.append(.init(service: try makeApplication(onServerRunning: onServerRunning)))
        if let resp = makeRESPServer(onBound: onRESPBound) {
            services.append(.init(service: resp))
        }
        if let parent = configuration.parentProcessID {
            services.append(.init(
                service: ParentProcessWatch(parentProcessID: parent, logger: logger),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup
            ))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        // Past this, the group cancels what is left: a stuck connection or Redis write must not
        // keep a node that was told to stop alive forever.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(5)
        logger.info("node starting", metadata: [
            "concord.cache": .string(configuration.cacheNames.joined(separator: ",")),
            "concord.l2": .string(configuration.memcachedURL ?? "redis"),
            "concord.redis": .string(configuration.redactedRedisURL),
            "concord.redis.role": .string(configuration.isBackplaneEnabled ? (configuration.memcachedURL == nil ? "L2 + backplane" : "backplane") : "L2 only (no backplane)"),
            "concord.auth": .string(configuration.requiresTokens ? "bearer tokens" : "none (loopback or --allow-unauthenticated)"),
            "concord.origin": .string(configuration.origin?.description ?? "none"),
        ])
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("node stopped")
    }
}
