import Concord
import ConcordMemcached
import ConcordRedis
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything a `concord node` needs to run: where it listens, which Redis and origin it uses,
/// and the cache options it applies to every entry. Every field has the default documented in
/// `NodeOption`, so `NodeConfiguration()` is a working node on 127.0.0.1:7001.
public struct NodeConfiguration: Sendable, Equatable {
    public var nodeID: String = HybridCacheConfiguration.randomNodeID()
    /// Loopback by default: a cache sidecar should not be reachable from the network by accident.
    public var bindHost: String = "127.0.0.1"
    public var port: Int = 7001
    public var redisURL: String = "redis://127.0.0.1:6379"
    /// Client-side TLS settings, applied when `redisURL` is `rediss://` (or `rediss+sentinel://`).
    public var tls: RedisConfiguration.TLS = .init()
    /// Sentinel credentials when they differ from the URL's; nil keeps the URL's.
    public var sentinelUsername: String?
    /// A file whose first line is the Sentinels' password, when it differs from the data servers'.
    public var sentinelPasswordFile: String?
    /// The Redis ACL user; nil keeps the URL's (or the default user).
    public var redisUser: String?
    /// A file whose first line is the Redis password, so it stays out of argv and env dumps.
    public var redisPasswordFile: String?
    /// A `memcached://` server list for L2, with Redis as the backplane only; nil keeps L2 on Redis.
    public var memcachedURL: String?
    public var origin: OriginLocation?
    /// With an HTTP origin: its `Cache-Control` decides the entry's duration.
    public var originRespectsCacheControl: Bool = false
    /// With an HTTP origin: the connection pool's bound.
    public var originMaxConnections: Int = 8
    public var cacheName: String = "default"
    /// More caches the node holds beside `cacheName` (its default cache), each served under
    /// `/v1/caches/NAME/…` and living in its own slot `concord:{NAME}`.
    public var additionalCacheNames: [String] = []

    /// The most caches one node holds.
    public static let maxCaches = 16

