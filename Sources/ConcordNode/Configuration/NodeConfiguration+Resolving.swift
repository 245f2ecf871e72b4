import Foundation
import Concord
import ConcordMemcached
import ConcordRedis
import Logging

extension NodeConfiguration {
    /// Resolves every setting from flags and the environment: a flag wins over its `CONCORD_*`
    /// variable, which wins over the default. `flags` maps long flag names without dashes
    /// (`"duration"`) to the text typed; toggles map to `"true"` or `"false"`. An environment
    /// variable set to the empty string counts as unset, as shells make that easy to do by
    /// accident. The first bad value throws, naming the flag or variable it came from.
    public init(flags: [String: String], environment: [String: String]) throws(NodeConfigurationError) {
        self.init()
        if let unknown = flags.keys.sorted().first(where: { NodeOption.named($0) == nil }) {
            throw NodeConfigurationError(.unknownOption, option: unknown, source: .flag, value: nil, message: "is not a node option")
        }
        let resolver = OptionResolver(flags: flags, environment: environment)

        if let id = try resolver.string(.id) {
            guard CacheVersion.isValidNode(id) else {
                throw resolver.error(.id, .outOfRange, "must be 1–64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
            }
            nodeID = id
        }
        if let host = try resolver.string(.bind) { bindHost = host }
        if let port = try resolver.integer(.port, in: 0...65_535) { self.port = port }
        if let url = try resolver.string(.redis) {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                throw resolver.error(.redis, .invalidURL, "is not a Redis URL: \(error.message)", showValue: false)
            }
            redisURL = url
        }
        if let path = try resolver.string(.tlsCAFile) { tls.caFile = path }
        if let path = try resolver.string(.tlsCertFile) { tls.certificateFile = path }
        if let path = try resolver.string(.tlsKeyFile) { tls.privateKeyFile = path }
        if let name = try resolver.string(.tlsServerName) { tls.serverName = name }
        if let value = try resolver.boolean(.tlsInsecureSkipVerify) { tls.insecureSkipVerify = value }
        if let user = try resolver.string(.sentinelUsername) { sentinelUsername = user }
        if let path = try resolver.string(.sentinelPasswordFile) { sentinelPasswordFile = path }
        if let user = try resolver.string(.redisUser) { redisUser = user }
        if let path = try resolver.string(.redisPasswordFile) { redisPasswordFile = path }
        if let text = try resolver.string(.l2), text.lowercased() != "redis" {
            do {
                _ = try MemcachedConfiguration(url: text)
            } catch {
                throw resolver.error(.l2, .invalidURL, "is neither 'redis' nor a memcached:// URL: \(error.message)")
            }
            memcachedURL = text
        }
        if let text = try resolver.string(.origin) {
            guard let location = OriginLocation(parsing: text) else {
                throw resolver.error(.origin, .invalidOrigin, "is not an origin; expected sqlite:PATH or an http(s):// URL with {key}")
            }
            origin = location
        }
        if let value = try resolver.boolean(.originCacheControl) { originRespectsCacheControl = value }
        if let value = try resolver.integer(.originMaxConnections, in: 1...1024) { originMaxConnections = value }
        if let names = try resolver.string(.cacheName) {
            // Several caches: `--cache-name a --cache-name b` or `a,b`; the first is the default.
            let list = names.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            cacheName = list[0]
            additionalCacheNames = Array(list.dropFirst())
        }

        if let value = try resolver.duration(.duration) { duration = value }
        if let value = try resolver.optionalDuration(.memoryDuration) { memoryDuration = value }
        if let value = try resolver.boolean(.failSafe) { isFailSafeEnabled = value }
        if let value = try resolver.duration(.failSafeMaxDuration) { failSafeMaxDuration = value }
        if let value = try resolver.duration(.failSafeThrottle) { failSafeThrottleDuration = value }
        if let value = try resolver.optionalDuration(.factorySoftTimeout) { factorySoftTimeout = value }
        if let value = try resolver.optionalDuration(.factoryHardTimeout) { factoryHardTimeout = value }
        if let value = try resolver.duration(.maxDisconnectedStaleness) { maxDisconnectedStaleness = value }
        if let value = try resolver.duration(.reconnectBackoffBase) { reconnectBackoffBase = value }
        if let value = try resolver.duration(.reconnectBackoffCap) { reconnectBackoffCap = value }
        if let value = try resolver.size(.maxKeyBytes, in: 1...(64 * 1024)) { maxKeyBytes = value }
        // Redis refuses strings over 512 MiB, so larger limits could never be honoured.
        if let value = try resolver.size(.maxValueBytes, in: 1...(512 * 1024 * 1024)) { maxValueBytes = value }
        if let value = try resolver.integer(.memoryMaxEntries, in: 1...Int(Int32.max)) { memoryMaxEntries = value }
        if let value = try resolver.size(.memoryMaxBytes, in: (1024 * 1024)...(1 << 40)) { memoryMaxBytes = value }
        if let value = try resolver.integer(.pendingMaxEntries, in: 1...10_000_000) { pendingMaxEntries = value }
        if let value = try resolver.size(.pendingMaxBytes, in: 1...(1 << 40)) { pendingMaxBytes = value }
        if let path = try resolver.string(.authTokenFile) { authTokenFile = path }
        if let path = try resolver.string(.adminTokenFile) { adminTokenFile = path }
        if let path = try resolver.string(.metricsTokenFile) { metricsTokenFile = path }
        if let value = try resolver.boolean(.allowUnauthenticated) { allowsUnauthenticated = value }
        if let path = try resolver.string(.tlsCert) { tlsCertificateFile = path }
        if let path = try resolver.string(.tlsKey) { tlsKeyFile = path }
        if let value = try resolver.integer(.maxConnections, in: 1...1_000_000) { maxConnections = value }
        if let value = try resolver.duration(.requestTimeout) { requestTimeout = value }
        if let value = try resolver.boolean(.backplane) { isBackplaneEnabled = value }
        if let value = try resolver.string(.backplaneKeyFile) { backplaneKeyFile = value }
        if let value = try resolver.duration(.maxClockDrift) { maxClockDrift = value }
        if let raw = try resolver.string(.testClockOffset) {
            let isNegative = raw.hasPrefix("-")
            guard let magnitude = DurationSyntax.parse(isNegative ? String(raw.dropFirst()) : raw), magnitude <= .seconds(86_400) else {
                throw resolver.error(.testClockOffset, .invalidDuration, "is not a duration of at most a day, optionally preceded by '-'")
            }
            testClockOffset = isNegative ? .zero - magnitude : magnitude
        }
        if let value = try resolver.duration(.idleTimeout) { idleTimeout = value }
        if let value = try resolver.duration(.shutdownTimeout) { shutdownTimeout = value }
        if let text = try resolver.string(.logLevel) {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw resolver.error(.logLevel, .invalidChoice, "is not a log level; use trace, debug, info, notice, warning, error or critical")
            }
            logLevel = level
        }
        if let value = try resolver.string(.respPort) {
            if ["off", "none"].contains(value.lowercased()) {
                respPort = nil
            } else if let port = try resolver.integer(.respPort, in: 0...65535) {
                respPort = port
            }
        }
        if let value = try resolver.integer(.respMaxConnections, in: 1...1_000_000) { respMaxConnections = value }
        if let path = try resolver.string(.respTokenFile) {
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8),
                  case let token = contents.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty, !token.contains("\n")
            else {
                throw resolver.error(.respTokenFile, .outOfRange, "cannot be read, or does not hold one password on one line")
            }
            respToken = token
        }
        if let text = try resolver.string(.executor) {
            guard let choice = GlobalExecutor(parsing: text) else {
                throw resolver.error(.executor, .invalidChoice, "is not an executor; use \(GlobalExecutor.choices)")
            }
            executor = choice
        }
        if let pid = try resolver.integer(.parentPID, in: 1...Int(Int32.max)) { parentProcessID = Int32(pid) }
        if let text = try resolver.string(.otelEndpoint) {
            do {
                _ = try Self.otlpTracesURL(collector: text)
            } catch {
                throw resolver.error(.otelEndpoint, .invalidURL, "is not an OTLP/HTTP collector URL: \(error.message)", showValue: !text.contains("@"))
            }
            otelEndpoint = text
        }
        if let name = try resolver.string(.otelServiceName) {
            guard name.utf8.count <= 255, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw resolver.error(.otelServiceName, .outOfRange, "must be 1–255 bytes with no control character")
            }
            otelServiceName = name
        }
        if let raw = try resolver.string(.otelSampleRatio) {
            guard let ratio = Double(raw), ratio.isFinite, (0...1).contains(ratio) else {
                throw resolver.error(.otelSampleRatio, .outOfRange, "is not a ratio from 0 to 1, such as 0.1")
            }
            otelSampleRatio = ratio
        }

        try validate()
        // The files are read now too, so a missing or empty one stops the node at start with
        // its flag named, rather than at the first request or Redis connection.
        _ = try AccessTokens(configuration: self)
        _ = try NodeTLS.serverConfiguration(self)
        _ = try redisConfiguration()
    }

    /// Checks the settings together, as the cache and the Redis client would, so a bad
    /// combination is a clear error at start rather than a failure later.
    public func validate() throws(NodeConfigurationError) {
        func combination(_ option: NodeOption, _ message: String) -> NodeConfigurationError {
            NodeConfigurationError(.outOfRange, option: option.name, source: .combination, value: nil, message: message)
        }
        guard !bindHost.isEmpty else { throw combination(.bind, "must not be empty") }
        guard duration > .zero else { throw combination(.duration, "must be longer than 0s") }
        if let memoryDuration, memoryDuration <= .zero { throw combination(.memoryDuration, "must be longer than 0s") }
        guard failSafeMaxDuration > .zero else { throw combination(.failSafeMaxDuration, "must be longer than 0s") }
        if let soft = factorySoftTimeout, soft <= .zero { throw combination(.factorySoftTimeout, "must be longer than 0s, or off") }
        if let hard = factoryHardTimeout, hard <= .zero { throw combination(.factoryHardTimeout, "must be longer than 0s, or off") }
        if let soft = factorySoftTimeout, let hard = factoryHardTimeout, soft > hard {
            throw combination(.factorySoftTimeout, "(\(DurationSyntax.format(soft))) must not be longer than --factory-hard-timeout (\(DurationSyntax.format(hard)))")
        }
        guard maxDisconnectedStaleness > .zero else { throw combination(.maxDisconnectedStaleness, "must be longer than 0s") }
        guard reconnectBackoffBase > .zero else { throw combination(.reconnectBackoffBase, "must be longer than 0s") }
        guard reconnectBackoffCap >= reconnectBackoffBase else {
            throw combination(.reconnectBackoffCap, "(\(DurationSyntax.format(reconnectBackoffCap))) must not be shorter than --reconnect-backoff-base (\(DurationSyntax.format(reconnectBackoffBase)))")
        }
        guard idleTimeout > .zero else { throw combination(.idleTimeout, "must be longer than 0s") }
        if (tls.certificateFile == nil) != (tls.privateKeyFile == nil) {
            throw combination(tls.certificateFile == nil ? .tlsKeyFile : .tlsCertFile, "needs both --redis-tls-cert-file and --redis-tls-key-file")
        }
        let usesTLS = redisURL.lowercased().hasPrefix("rediss")
        if !usesTLS, tls != RedisConfiguration.TLS() {
            throw combination(.tlsCAFile, "TLS options apply to rediss:// URLs only; --redis is not one")
        }
        if !redisURL.lowercased().contains("+sentinel://"), sentinelUsername != nil || sentinelPasswordFile != nil {
            throw combination(.sentinelPasswordFile, "Sentinel options apply to redis+sentinel:// URLs only")
        }
        guard maxClockDrift > .zero else { throw combination(.maxClockDrift, "must be longer than 0s") }
        if let otelEndpoint {
            do {
                _ = try Self.otlpTracesURL(collector: otelEndpoint)
            } catch {
                throw NodeConfigurationError(.invalidURL, option: NodeOption.otelEndpoint.name, source: .combination, value: error.value, message: "is not an OTLP/HTTP collector URL: \(error.message)")
            }
        }
        guard otelSampleRatio.isFinite, (0...1).contains(otelSampleRatio) else { throw combination(.otelSampleRatio, "must be from 0 to 1") }
        guard requestTimeout > .zero else { throw combination(.requestTimeout, "must be longer than 0s") }
        guard maxConnections > 0 else { throw combination(.maxConnections, "must be at least 1") }
        guard memoryMaxBytes > 0 else { throw combination(.memoryMaxBytes, "must be positive") }
        guard pendingMaxEntries > 0 else { throw combination(.pendingMaxEntries, "must be at least 1") }
        guard pendingMaxBytes >= maxValueBytes else {
            throw combination(.pendingMaxBytes, "(\(ByteSizeSyntax.format(pendingMaxBytes))) must hold at least one value of --max-value-bytes (\(ByteSizeSyntax.format(maxValueBytes)))")
        }
        if (tlsCertificateFile == nil) != (tlsKeyFile == nil) {
            throw combination(tlsCertificateFile == nil ? .tlsCert : .tlsKey, "is needed with --\(tlsCertificateFile == nil ? NodeOption.tlsKey.name : NodeOption.tlsCert.name)")
        }
        if !bindsLoopbackOnly, !requiresTokens, !allowsUnauthenticated {
            throw NodeConfigurationError(
                .unauthenticatedBind, option: NodeOption.authTokenFile.name, source: .combination, value: nil,
                message: "is required (or --admin-token-file) when --bind is not a loopback address ('\(bindHost)'): anyone who reaches the port could read and overwrite the cache. Give token files, or --allow-unauthenticated to accept that"
            )
        }
        // RESP's AUTH accepts the node's bearer tokens too, so token files protect that port as well.
        if respPort != nil, respToken == nil, !requiresTokens, !bindsLoopbackOnly {
            throw combination(.respTokenFile, "(or --auth-token-file / --admin-token-file) is required when --bind is not a loopback address ('\(bindHost)') and --resp-port is set: anyone who reaches the port could read and overwrite the cache")
        }
        if !additionalCacheNames.isEmpty {
            let names = [cacheName] + additionalCacheNames
            guard names.count <= Self.maxCaches else {
                throw combination(.cacheName, "names \(names.count) caches; a node holds at most \(Self.maxCaches)")
            }
            // Each name is a path segment of the API (`/v1/caches/NAME/…`), so it stays URL-safe.
            if let bad = names.first(where: { !Self.isPathSafeCacheName($0) }) {
                throw combination(.cacheName, "'\(bad)' is not a cache name a node can serve beside others: 1–64 of [A-Za-z0-9._-]")
            }
            guard Set(names).count == names.count else { throw combination(.cacheName, "names a cache twice") }
        }
        do {
            try cacheConfiguration.validate()
        } catch {
            // The cache's own checks cover what is left (the cache name's characters, mostly).
            let message = (error as? CacheError)?.message ?? "\(error)"
            throw NodeConfigurationError(.outOfRange, option: NodeOption.cacheName.name, source: .combination, value: nil, message: message)
        }
    }
}

