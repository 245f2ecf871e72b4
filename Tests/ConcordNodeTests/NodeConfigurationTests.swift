import Concord
import ConcordMemcached
import ConcordNode
import Foundation
import Testing

@Suite("Node configuration")
struct NodeConfigurationTests {
    // MARK: - Resolution

    @Test("defaults match the documented ones")
    func defaults() throws {
        let configuration = try NodeConfiguration(flags: [:], environment: [:])
        #expect(configuration.bindHost == "127.0.0.1")
        #expect(configuration.port == 7001)
        #expect(configuration.redisURL == "redis://127.0.0.1:6379")
        #expect(configuration.origin == nil)
        #expect(configuration.cacheName == "default")
        #expect(configuration.duration == .seconds(30))
        #expect(configuration.memoryDuration == nil)
        #expect(configuration.isFailSafeEnabled)
        #expect(configuration.failSafeMaxDuration == .seconds(3600))
        #expect(configuration.failSafeThrottleDuration == .seconds(30))
        #expect(configuration.factorySoftTimeout == .milliseconds(100))
        #expect(configuration.factoryHardTimeout == .seconds(2))
        #expect(configuration.maxDisconnectedStaleness == .seconds(5))
        #expect(configuration.reconnectBackoffBase == .milliseconds(100))
        #expect(configuration.reconnectBackoffCap == .seconds(2))
        #expect(configuration.maxKeyBytes == 1024)
        #expect(configuration.maxValueBytes == 8 << 20)
        #expect(configuration.isBackplaneEnabled)
        #expect(configuration.logLevel == .info)
        #expect(configuration.nodeID.hasPrefix("node-"))
    }

    @Test("a bind beyond loopback needs a token file or --allow-unauthenticated; loopback does not", arguments: [
        ("0.0.0.0", false), ("10.1.2.3", false), ("::", false), ("127.0.0.1", true), ("127.3.4.5", true), ("::1", true), ("localhost", true),
    ])
    func unauthenticatedBind(host: String, allowed: Bool) {
        let result = Result { () throws(NodeConfigurationError) in try NodeConfiguration(flags: ["bind": host], environment: [:]) }
        switch result {
        case .success: #expect(allowed, "\(host) was accepted without tokens")
        case .failure(let error):
            #expect(!allowed, "\(host): \(error)")
            #expect(error.code == .unauthenticatedBind)
            #expect(error.description.hasPrefix("--auth-token-file"))
        }
    }

