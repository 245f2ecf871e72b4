/// One setting of `concord node`: its flag, its `CONCORD_*` environment variable, its default and
/// its help. The CLI builds its flags from this table and the README documents it, so the three
/// cannot drift apart.
public struct NodeOption: Sendable, Hashable {
    /// How the option is written on the command line.
    public enum Kind: Sendable, Hashable {
        /// `--name VALUE`.
        case value(valueName: String)
        /// `--name` / `--no-name`.
        case toggle
    }

    /// The long flag name without dashes, e.g. `fail-safe-max-duration`.
    public let name: String
    public let kind: Kind
    /// One line for `--help`.
    public let abstract: String
    /// The default as the user would type it.
    public let defaultText: String
    /// Left out of `--help`: for options that programs set, not people.
    public let isHidden: Bool

    init(_ name: String, _ kind: Kind, _ abstract: String, default defaultText: String, hidden: Bool = false) {
        self.name = name
        self.kind = kind
        self.abstract = abstract
        self.defaultText = defaultText
        self.isHidden = hidden
    }

    /// `--name`.
    public var flag: String { "--" + name }

    /// `CONCORD_NAME_IN_CAPITALS`.
    public var environmentVariable: String { Self.environmentVariable(for: name) }

    /// The abstract with the environment variable and the default, for `--help`.
    public var help: String { "\(abstract) (env \(environmentVariable); default \(defaultText))" }