/// Finds each option's text (flag first, then environment) and parses it, remembering where
/// the text came from so errors can name it.
private struct OptionResolver {
    let flags: [String: String]
    let environment: [String: String]

    func text(_ option: NodeOption) -> (text: String, source: NodeConfigurationError.Source)? {
        if let value = flags[option.name] { return (value, .flag) }
        if let value = environment[option.environmentVariable], !value.isEmpty { return (value, .environment) }
        return nil
    }

    func error(_ option: NodeOption, _ code: NodeConfigurationError.Code, _ message: String, showValue: Bool = true) -> NodeConfigurationError {
        let found = text(option)
        return NodeConfigurationError(code, option: option.name, source: found?.source ?? .flag, value: showValue ? found?.text : nil, message: message)
    }

    func string(_ option: NodeOption) throws(NodeConfigurationError) -> String? {
        guard let (raw, _) = text(option) else { return nil }
        let value = raw.trimmingASCIIWhitespace()
        guard !value.isEmpty else { throw error(option, .outOfRange, "must not be empty") }
        return value
    }

    func duration(_ option: NodeOption) throws(NodeConfigurationError) -> Duration? {
        guard let raw = try string(option) else { return nil }
        guard let value = DurationSyntax.parse(raw) else {
            throw error(option, .invalidDuration, "is not a duration; write a number and a unit: 250ms, 30s, 5m or 1h")
        }
        return value
    }

