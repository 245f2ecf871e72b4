import ArgumentParser
import ConcordNode
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `concord node`: runs one node server until SIGTERM or SIGINT.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a cache node: HTTP API, in-memory L1, Redis L2 and backplane.",
        discussion: """
        Every option can also be set with its CONCORD_* environment variable; a flag wins over \
        the variable, which wins over the default. Durations are written 250ms, 30s, 5m or 1h; \
        sizes 1024, 64KiB or 8MiB.
        """
    )

    @Option(name: .customLong(NodeOption.id.name), help: Self.help(.id)) var id: String?
    @Option(name: .customLong(NodeOption.bind.name), help: Self.help(.bind)) var bind: String?
    @Option(name: .customLong(NodeOption.port.name), help: Self.help(.port)) var port: String?
    @Option(name: .customLong(NodeOption.redis.name), help: Self.help(.redis)) var redis: String?
    @Option(name: .customLong(NodeOption.redisUser.name), help: Self.help(.redisUser)) var redisUser: String?
    @Option(name: .customLong(NodeOption.redisPasswordFile.name), help: Self.help(.redisPasswordFile)) var redisPasswordFile: String?
    @Option(name: .customLong(NodeOption.tlsCAFile.name), help: Self.help(.tlsCAFile)) var tlsCAFile: String?
    @Option(name: .customLong(NodeOption.tlsCertFile.name), help: Self.help(.tlsCertFile)) var tlsCertFile: String?
    @Option(name: .customLong(NodeOption.tlsKeyFile.name), help: Self.help(.tlsKeyFile)) var tlsKeyFile: String?
    @Option(name: .customLong(NodeOption.tlsServerName.name), help: Self.help(.tlsServerName)) var tlsServerName: String?
    @Flag(name: .customLong(NodeOption.tlsInsecureSkipVerify.name), inversion: .prefixedNo, help: Self.help(.tlsInsecureSkipVerify)) var tlsInsecureSkipVerify: Bool?
    @Option(name: .customLong(NodeOption.sentinelUsername.name), help: Self.help(.sentinelUsername)) var sentinelUsername: String?
    @Option(name: .customLong(NodeOption.sentinelPasswordFile.name), help: Self.help(.sentinelPasswordFile)) var sentinelPasswordFile: String?
    @Option(name: .customLong(NodeOption.l2.name), help: Self.help(.l2)) var l2: String?
    @Option(name: .customLong(NodeOption.origin.name), help: Self.help(.origin)) var origin: String?
    @Flag(name: .customLong(NodeOption.originCacheControl.name), inversion: .prefixedNo, help: Self.help(.originCacheControl)) var originCacheControl: Bool?
    @Option(name: .customLong(NodeOption.originMaxConnections.name), help: Self.help(.originMaxConnections)) var originMaxConnections: String?
    @Option(name: .customLong(NodeOption.cacheName.name), help: Self.help(.cacheName)) var cacheName: [String] = []
    @Option(name: .customLong(NodeOption.duration.name), help: Self.help(.duration)) var duration: String?
    @Option(name: .customLong(NodeOption.memoryDuration.name), help: Self.help(.memoryDuration)) var memoryDuration: String?
    @Flag(name: .customLong(NodeOption.failSafe.name), inversion: .prefixedNo, help: Self.help(.failSafe)) var failSafe: Bool?
    @Option(name: .customLong(NodeOption.failSafeMaxDuration.name), help: Self.help(.failSafeMaxDuration)) var failSafeMaxDuration: String?
    @Option(name: .customLong(NodeOption.failSafeThrottle.name), help: Self.help(.failSafeThrottle)) var failSafeThrottle: String?
    @Option(name: .customLong(NodeOption.factorySoftTimeout.name), help: Self.help(.factorySoftTimeout)) var factorySoftTimeout: String?
    @Option(name: .customLong(NodeOption.factoryHardTimeout.name), help: Self.help(.factoryHardTimeout)) var factoryHardTimeout: String?
    @Option(name: .customLong(NodeOption.maxDisconnectedStaleness.name), help: Self.help(.maxDisconnectedStaleness)) var maxDisconnectedStaleness: String?
    @Option(name: .customLong(NodeOption.reconnectBackoffBase.name), help: Self.help(.reconnectBackoffBase)) var reconnectBackoffBase: String?
    @Option(name: .customLong(NodeOption.reconnectBackoffCap.name), help: Self.help(.reconnectBackoffCap)) var reconnectBackoffCap: String?
    @Option(name: .customLong(NodeOption.maxKeyBytes.name), help: Self.help(.maxKeyBytes)) var maxKeyBytes: String?
    @Option(name: .customLong(NodeOption.maxValueBytes.name), help: Self.help(.maxValueBytes)) var maxValueBytes: String?
    @Option(name: .customLong(NodeOption.memoryMaxEntries.name), help: Self.help(.memoryMaxEntries)) var memoryMaxEntries: String?
    @Option(name: .customLong(NodeOption.memoryMaxBytes.name), help: Self.help(.memoryMaxBytes)) var memoryMaxBytes: String?
    @Option(name: .customLong(NodeOption.pendingMaxEntries.name), help: Self.help(.pendingMaxEntries)) var pendingMaxEntries: String?
    @Option(name: .customLong(NodeOption.pendingMaxBytes.name), help: Self.help(.pendingMaxBytes)) var pendingMaxBytes: String?
    @Option(name: .customLong(NodeOption.authTokenFile.name), help: Self.help(.authTokenFile)) var authTokenFile: String?
    @Option(name: .customLong(NodeOption.adminTokenFile.name), help: Self.help(.adminTokenFile)) var adminTokenFile: String?
    @Option(name: .customLong(NodeOption.metricsTokenFile.name), help: Self.help(.metricsTokenFile)) var metricsTokenFile: String?
    @Flag(name: .customLong(NodeOption.allowUnauthenticated.name), inversion: .prefixedNo, help: Self.help(.allowUnauthenticated)) var allowUnauthenticated: Bool?
    @Option(name: .customLong(NodeOption.tlsCert.name), help: Self.help(.tlsCert)) var tlsCert: String?
    @Option(name: .customLong(NodeOption.tlsKey.name), help: Self.help(.tlsKey)) var tlsKey: String?
    @Option(name: .customLong(NodeOption.maxConnections.name), help: Self.help(.maxConnections)) var maxConnections: String?
    @Option(name: .customLong(NodeOption.requestTimeout.name), help: Self.help(.requestTimeout)) var requestTimeout: String?
    @Flag(name: .customLong(NodeOption.backplane.name), inversion: .prefixedNo, help: Self.help(.backplane)) var backplane: Bool?
    @Option(name: .customLong(NodeOption.backplaneKeyFile.name), help: Self.help(.backplaneKeyFile)) var backplaneKeyFile: String?
    @Option(name: .customLong(NodeOption.maxClockDrift.name), help: Self.help(.maxClockDrift)) var maxClockDrift: String?
    @Option(name: .customLong(NodeOption.testClockOffset.name), parsing: .unconditional, help: Self.help(.testClockOffset)) var testClockOffset: String?
    @Option(name: .customLong(NodeOption.idleTimeout.name), help: Self.help(.idleTimeout)) var idleTimeout: String?
    @Option(name: .customLong(NodeOption.shutdownTimeout.name), help: Self.help(.shutdownTimeout)) var shutdownTimeout: String?
    @Option(name: .customLong(NodeOption.logLevel.name), help: Self.help(.logLevel)) var logLevel: String?
    @Option(name: .customLong(NodeOption.respPort.name), help: Self.help(.respPort)) var respPort: String?
    @Option(name: .customLong(NodeOption.respMaxConnections.name), help: Self.help(.respMaxConnections)) var respMaxConnections: String?
    @Option(name: .customLong(NodeOption.respTokenFile.name), help: Self.help(.respTokenFile)) var respTokenFile: String?
    @Option(name: .customLong(NodeOption.otelEndpoint.name), help: Self.help(.otelEndpoint)) var otelEndpoint: String?
    @Option(name: .customLong(NodeOption.otelServiceName.name), help: Self.help(.otelServiceName)) var otelServiceName: String?
    @Option(name: .customLong(NodeOption.otelSampleRatio.name), help: Self.help(.otelSampleRatio)) var otelSampleRatio: String?
    @Option(name: .customLong(NodeOption.executor.name), help: Self.help(.executor)) var executor: String?
    @Option(name: .customLong(NodeOption.parentPID.name), help: Self.help(.parentPID)) var parentPID: String?

    static func help(_ option: NodeOption) -> ArgumentHelp {
        let valueName: String? = if case .value(let name) = option.kind { name } else { nil }
        return ArgumentHelp(option.help, valueName: valueName, visibility: option.isHidden ? .hidden : .default)
    }

    /// What was typed, by flag name, for `NodeConfiguration` to resolve against the environment.
    var flags: [String: String] {
        var flags: [String: String] = [:]
        let values: [(NodeOption, String?)] = [
            (.id, id), (.bind, bind), (.port, port), (.redis, redis), (.redisUser, redisUser), (.redisPasswordFile, redisPasswordFile),
            (.tlsCAFile, tlsCAFile), (.tlsCertFile, tlsCertFile), (.tlsKeyFile, tlsKeyFile), (.tlsServerName, tlsServerName),
            (.tlsInsecureSkipVerify, tlsInsecureSkipVerify.map { String($0) }), (.sentinelUsername, sentinelUsername),
            (.sentinelPasswordFile, sentinelPasswordFile), (.l2, l2), (.origin, origin), (.cacheName, cacheName.isEmpty ? nil : cacheName.joined(separator: ",")),
            (.originCacheControl, originCacheControl.map { String($0) }), (.originMaxConnections, originMaxConnections),
            (.duration, duration), (.memoryDuration, memoryDuration), (.failSafe, failSafe.map { String($0) }),
            (.failSafeMaxDuration, failSafeMaxDuration), (.failSafeThrottle, failSafeThrottle),
            (.factorySoftTimeout, factorySoftTimeout), (.factoryHardTimeout, factoryHardTimeout),
            (.maxDisconnectedStaleness, maxDisconnectedStaleness), (.reconnectBackoffBase, reconnectBackoffBase),
            (.reconnectBackoffCap, reconnectBackoffCap), (.maxKeyBytes, maxKeyBytes), (.maxValueBytes, maxValueBytes),
            (.memoryMaxEntries, memoryMaxEntries), (.memoryMaxBytes, memoryMaxBytes), (.pendingMaxEntries, pendingMaxEntries),
            (.pendingMaxBytes, pendingMaxBytes), (.authTokenFile, authTokenFile), (.adminTokenFile, adminTokenFile),
            (.metricsTokenFile, metricsTokenFile), (.allowUnauthenticated, allowUnauthenticated.map { String($0) }),
            (.tlsCert, tlsCert), (.tlsKey, tlsKey), (.maxConnections, maxConnections), (.requestTimeout, requestTimeout),
            (.backplane, backplane.map { String($0) }), (.backplaneKeyFile, backplaneKeyFile), (.maxClockDrift, maxClockDrift),
            (.testClockOffset, testClockOffset), (.idleTimeout, idleTimeout),
            (.shutdownTimeout, shutdownTimeout), (.logLevel, logLevel), (.respPort, respPort),
            (.respMaxConnections, respMaxConnections), (.respTokenFile, respTokenFile),
            (.otelEndpoint, otelEndpoint), (.otelServiceName, otelServiceName), (.otelSampleRatio, otelSampleRatio), (.executor, executor), (.parentPID, parentPID),
        ]
        for (option, value) in values {
            if let value { flags[option.name] = value }
        }
        return flags
    }

    func run() async throws {
        let configuration: NodeConfiguration
        do {
            configuration = try NodeConfiguration(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            // A ValidationError prints the message with the usage line and exits with 64.
            throw ValidationError(error.description)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            // Keys and request text reach the log: no control character may forge a line.
            return ControlCharacterEscapingLogHandler(wrapping: handler)
        }
        // The one place swift-metrics is bootstrapped: the cache's metrics and the node's HTTP
        // metrics then share the registry that /metrics renders.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        // Before the caches exist: each resolves its tracer once, when it is created.
        let traceExport: (any Service)?
        do {
            var logger = Logger(label: "concord.otel")
            logger.logLevel = level
            traceExport = try NodeTraceExport.bootstrap(configuration, environment: ProcessInfo.processInfo.environment, logger: logger)
        } catch {
            throw CommandFailure("cannot export traces to \(configuration.otelTracesURL ?? "?"): \(error)")
        }

        // Installed by `ConcordMain` before any task started; this says what took effect.
        Logger(label: "concord.node").info("\(GlobalExecutor.current.startupMessage(requested: configuration.executor))")

        let node: CacheNode
        do {
            node = try CacheNode(configuration: configuration, registry: registry, logger: Logger(label: "concord.node"))
        } catch {
            throw CommandFailure("cannot start node \(configuration.nodeID): \(error)")
        }
        try await node.run(exporters: traceExport.map { [$0] } ?? [])
    }
}

/// An error the CLI reports as one line, `Error: <message>`, with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