    @Test("every flag maps to its setting")
    func flagsMap() throws {
        let configuration = try NodeConfiguration(flags: [
            "id": "n1", "bind": "0.0.0.0", "port": "7002", "redis": "redis://:secret@10.0.0.5:6380/2",
            "origin": "sqlite:/tmp/items.db", "cache-name": "orders", "duration": "10s", "memory-duration": "2s",
            "fail-safe": "false", "fail-safe-max-duration": "2h", "fail-safe-throttle": "5s",
            "factory-soft-timeout": "off", "factory-hard-timeout": "3s", "max-disconnected-staleness": "1s",
            "reconnect-backoff-base": "50ms", "reconnect-backoff-cap": "1s", "max-key-bytes": "256",
            "max-value-bytes": "1MiB", "memory-max-entries": "500", "backplane": "false", "idle-timeout": "5s",
            "shutdown-timeout": "1s", "log-level": "debug", "parent-pid": "42",
            "allow-unauthenticated": "true", "memory-max-bytes": "32MiB", "pending-max-entries": "50",
            "pending-max-bytes": "2MiB", "max-connections": "10", "request-timeout": "3s", "redis-user": "app",
        ], environment: [:])
        #expect(configuration.allowsUnauthenticated)
        #expect(configuration.memoryMaxBytes == 32 << 20)
        #expect(configuration.pendingMaxEntries == 50)
        #expect(configuration.pendingMaxBytes == 2 << 20)
        #expect(configuration.maxConnections == 10)
        #expect(configuration.requestTimeout == .seconds(3))
        #expect(try configuration.redisConfiguration().username == "app")
        #expect(configuration.cacheConfiguration.memoryMaxBytes == 32 << 20)
        #expect(configuration.cacheConfiguration.pendingWriteCapacity == 50)
        #expect(configuration.cacheConfiguration.pendingWriteMaxBytes == 2 << 20)
        #expect(configuration.nodeID == "n1")
        #expect(configuration.bindHost == "0.0.0.0")
        #expect(configuration.port == 7002)
        #expect(configuration.redisURL == "redis://:secret@10.0.0.5:6380/2")
        #expect(configuration.origin == .sqlite(path: "/tmp/items.db"))
        #expect(configuration.cacheName == "orders")
        #expect(configuration.duration == .seconds(10))
        #expect(configuration.memoryDuration == .seconds(2))
        #expect(!configuration.isFailSafeEnabled)
        #expect(configuration.failSafeMaxDuration == .seconds(7200))
        #expect(configuration.failSafeThrottleDuration == .seconds(5))
        #expect(configuration.factorySoftTimeout == nil)
        #expect(configuration.factoryHardTimeout == .seconds(3))
        #expect(configuration.maxDisconnectedStaleness == .seconds(1))
        #expect(configuration.reconnectBackoffBase == .milliseconds(50))
        #expect(configuration.reconnectBackoffCap == .seconds(1))
        #expect(configuration.maxKeyBytes == 256)
        #expect(configuration.maxValueBytes == 1 << 20)
        #expect(configuration.memoryMaxEntries == 500)
        #expect(!configuration.isBackplaneEnabled)
        #expect(configuration.idleTimeout == .seconds(5))
        #expect(configuration.shutdownTimeout == .seconds(1))
        #expect(configuration.logLevel == .debug)
        #expect(configuration.parentProcessID == 42)

        // What the cache and Redis get.
        let cache = configuration.cacheConfiguration
        #expect(cache.cacheName == "orders")
        #expect(cache.nodeID == "n1")
        #expect(cache.maxValueBytes == 1 << 20)
        #expect(cache.memory.maxEntries == 500)
        #expect(cache.defaultEntryOptions.duration == .seconds(10))
        #expect(cache.defaultEntryOptions.memoryDuration == .seconds(2))
        #expect(!cache.defaultEntryOptions.isFailSafeEnabled)
        #expect(cache.defaultEntryOptions.factoryHardTimeout == .seconds(3))
        let redis = try configuration.redisConfiguration()
        #expect(redis.host == "10.0.0.5")
        #expect(redis.port == 6380)
        #expect(redis.database == 2)
        #expect(redis.password == "secret")
        #expect(redis.reconnect.backoffBase == .milliseconds(50))
        #expect(redis.reconnect.backoffCap == .seconds(1))
    }

    @Test("--l2 puts L2 on memcached servers, with Redis as the backplane; 'redis' keeps it on Redis")
    func memcachedL2() throws {
        let configuration = try NodeConfiguration(flags: [
            "l2": "memcached://10.0.0.5:11211,10.0.0.6", "reconnect-backoff-base": "50ms", "reconnect-backoff-cap": "1s",
        ], environment: [:])
        #expect(configuration.memcachedURL == "memcached://10.0.0.5:11211,10.0.0.6")
        let memcached = try #require(try configuration.memcachedConfiguration())
        #expect(memcached.servers == [.init(host: "10.0.0.5", port: 11211), .init(host: "10.0.0.6", port: 11211)])
        #expect(memcached.reconnect.backoffBase == .milliseconds(50))
        // Capped, so every node puts a returning server back on its ring at nearly the same time.
        #expect(memcached.reconnect.backoffCap == .milliseconds(250))
        #expect(try NodeConfiguration(flags: ["l2": "redis"], environment: [:]).memcachedURL == nil)
        #expect(try NodeConfiguration(flags: [:], environment: [:]).memcachedConfiguration() == nil)
    }

    @Test("environment variables are read when no flag is given")
    func environmentApplies() throws {
        let configuration = try NodeConfiguration(flags: [:], environment: [
            "CONCORD_PORT": "7100", "CONCORD_DURATION": "1m", "CONCORD_FAIL_SAFE": "no",
            "CONCORD_MAX_VALUE_BYTES": "64KiB", "CONCORD_CACHE_NAME": "env-cache", "UNRELATED": "x",
        ])
        #expect(configuration.port == 7100)
        #expect(configuration.duration == .seconds(60))
        #expect(!configuration.isFailSafeEnabled)
        #expect(configuration.maxValueBytes == 65_536)
        #expect(configuration.cacheName == "env-cache")
    }