    /// `CONCORD_` + the flag name in capitals with `_` for `-`.
    public static func environmentVariable(for name: String) -> String {
        "CONCORD_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }
}

extension NodeOption {
    public static let id = NodeOption("id", .value(valueName: "id"), "This node's id: 1–64 of [A-Za-z0-9._-], used in versions and logs", default: "a random node-xxxxxxxx")
    public static let bind = NodeOption("bind", .value(valueName: "host"), "Address the HTTP server listens on", default: "127.0.0.1")
    public static let port = NodeOption("port", .value(valueName: "port"), "HTTP port; 0 picks a free one (logged at start)", default: "7001")
    public static let redis = NodeOption("redis", .value(valueName: "url"), "Redis for L2 and the backplane: redis://host[:port][/db], rediss:// for TLS, redis+sentinel://host1:26379,host2:26379/master[/db] through Sentinel; give a password with --redis-password-file, not in the URL", default: "redis://127.0.0.1:6379")
    public static let redisUser = NodeOption("redis-user", .value(valueName: "name"), "Redis ACL user to authenticate as (with --redis-password-file)", default: "the default user")
    public static let redisPasswordFile = NodeOption("redis-password-file", .value(valueName: "path"), "File holding the Redis password (its first line); overrides a password in the URL", default: "none")
    public static let tlsCAFile = NodeOption("redis-tls-ca-file", .value(valueName: "path"), "PEM file of the CAs that sign Redis's certificate (rediss://)", default: "the system's trust roots")
    public static let tlsCertFile = NodeOption("redis-tls-cert-file", .value(valueName: "path"), "PEM client certificate for mutual TLS; needs --redis-tls-key-file", default: "none")
    public static let tlsKeyFile = NodeOption("redis-tls-key-file", .value(valueName: "path"), "PEM private key of --redis-tls-cert-file", default: "none")
    public static let tlsServerName = NodeOption("redis-tls-server-name", .value(valueName: "name"), "Name checked against Redis's certificate (and sent as SNI) when it differs from the host in the URL", default: "the URL's host")
    public static let tlsInsecureSkipVerify = NodeOption("redis-tls-insecure-skip-verify", .toggle, "Accept any Redis certificate: encrypted but not authenticated; logs a warning", default: "off")
    public static let sentinelUsername = NodeOption("sentinel-username", .value(valueName: "user"), "ACL user for the Sentinels, when it differs from the URL's", default: "the URL's user")
    public static let sentinelPasswordFile = NodeOption("sentinel-password-file", .value(valueName: "path"), "File holding the Sentinels' password (its first line), when it differs from the data servers'", default: "the Redis password")
    public static let l2 = NodeOption("l2", .value(valueName: "url"), "Where L2 lives: redis (the --redis server) or memcached://host[:port],host[:port]; with Memcached, --redis carries only the backplane", default: "redis")
    public static let origin = NodeOption("origin", .value(valueName: "location"), "Origin loaded on a miss: sqlite:PATH (table items(key, value, version)) or an upstream URL such as http://127.0.0.1:8080/items/{key}", default: "none, so GET of an absent key is a 404")
    public static let originCacheControl = NodeOption("origin-cache-control", .toggle, "With an HTTP origin, its Cache-Control sets the entry's duration (max-age, s-maxage) or keeps it out of the cache (no-store, no-cache, private)", default: "off")
    public static let originMaxConnections = NodeOption("origin-max-connections", .value(valueName: "count"), "With an HTTP origin, connections kept to it; more concurrent misses wait", default: "8")
    public static let cacheName = NodeOption(
        "cache-name", .value(valueName: "name"),
        "Cache name, the namespace in Redis (concord:{name}); repeat it (or give a,b,c) to hold several caches: the first is served at /v1/cache/KEY, each at /v1/caches/NAME/cache/KEY",
        default: "\"default\"")
    public static let duration = NodeOption("duration", .value(valueName: "duration"), "How long an entry is fresh", default: "30s")
    public static let memoryDuration = NodeOption("memory-duration", .value(valueName: "duration"), "How long an entry is fresh in L1, when it differs; 'off' for the same as --duration", default: "off")
    public static let failSafe = NodeOption("fail-safe", .toggle, "Serve the last value, flagged Concord-Stale: true, when Redis or the origin fails", default: "on")
    public static let failSafeMaxDuration = NodeOption("fail-safe-max-duration", .value(valueName: "duration"), "How long after its expiry a value may still be served by fail-safe", default: "1h")
    public static let failSafeThrottle = NodeOption("fail-safe-throttle", .value(valueName: "duration"), "After a fail-safe activation, serve the stale value this long before trying again", default: "30s")
    public static let factorySoftTimeout = NodeOption("factory-soft-timeout", .value(valueName: "duration"), "With a stale value at hand, wait this long for the origin before serving it; 'off' to wait", default: "100ms")
    public static let factoryHardTimeout = NodeOption("factory-hard-timeout", .value(valueName: "duration"), "Never wait longer than this for the origin; 'off' for no limit", default: "2s")
    public static let maxDisconnectedStaleness = NodeOption("max-disconnected-staleness", .value(valueName: "duration"), "Cut off from the backplane longer than this, L1 values are served only as flagged fail-safe values", default: "5s")
    public static let reconnectBackoffBase = NodeOption("reconnect-backoff-base", .value(valueName: "duration"), "First delay before reconnecting to Redis (and retrying queued writes); doubles per failure", default: "100ms")
    public static let reconnectBackoffCap = NodeOption("reconnect-backoff-cap", .value(valueName: "duration"), "Longest delay between reconnection attempts", default: "2s")
    public static let maxKeyBytes = NodeOption("max-key-bytes", .value(valueName: "size"), "Longest key accepted, in UTF-8 bytes", default: "1024")
    public static let maxValueBytes = NodeOption("max-value-bytes", .value(valueName: "size"), "Largest value accepted; larger PUT bodies get 413", default: "8MiB")
    public static let memoryMaxEntries = NodeOption("memory-max-entries", .value(valueName: "count"), "Most entries kept in L1", default: "100000")
    public static let backplane = NodeOption("backplane", .toggle, "Send and receive invalidations; --no-backplane leaves this node incoherent (for chaos checks)", default: "on")
    public static let memoryMaxBytes = NodeOption("memory-max-bytes", .value(valueName: "size"), "Most bytes kept in L1: each entry costs its key and value bytes plus a fixed overhead", default: "256MiB")
    public static let pendingMaxEntries = NodeOption("pending-max-entries", .value(valueName: "count"), "Most writes queued for Redis (background writes, writes during an outage); a full queue refuses writes with 503", default: "10000")
    public static let pendingMaxBytes = NodeOption("pending-max-bytes", .value(valueName: "size"), "Most value bytes queued for Redis; a full queue refuses writes with 503", default: "64MiB")
    public static let authTokenFile = NodeOption("auth-token-file", .value(valueName: "path"), "Bearer tokens with read scope (GET, stats), one per line; several allow rotation", default: "none")
    public static let adminTokenFile = NodeOption("admin-token-file", .value(valueName: "path"), "Bearer tokens with write scope (PUT, DELETE, invalidate, and reads), one per line", default: "none")
    public static let metricsTokenFile = NodeOption("metrics-token-file", .value(valueName: "path"), "Bearer tokens for /metrics, one per line; without it /metrics is open", default: "none")
    public static let allowUnauthenticated = NodeOption("allow-unauthenticated", .toggle, "Allow a non-loopback --bind without token files", default: "off")
    public static let tlsCert = NodeOption("tls-cert", .value(valueName: "path"), "PEM certificate chain: serve HTTPS (with --tls-key)", default: "none (plain HTTP)")
    public static let tlsKey = NodeOption("tls-key", .value(valueName: "path"), "PEM private key of --tls-cert", default: "none")
    public static let maxConnections = NodeOption("max-connections", .value(valueName: "count"), "Most open client connections; more wait in the listen backlog", default: "1024")
    public static let requestTimeout = NodeOption("request-timeout", .value(valueName: "duration"), "A request must arrive whole (head and body) within this long, however it trickles in", default: "30s")
    public static let idleTimeout = NodeOption("idle-timeout", .value(valueName: "duration"), "Close a connection that sends nothing for this long, half-sent request heads included", default: "30s")
    public static let shutdownTimeout = NodeOption("shutdown-timeout", .value(valueName: "duration"), "On SIGTERM/SIGINT, flush queued Redis writes for at most this long", default: "5s")
    public static let logLevel = NodeOption("log-level", .value(valueName: "level"), "trace, debug, info, notice, warning, error or critical", default: "info")
    public static let respPort = NodeOption("resp-port", .value(valueName: "port"), "Also serve the RESP front end (GET, SET, DEL, MGET, ... for any Redis client) on this port; 0 picks a free one", default: "off")
    public static let respMaxConnections = NodeOption("resp-max-connections", .value(valueName: "count"), "Most RESP client connections at once; more are refused with an error", default: "1024")
    public static let respTokenFile = NodeOption("resp-token-file", .value(valueName: "path"), "File holding a password RESP clients may send with AUTH to read and write; AUTH also accepts the node's bearer tokens (one of the two is required for a RESP port beyond loopback)", default: "none")
    public static let backplaneKeyFile = NodeOption("backplane-key-file", .value(valueName: "path"), "Sign and check every invalidation with HMAC-SHA256: a file of one key per line (at least 16 bytes; the first signs, a second is accepted during rotation); every node needs the same file", default: "none (messages unsigned)")
    public static let maxClockDrift = NodeOption("max-clock-drift", .value(valueName: "duration"), "Ignore (and count) messages and entries versioned further than this ahead of this node's clock", default: "1m")
    public static let otelEndpoint = NodeOption("otel-endpoint", .value(valueName: "url"), "Trace HTTP requests and cache work and export the spans over OTLP/HTTP (protobuf) to this collector, e.g. http://127.0.0.1:4318 (spans go to URL/v1/traces; a URL already ending in /v1/traces is used as is). OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_* and the other OTEL_* exporter variables apply", default: "off: no tracer, no spans")
    public static let otelServiceName = NodeOption("otel-service-name", .value(valueName: "name"), "With --otel-endpoint, the service.name of this node's spans", default: "concord-node")
    public static let otelSampleRatio = NodeOption("otel-sample-ratio", .value(valueName: "ratio"), "With --otel-endpoint, the share (0–1) of traces started here that are recorded; a request with a traceparent follows its caller's sampling decision", default: "1")
    public static let testClockOffset = NodeOption("test-clock-offset", .value(valueName: "duration"), "Testing only: run this node's wall clock offset by this much ('-30s' behind), to check coherence under clock skew", default: "0s", hidden: true)
    public static let executor = NodeOption(GlobalExecutor.optionName, .value(valueName: "nio|default"), "Which threads run the node's Swift tasks: nio installs SwiftNIO's event loops as Swift's global executor (an L2 command's caller and its Redis connection share a thread, no hand-off per command); default keeps Swift's cooperative pool. Read once at startup, logged", default: GlobalExecutor.nodeDefault.rawValue)
    public static let parentPID = NodeOption("parent-pid", .value(valueName: "pid"), "Shut down when this process is no longer the parent (set by concord cluster)", default: "none", hidden: true)