    /// A duration, or `off`/`none` for no limit: `.some(nil)`.
    func optionalDuration(_ option: NodeOption) throws(NodeConfigurationError) -> Duration?? {
        guard let raw = try string(option) else { return nil }
        if ["off", "none"].contains(raw.lowercased()) { return .some(nil) }
        guard let value = DurationSyntax.parse(raw) else {
            throw error(option, .invalidDuration, "is not a duration; write a number and a unit (250ms, 30s, 5m, 1h) or off")
        }
        return .some(value)
    }

    func size(_ option: NodeOption, in range: ClosedRange<Int>) throws(NodeConfigurationError) -> Int? {
        guard let raw = try string(option) else { return nil }
        guard let value = ByteSizeSyntax.parse(raw) else {
            throw error(option, .invalidSize, "is not a size; write bytes or a unit: 1024, 64KiB, 8MiB")
        }
        guard range.contains(value) else {
            throw error(option, .outOfRange, "is out of range \(ByteSizeSyntax.format(range.lowerBound))…\(ByteSizeSyntax.format(range.upperBound))")
        }
        return value
    }

    func integer(_ option: NodeOption, in range: ClosedRange<Int>) throws(NodeConfigurationError) -> Int? {
        guard let raw = try string(option) else { return nil }
        guard raw.allSatisfy(\.isASCIIDigit), let value = Int(raw) else {
            throw error(option, .invalidInteger, "is not a whole number")
        }
        guard range.contains(value) else { throw error(option, .outOfRange, "is out of range \(range.lowerBound)…\(range.upperBound)") }
        return value
    }

    func boolean(_ option: NodeOption) throws(NodeConfigurationError) -> Bool? {
        guard let raw = try string(option) else { return nil }
        switch raw.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw error(option, .invalidBoolean, "is not a boolean; use true or false")
        }
    }
}