    @Test("a flag wins over its environment variable, which wins over the default")
    func precedence() throws {
        let environment = ["CONCORD_PORT": "7100", "CONCORD_DURATION": "1m", "CONCORD_BACKPLANE": "false"]
        let configuration = try NodeConfiguration(flags: ["port": "7200", "backplane": "true"], environment: environment)
        #expect(configuration.port == 7200)
        #expect(configuration.isBackplaneEnabled)
        #expect(configuration.duration == .seconds(60))
        #expect(configuration.reconnectBackoffCap == .seconds(2))
    }

    @Test("an empty environment variable counts as unset")
    func emptyEnvironment() throws {
        let configuration = try NodeConfiguration(flags: [:], environment: ["CONCORD_PORT": "", "CONCORD_ORIGIN": ""])
        #expect(configuration.port == 7001)
        #expect(configuration.origin == nil)
    }

    // MARK: - Bad values

    struct BadValue: Sendable, CustomTestStringConvertible {
        var flags: [String: String] = [:]
        var environment: [String: String] = [:]
        var code: NodeConfigurationError.Code
        var option: String
        var source: NodeConfigurationError.Source
        var testDescription: String { "\(flags)\(environment) → \(code)" }
    }

    @Test("bad values throw typed errors naming the option", arguments: [
        BadValue(flags: ["duration": "30"], code: .invalidDuration, option: "duration", source: .flag),
        BadValue(environment: ["CONCORD_DURATION": "soon"], code: .invalidDuration, option: "duration", source: .environment),
        BadValue(flags: ["factory-hard-timeout": "2 s"], code: .invalidDuration, option: "factory-hard-timeout", source: .flag),
        BadValue(flags: ["max-value-bytes": "lots"], code: .invalidSize, option: "max-value-bytes", source: .flag),
        BadValue(flags: ["max-value-bytes": "1GiB"], code: .outOfRange, option: "max-value-bytes", source: .flag),
        BadValue(flags: ["max-key-bytes": "0"], code: .outOfRange, option: "max-key-bytes", source: .flag),
        BadValue(flags: ["port": "http"], code: .invalidInteger, option: "port", source: .flag),
        BadValue(environment: ["CONCORD_PORT": "70000"], code: .outOfRange, option: "port", source: .environment),
        BadValue(flags: ["port": "-1"], code: .invalidInteger, option: "port", source: .flag),
        BadValue(environment: ["CONCORD_FAIL_SAFE": "maybe"], code: .invalidBoolean, option: "fail-safe", source: .environment),
        BadValue(flags: ["redis": "http://localhost"], code: .invalidURL, option: "redis", source: .flag),
        BadValue(flags: ["l2": "memcached://h:0"], code: .invalidURL, option: "l2", source: .flag),
        BadValue(environment: ["CONCORD_L2": "cassandra://h"], code: .invalidURL, option: "l2", source: .environment),
        BadValue(flags: ["origin": "postgres://db"], code: .invalidOrigin, option: "origin", source: .flag),
        BadValue(flags: ["origin": "sqlite:"], code: .invalidOrigin, option: "origin", source: .flag),
        BadValue(flags: ["log-level": "loud"], code: .invalidChoice, option: "log-level", source: .flag),
        BadValue(flags: ["executor": "fast"], code: .invalidChoice, option: "executor", source: .flag),
        BadValue(environment: ["CONCORD_EXECUTOR": "dispatch"], code: .invalidChoice, option: "executor", source: .environment),
        BadValue(flags: ["id": "node one"], code: .outOfRange, option: "id", source: .flag),
        BadValue(flags: ["bind": ""], code: .outOfRange, option: "bind", source: .flag),
        BadValue(flags: ["duration": "0s"], code: .outOfRange, option: "duration", source: .combination),
        BadValue(flags: ["reconnect-backoff-base": "5s", "reconnect-backoff-cap": "1s"], code: .outOfRange, option: "reconnect-backoff-cap", source: .combination),
        BadValue(flags: ["factory-soft-timeout": "3s", "factory-hard-timeout": "1s"], code: .outOfRange, option: "factory-soft-timeout", source: .combination),
        BadValue(flags: ["cache-name": "has space"], code: .outOfRange, option: "cache-name", source: .combination),
        BadValue(flags: ["no-such-flag": "1"], code: .unknownOption, option: "no-such-flag", source: .flag),
        BadValue(flags: ["redis": "rediss://h", "redis-tls-cert-file": "c.pem"], code: .outOfRange, option: "redis-tls-cert-file", source: .combination),
        BadValue(flags: ["redis": "rediss://h", "redis-tls-key-file": "k.pem"], code: .outOfRange, option: "redis-tls-key-file", source: .combination),
        BadValue(flags: ["redis-tls-ca-file": "ca.pem"], code: .outOfRange, option: "redis-tls-ca-file", source: .combination),
        BadValue(environment: ["CONCORD_SENTINEL_PASSWORD_FILE": "/pw"], code: .outOfRange, option: "sentinel-password-file", source: .combination),
        BadValue(flags: ["redis": "redis+sentinel://s1,s2"], code: .invalidURL, option: "redis", source: .flag),
        BadValue(flags: ["redis": "rediss://h", "redis-tls-insecure-skip-verify": "perhaps"], code: .invalidBoolean, option: "redis-tls-insecure-skip-verify", source: .flag),
    ])
    func badValues(_ bad: BadValue) {
        #expect {
            try NodeConfiguration(flags: bad.flags, environment: bad.environment)
        } throws: { error in
            guard let error = error as? NodeConfigurationError else { return false }
            return error.code == bad.code && error.option == bad.option && error.source == bad.source
        }
    }

    @Test("error messages name the flag or the variable the user wrote")
    func errorMessages() {
        do {
            _ = try NodeConfiguration(flags: ["duration": "5x"], environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("--duration: '5x'"))
        }
        do {
            _ = try NodeConfiguration(flags: [:], environment: ["CONCORD_MAX_VALUE_BYTES": "big"])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("CONCORD_MAX_VALUE_BYTES: 'big'"))
        }
        // A Redis URL may carry a password: the message does not echo the value.
        do {
            _ = try NodeConfiguration(flags: ["redis": "rediss://user:hunter2@host:notaport"], environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test("TLS and Sentinel options reach the Redis configuration")
    func tlsAndSentinel() throws {
        let tls = try NodeConfiguration(
            flags: [
                "redis": "rediss://cache.example.com:6380", "redis-tls-ca-file": "/etc/ca.pem", "redis-tls-cert-file": "/etc/node.pem",
                "redis-tls-key-file": "/etc/node.key", "redis-tls-server-name": "redis.internal",
            ],
            environment: ["CONCORD_REDIS_TLS_INSECURE_SKIP_VERIFY": "false"])
        let redis = try tls.redisConfiguration()
        #expect(redis.host == "cache.example.com" && redis.port == 6380)
        #expect(redis.tls?.caFile == "/etc/ca.pem")
        #expect(redis.tls?.certificateFile == "/etc/node.pem" && redis.tls?.privateKeyFile == "/etc/node.key")
        #expect(redis.tls?.serverName == "redis.internal")
        #expect(redis.tls?.insecureSkipVerify == false)
        #expect(redis.sentinel == nil)

        let sentinel = try NodeConfiguration(
            flags: ["redis": "redis+sentinel://:data@10.0.0.1,10.0.0.2:26380/cache/2", "sentinel-username": "watcher"],
            environment: [:])
        let viaSentinel = try sentinel.redisConfiguration()
        #expect(viaSentinel.sentinel?.masterName == "cache")
        #expect(viaSentinel.sentinel?.endpoints.map(\.port) == [26379, 26380])
        #expect(viaSentinel.sentinel?.username == "watcher" && viaSentinel.sentinel?.password == "data")
        #expect(viaSentinel.password == "data" && viaSentinel.database == 2)
        #expect(viaSentinel.tls == nil)

        // Without Sentinel options the URL's credentials go to the Sentinels too.
        let shared = try NodeConfiguration(flags: ["redis": "redis+sentinel://:data@s1/cache"], environment: [:]).redisConfiguration()
        #expect(shared.sentinel?.password == "data")
    }

    @Test("'off' disables optional durations")
    func offDurations() throws {
        let configuration = try NodeConfiguration(flags: ["factory-soft-timeout": "off", "factory-hard-timeout": "none", "memory-duration": "OFF"], environment: [:])
        #expect(configuration.factorySoftTimeout == nil)
        #expect(configuration.factoryHardTimeout == nil)
        #expect(configuration.memoryDuration == nil)
    }

    @Test("origin locations", arguments: [
        ("sqlite:items.db", "items.db"), ("sqlite:/var/lib/concord/items.db", "/var/lib/concord/items.db"), ("sqlite:///abs/x.db", "/abs/x.db"),
    ])
    func originLocations(text: String, path: String) {
        #expect(OriginLocation(parsing: text) == .sqlite(path: path))
    }

    @Test("every option has a CONCORD_ variable and a help line; the table has no duplicates")
    func optionTable() {
        let names = NodeOption.all.map(\.name)
        #expect(Set(names).count == names.count)
        for option in NodeOption.all {
            #expect(option.environmentVariable.hasPrefix("CONCORD_"))
            #expect(!option.environmentVariable.contains("-"))
            #expect(option.help.contains(option.environmentVariable))
        }
        #expect(NodeOption.maxDisconnectedStaleness.environmentVariable == "CONCORD_MAX_DISCONNECTED_STALENESS")
    }

    // MARK: - Global executor

    @Test("executor: the node's default, a flag over the variable, any case")
    func executorOption() throws {
        #expect(try NodeConfiguration(flags: [:], environment: [:]).executor == GlobalExecutor.nodeDefault)
        #expect(try NodeConfiguration(flags: ["executor": "default"], environment: [:]).executor == .standard)
        #expect(try NodeConfiguration(flags: [:], environment: ["CONCORD_EXECUTOR": " NIO "]).executor == .nio)
        #expect(try NodeConfiguration(flags: ["executor": "nio"], environment: ["CONCORD_EXECUTOR": "default"]).executor == .nio)
        #expect(try NodeConfiguration(flags: [:], environment: ["CONCORD_EXECUTOR": ""]).executor == GlobalExecutor.nodeDefault)
        #expect(NodeOption.executor.environmentVariable == GlobalExecutor.environmentVariable)
        #expect(NodeOption.executor.defaultText == GlobalExecutor.nodeDefault.rawValue)
    }

    struct ExecutorRequest: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var environment: [String: String] = [:]
        var fallback: GlobalExecutor = .standard
        var expected: GlobalExecutor?
        var testDescription: String { "\(arguments) \(environment) fallback \(fallback) → \(expected.map(\.rawValue) ?? "invalid")" }
    }

    /// What `concord`'s entry point installs before the command line is parsed properly: it
    /// must agree with `NodeConfiguration` on every spelling, and leave bad values to it.
    @Test("executor read from the raw command line before parsing", arguments: [
        ExecutorRequest(arguments: ["--port", "0"], expected: .standard),
        ExecutorRequest(arguments: ["--port", "0"], fallback: .nio, expected: .nio),
        ExecutorRequest(arguments: ["--executor", "nio"], expected: .nio),
        ExecutorRequest(arguments: ["--executor=default", "--port", "0"], fallback: .nio, expected: .standard),
        ExecutorRequest(arguments: ["--executor", "nio", "--executor", "default"], expected: .standard),
        ExecutorRequest(arguments: ["--executor", "Default"], fallback: .nio, expected: .standard),
        ExecutorRequest(arguments: [], environment: ["CONCORD_EXECUTOR": "nio"], expected: .nio),
        ExecutorRequest(arguments: [], environment: ["CONCORD_EXECUTOR": "  "], fallback: .nio, expected: .nio),
        ExecutorRequest(arguments: ["--executor", "default"], environment: ["CONCORD_EXECUTOR": "nio"], expected: .standard),
        ExecutorRequest(arguments: ["--", "--executor", "nio"], expected: .standard),
        ExecutorRequest(arguments: ["--executor"], fallback: .nio, expected: nil),
        ExecutorRequest(arguments: ["--executor", "threads"], expected: nil),
        ExecutorRequest(arguments: [], environment: ["CONCORD_EXECUTOR": "threads"], expected: nil),
        ExecutorRequest(arguments: ["--executors", "nio"], expected: .standard),
    ])
    func executorRequested(_ request: ExecutorRequest) {
        let requested = GlobalExecutor.requested(arguments: request.arguments, environment: request.environment, fallback: request.fallback)
        #expect(requested == request.expected)
    }

    @Test("executor startup lines say what runs the tasks and how to switch")
    func executorStartupMessages() {
        #expect(GlobalExecutor.nio.startupMessage(requested: .nio).hasPrefix("executor nio: "))
        #expect(GlobalExecutor.nio.startupMessage(requested: .nio).contains("CONCORD_EXECUTOR=default"))
        #expect(GlobalExecutor.standard.startupMessage(requested: .standard).hasPrefix("executor default: "))
        #expect(GlobalExecutor.standard.startupMessage(requested: .nio).contains("could not be installed"))
    }

    @Test("RESP front end: port, connection limit and a token read from a file")
    func respOptions() throws {
        #expect(try NodeConfiguration(flags: [:], environment: [:]).respPort == nil)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("token")
        try Data("  s3cret\n".utf8).write(to: file)
        let configuration = try NodeConfiguration(
            flags: ["resp-port": "6380", "resp-max-connections": "10"],
            environment: ["CONCORD_RESP_TOKEN_FILE": file.path])
        #expect(configuration.respPort == 6380)
        #expect(configuration.respMaxConnections == 10)
        #expect(configuration.respToken == "s3cret")
        #expect(throws: NodeConfigurationError.self) {
            try NodeConfiguration(flags: ["resp-token-file": directory.appendingPathComponent("absent").path], environment: [:])
        }
        #expect(throws: NodeConfigurationError.self) {
            try NodeConfiguration(flags: ["resp-port": "70000"], environment: [:])
        }
        // Beyond loopback, an open RESP port is refused.
        #expect(throws: NodeConfigurationError.self) {
            try NodeConfiguration(flags: ["resp-port": "6380", "bind": "0.0.0.0"], environment: [:])
        }
        // The node's bearer tokens protect the RESP port too (AUTH accepts them).
        #expect(try NodeConfiguration(
            flags: ["resp-port": "6380", "bind": "0.0.0.0", "admin-token-file": file.path],
            environment: [:]).respToken == nil)
        #expect(try NodeConfiguration(
            flags: ["resp-port": "6380", "bind": "0.0.0.0", "resp-token-file": file.path, "admin-token-file": file.path],
            environment: [:]).respToken == "s3cret")
    }

    @Test("trace export: off by default; the collector's base URL gets /v1/traces; service name and sample ratio")
    func traceExportOptions() throws {
        let plain = try NodeConfiguration(flags: [:], environment: [:])
        #expect(plain.otelEndpoint == nil)
        #expect(plain.otelTracesURL == nil)
        #expect(plain.otelServiceName == "concord-node")
        #expect(plain.otelSampleRatio == 1)

        for (endpoint, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("https://collector.example/otlp", "https://collector.example/otlp/v1/traces"),
            ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
            ("http://[::1]:4318", "http://[::1]:4318/v1/traces"),
        ] {
            #expect(try NodeConfiguration(flags: ["otel-endpoint": endpoint], environment: [:]).otelTracesURL == url)
        }
        let fromEnvironment = try NodeConfiguration(
            flags: ["otel-sample-ratio": "0.25"],
            environment: ["CONCORD_OTEL_ENDPOINT": "http://c:4318", "CONCORD_OTEL_SERVICE_NAME": "edge-cache"])
        #expect(fromEnvironment.otelTracesURL == "http://c:4318/v1/traces")
        #expect(fromEnvironment.otelServiceName == "edge-cache")
        #expect(fromEnvironment.otelSampleRatio == 0.25)

        for endpoint in ["grpc://c:4317", "c:4318", "http://", "http://u:p@c:4318", "http://c:4318/?q=1", "http://c:4318/#f", "http://c:99999"] {
            do {
                _ = try NodeConfiguration(flags: ["otel-endpoint": endpoint], environment: [:])
                Issue.record("\(endpoint) was accepted")
            } catch {
                #expect(error.code == .invalidURL, "\(endpoint): \(error)")
                #expect(error.option == "otel-endpoint")
                #expect(error.description.hasPrefix("--otel-endpoint: "), "\(error)")
                #expect(!error.description.contains("u:p@"), "\(error)")
            }
        }
        for ratio in ["-0.1", "1.5", "half", "nan", "inf"] {
            #expect(throws: NodeConfigurationError.self, "\(ratio)") {
                try NodeConfiguration(flags: ["otel-sample-ratio": ratio], environment: [:])
            }
        }
        #expect(throws: NodeConfigurationError.self) {
            try NodeConfiguration(flags: ["otel-service-name": "bad\u{7}name"], environment: [:])
        }
        var invalid = NodeConfiguration()
        invalid.otelEndpoint = "ftp://c"
        #expect(throws: NodeConfigurationError.self) { try invalid.validate() }
    }
}
