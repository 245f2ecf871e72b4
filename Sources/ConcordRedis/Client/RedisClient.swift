import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A Redis client: one auto-pipelined connection shared by all callers, kept alive by a reconnect supervisor in `run()`.
///
/// Run it as a `Service` (or call `run()` in a task group); commands sent while it is not
/// connected fail fast with `.notConnected`, or wait up to `waitForConnectionTimeout`.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    let driver: ConnectionDriver
    /// Set for a Redis Cluster configuration: commands are routed by slot instead of going to `driver`.
    let cluster: ClusterRouter?
    private let executor: EventLoopTaskExecutor

    public init(
        configuration: RedisConfiguration = .init(),
        logger: Logger = Logger(label: "concord.redis"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        let eventLoop = eventLoopGroup.next()
        self.configuration = configuration
        self.driver = ConnectionDriver(configuration: configuration, logger: logger, eventLoop: eventLoop, role: "client")
        self.cluster = configuration.cluster.map {
            ClusterRouter(configuration: configuration, cluster: $0, logger: logger, eventLoop: eventLoop)
        }
        self.executor = EventLoopTaskExecutor(eventLoop: eventLoop)
    }

    /// The event loop of this client's connection as a task executor. Latency-critical callers may
    /// run with `withTaskExecutorPreference(client.taskExecutor) { ... }` (or
    /// `group.addTask(executorPreference:)`): a command then costs no thread hand-off. Such code
    /// must never block, as it shares the thread with the connection's I/O.
    public var taskExecutor: any TaskExecutor { executor }

    /// Connects and reconnects until cancelled or a graceful shutdown; call it once.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            if let cluster = self.cluster {
                await cluster.run()
            } else {
                await self.driver.run()
            }
        }
    }

    /// Sends a command and returns its reply. Errors are `RedisError`: a server error reply is
    /// thrown as `.server` with Redis's message, and the connection stays usable.
    ///
    /// Cancelling the calling task does not abandon a command already queued (its reply must
    /// still be read in order); it ends with the reply or within `commandTimeout`. A blocking
    /// command (BLPOP...) holds up every caller behind it on the shared connection.
    @inlinable
    public func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        try await _send(arguments)
    }

    /// Sends `command` with `arguments`, e.g. `send("SET", "key", value)`.
    @inlinable
    public func send(_ command: RedisArgument, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await _send(command, arguments)
    }

    @usableFromInline
    func _send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        if let command = arguments.first { try Self.checkSupported(command) }
        if let cluster { return try await sendRouted(arguments, through: cluster) }
        let connection = try await driver.connection()
        return try checked(await connection.send(arguments), on: connection)
    }

    @usableFromInline
    func _send(_ command: RedisArgument, _ arguments: [RedisArgument]) async throws -> RESPValue {
        try Self.checkSupported(command)
        if let cluster { return try await sendRouted([command] + arguments, through: cluster) }
        let connection = try await driver.connection()
        return try checked(await connection.send(command, arguments), on: connection)
    }

    /// As `checked(_:)`; besides, through Sentinel, a READONLY refusal means the master this
    /// connection reached was demoted, so the connection closes and the next one asks the
    /// Sentinels again instead of sending every later write to a replica.
    @inline(__always)
    func checked(_ reply: RESPValue, on connection: RedisConnection) throws(RedisError) -> RESPValue {
        guard case .error(let message) = reply else { return reply }
        if driver.sentinel != nil, message.contains("READONLY") {
            connection.close(RedisError(.notMaster, "the master was demoted to a replica: \(message)"))
            throw RedisError(.notMaster, message)
        }
        throw RedisError(.server, message)
    }

    /// Commands that switch a connection into push mode would break the one-reply-per-command
    /// matching that every other caller on the shared connection relies on.
    @inline(__always)
    static func checkSupported(_ command: RedisArgument) throws(RedisError) {
        guard case .string(let name) = command.storage else { return }
        let length = name.utf8.count
        guard length == 7 || length == 9 || length == 10 else { return }
        switch name.uppercased() {
        case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR":
            throw RedisError(.unsupportedCommand, "\(name) is not supported on RedisClient; use RedisSubscriber for pub/sub")
        default:
            return
        }
    }

    @inline(__always)
    static func checked(_ reply: RESPValue) throws(RedisError) -> RESPValue {
        if case .error(let message) = reply {
            throw RedisError(.server, message)
        }
        return reply
    }

    /// A new stream of connection states for each call; it starts with the current state. In a
    /// cluster, `.connected` comes whenever a primary's connection is made, `.disconnected` when none is left.
    public var states: AsyncStream<RedisConnectionState> { cluster?.states.makeStream() ?? driver.states.makeStream() }

    public var isConnected: Bool { cluster?.isConnected ?? driver.isConnected }

    /// Returns once connected (in a cluster: the topology known and a primary connected); throws
    /// `.timeout` (or `.authenticationFailed`) if that takes longer than `timeout`.
    public func waitUntilConnected(timeout: Duration) async throws {
        guard let cluster else {
            _ = try await driver.waitForConnection(timeout: timeout, code: .timeout)
            return
        }
        let start = ContinuousClock.now
        let (primary, _) = try await cluster.route(slot: nil)
        let left = timeout - (ContinuousClock.now - start)
        _ = try await primary.waitForConnection(timeout: max(left, .zero), code: .timeout)
    }

    /// The slot map in use in a cluster; nil before the first discovery and outside a cluster.
    public var clusterSlotMap: ClusterSlotMap? { cluster?.slotMap }
}