    /// Every option, in `--help` order.
    public static let all: [NodeOption] = [
        id, bind, port, redis, redisUser, redisPasswordFile, tlsCAFile, tlsCertFile, tlsKeyFile, tlsServerName,
        tlsInsecureSkipVerify, sentinelUsername, sentinelPasswordFile, l2, origin, originCacheControl, originMaxConnections, cacheName,
        duration, memoryDuration, failSafe, failSafeMaxDuration, failSafeThrottle,
        factorySoftTimeout, factoryHardTimeout, maxDisconnectedStaleness,
        reconnectBackoffBase, reconnectBackoffCap, maxKeyBytes, maxValueBytes, memoryMaxEntries,
        memoryMaxBytes, pendingMaxEntries, pendingMaxBytes,
        authTokenFile, adminTokenFile, metricsTokenFile, allowUnauthenticated, tlsCert, tlsKey,
        maxConnections, requestTimeout, backplane, backplaneKeyFile, maxClockDrift, idleTimeout, shutdownTimeout, logLevel, respPort, respMaxConnections, respTokenFile,
        otelEndpoint, otelServiceName, otelSampleRatio, executor, testClockOffset, parentPID,
    ]

    /// The option with this flag name, if any.
    public static func named(_ name: String) -> NodeOption? {
        all.first { $0.name == name }
    }
}