    /// Whether `name` can be a path segment of `/v1/caches/NAME` as it is.
    static func isPathSafeCacheName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "-")
            }
    }

    /// Every cache the node holds, the default first.
    public var cacheNames: [String] { [cacheName] + additionalCacheNames }

    /// `cacheConfiguration` for the cache named `name`.
    public func cacheConfiguration(named name: String) -> HybridCacheConfiguration {
        var configuration = cacheConfiguration
        configuration.cacheName = name
        return configuration
    }

    public var duration: Duration = .seconds(30)
    public var memoryDuration: Duration?
    /// On for nodes (unlike the library's default): a sidecar that turns a Redis outage into
    /// errors for every app behind it is worse than one that serves flagged stale values.
    public var isFailSafeEnabled: Bool = true
    public var failSafeMaxDuration: Duration = .seconds(3600)
    public var failSafeThrottleDuration: Duration = .seconds(30)
    public var factorySoftTimeout: Duration? = .milliseconds(100)
    public var factoryHardTimeout: Duration? = .seconds(2)
    public var maxDisconnectedStaleness: Duration = .seconds(5)
    public var reconnectBackoffBase: Duration = .milliseconds(100)
    public var reconnectBackoffCap: Duration = .seconds(2)
    public var maxKeyBytes: Int = 1024
    public var maxValueBytes: Int = 8 * 1024 * 1024
    public var memoryMaxEntries: Int = 100_000
    /// L1's bound in bytes: a quarter of the 1 GiB a sidecar container is commonly given, and
    /// half of the shipped Kubernetes limit, leaving room for the queue and the runtime.
    public var memoryMaxBytes: Int = 256 * 1024 * 1024
    public var pendingMaxEntries: Int = 10_000
    public var pendingMaxBytes: Int = 64 * 1024 * 1024
    /// Files of bearer tokens by scope; with none, the API is open (loopback only, unless
    /// `allowsUnauthenticated`).
    public var authTokenFile: String?
    public var adminTokenFile: String?
    public var metricsTokenFile: String?
    /// Lets a node bind beyond loopback without tokens, for networks that are trusted otherwise.
    public var allowsUnauthenticated: Bool = false
    /// PEM certificate chain and key: with both, the API is served over TLS.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// Connections past this wait in the listen backlog until one closes.
    public var maxConnections: Int = 1024
    /// A request's head and body must arrive within this, however slowly they trickle.
    public var requestTimeout: Duration = .seconds(30)
    /// Off only to show that coherence depends on it (the chaos harness's negative control).
    public var isBackplaneEnabled: Bool = true
    /// A file of backplane keys (one per line, the first signs); nil leaves messages unsigned.
    /// The path is configuration, the keys are read when the node starts and never logged.
    public var backplaneKeyFile: String?
    public var maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift
    /// Testing only: shifts this node's wall clock (versions, logical expiry) by this much.
    public var testClockOffset: Duration = .zero
    public var idleTimeout: Duration = .seconds(30)
    public var shutdownTimeout: Duration = .seconds(5)
    public var logLevel: Logger.Level = .info
    /// The RESP front end's port; nil serves HTTP only.
    public var respPort: Int?
    public var respMaxConnections: Int = 1024
    /// What RESP clients must send with AUTH; nil leaves the RESP port open (loopback only).
    public var respToken: String?
    /// When set, the node shuts down once this process is no longer its parent, so children of
    /// a killed `concord cluster` do not linger.
    public var parentProcessID: Int32?
    /// The OTLP/HTTP collector spans are exported to (`--otel-endpoint`, a base URL such as
    /// `http://127.0.0.1:4318`); nil bootstraps no tracer, so nothing is traced.
    public var otelEndpoint: String?
    /// The `service.name` resource attribute of the node's spans.
    public var otelServiceName: String = "concord-node"
    /// The share of root traces (requests without a `traceparent`) that are recorded; a
    /// request with one follows its caller's sampling decision.
    public var otelSampleRatio: Double = 1
    /// Which threads run Swift tasks; `concord` installs it before the node starts.
    public var executor: GlobalExecutor = GlobalExecutor.nodeDefault

    public init() {}

    /// The cache-wide configuration these settings give.
    public var cacheConfiguration: HybridCacheConfiguration {
        var configuration = HybridCacheConfiguration(cacheName: cacheName, nodeID: nodeID)
        configuration.defaultEntryOptions = entryOptions
        configuration.maxKeyBytes = maxKeyBytes
        configuration.maxValueBytes = maxValueBytes
        configuration.memory.maxEntries = memoryMaxEntries
        configuration.memoryMaxBytes = memoryMaxBytes
        // Each L1 shard holds an equal share of the bytes, and a value larger than a share is
        // not kept in L1: use fewer shards when the largest value would not fit in one.
        let largestEntry = maxValueBytes + maxKeyBytes + HybridCache.memoryEntryOverheadBytes
        var shards = configuration.memory.shardCount
        while shards > 1, memoryMaxBytes / shards < largestEntry { shards /= 2 }
        configuration.memory.shardCount = shards
        configuration.pendingWriteCapacity = pendingMaxEntries
        configuration.pendingWriteMaxBytes = pendingMaxBytes
        configuration.maxDisconnectedStaleness = maxDisconnectedStaleness
        // Queued writes retry on the same schedule as reconnects: both wait for the same Redis.
        configuration.retryBackoffBase = reconnectBackoffBase
        configuration.retryBackoffCap = reconnectBackoffCap
        configuration.shutdownDrainTimeout = shutdownTimeout
        configuration.maxClockDrift = maxClockDrift
        return configuration
    }

    /// The options applied to every entry the node reads or writes.
    public var entryOptions: CacheEntryOptions {
        var options = CacheEntryOptions(duration: duration)
        options.memoryDuration = memoryDuration
        options.isFailSafeEnabled = isFailSafeEnabled
        options.failSafeMaxDuration = failSafeMaxDuration
        options.failSafeThrottleDuration = failSafeThrottleDuration
        options.factorySoftTimeout = factorySoftTimeout
        options.factoryHardTimeout = factoryHardTimeout
        return options
    }

    /// The Redis client configuration: the URL's server and credentials with the node's backoff,
    /// named after the node so `CLIENT LIST` shows who is who.
    public func redisConfiguration() throws(NodeConfigurationError) -> RedisConfiguration {
        try redisConfiguration(cacheName: cacheName)
    }

    /// `redisConfiguration()` for the node's cache named `cacheName`.
    public func redisConfiguration(cacheName: String) throws(NodeConfigurationError) -> RedisConfiguration {
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: redisURL)
        } catch {
            throw NodeConfigurationError(.invalidURL, option: NodeOption.redis.name, source: .combination, value: nil, message: error.message)
        }
        if let redisUser { configuration.username = redisUser }
        if let redisPasswordFile {
            configuration.password = try SecretFile.firstLine(of: redisPasswordFile, option: .redisPasswordFile)
        }
        configuration.reconnect = .init(backoffBase: reconnectBackoffBase, backoffCap: reconnectBackoffCap)
        if configuration.tls != nil {
            configuration.tls = tls
        }
        if let sentinelUsername { configuration.sentinel?.username = sentinelUsername }
        if let sentinelPasswordFile {
            configuration.sentinel?.password = try SecretFile.firstLine(of: sentinelPasswordFile, option: .sentinelPasswordFile)
        }
        configuration.clientName = "concord-\(cacheName)-\(nodeID)"
        return configuration
    }

    /// How an HTTP origin is reached: the pool bound, the value limit, and a deadline of the
    /// factory's hard timeout (or 5 s without one), so a slow upstream is a factory error.
    public var httpOriginConfiguration: HTTPOrigin.Configuration {
        var configuration = HTTPOrigin.Configuration()
        configuration.maxConnections = originMaxConnections
        configuration.maxValueBytes = maxValueBytes
        configuration.respectsCacheControl = originRespectsCacheControl
        configuration.timeout = factoryHardTimeout ?? .seconds(5)
        return configuration
    }

    /// The backplane keys from `backplaneKeyFile`: each non-empty line (surrounding whitespace
    /// trimmed) is a key of at least 16 bytes; one or two keys. Nil without a key file.
    public func backplaneKeys() throws(NodeConfigurationError) -> [[UInt8]]? {
        guard let path = backplaneKeyFile else { return nil }
        func failure(_ message: String) -> NodeConfigurationError {
            NodeConfigurationError(.invalidKeyFile, option: NodeOption.backplaneKeyFile.name, source: .combination, value: path, message: message)
        }
        guard let file = fopen(path, "rb") else { throw failure("cannot be opened (\(String(cString: strerror(errno))))") }
        defer { fclose(file) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            contents.append(contentsOf: buffer[0..<count])
            if contents.count > 64 * 1024 { throw failure("is larger than 64 KiB; it should hold one or two keys") }
        }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        var keys: [[UInt8]] = []
        for line in contents.split(separator: 0x0A) {
            let trimmed = line.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
            if !trimmed.isEmpty { keys.append(Array(trimmed)) }
        }
        guard !keys.isEmpty else { throw failure("holds no key") }
        guard keys.count <= 2 else { throw failure("holds \(keys.count) keys; at most two (current, then previous)") }
        guard keys.allSatisfy({ $0.count >= 16 }) else { throw failure("holds a key shorter than 16 bytes") }
        return keys
    }

    /// The Memcached client configuration for `memcachedURL`, with the node's backoff; nil when L2 is Redis.
    public func memcachedConfiguration() throws(NodeConfigurationError) -> MemcachedConfiguration? {
        guard let memcachedURL else { return nil }
        var configuration: MemcachedConfiguration
        do {
            configuration = try MemcachedConfiguration(url: memcachedURL)
        } catch {
            throw NodeConfigurationError(.invalidURL, option: NodeOption.l2.name, source: .combination, value: nil, message: error.message)
        }
        // Memcached reconnects are cheap, and every node must put a returning server back on its
        // ring at nearly the same time (until then, nodes route its keys differently), so the
        // backoff is capped at 250 ms whatever the Redis one is.
        let cap = min(reconnectBackoffCap, .milliseconds(250))
        configuration.reconnect = .init(backoffBase: min(reconnectBackoffBase, cap), backoffCap: cap)
        return configuration
    }

    /// The address clients use, e.g. `http://127.0.0.1:7001`.
    public var baseURL: String {
        let host = bindHost.contains(":") ? "[\(bindHost)]" : bindHost
        return "\(isTLSEnabled ? "https" : "http")://\(host):\(port)"
    }

    /// Whether the API is served over TLS.
    public var isTLSEnabled: Bool { tlsCertificateFile != nil }

    /// Whether any token file is set, so that requests need a bearer token.
    public var requiresTokens: Bool { authTokenFile != nil || adminTokenFile != nil }

    /// The Redis URL with any password or token in it replaced by `***`, for logs and messages.
    public var redactedRedisURL: String { RedisConfiguration.redacted(url: redisURL) }

    /// Whether `bindHost` is reachable only from this machine.
    public var bindsLoopbackOnly: Bool {
        let host = bindHost.lowercased()
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
