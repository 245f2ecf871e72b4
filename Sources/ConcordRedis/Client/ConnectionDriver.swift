import Concord
import Logging
import Metrics
import NIOCore
import Synchronization

/// Runs the reconnect loop around `RedisConnection`s and hands the live connection to callers.
///
/// Shared by `RedisClient` and `RedisSubscriber`: the only differences are a `prepare` step run
/// after each handshake (the subscriber re-subscribes there) and an optional `whileConnected`
/// task (the subscriber's PING loop).
final class ConnectionDriver: Sendable {
    private struct Waiter {
        let continuation: UnsafeContinuation<RedisConnection, any Error>
        let code: RedisError.Code
    }

    private struct Shared {
        var supervisor: ReconnectSupervisor<SystemRandomNumberGenerator, RedisConnectionState>
        var connection: RedisConnection?
        var waiters: [Int: Waiter] = [:]
        var nextWaiterID = 0
        var running = false
        /// Whether a connection was ever established: until then a command waits for the first
        /// one (the start-up race) rather than fail fast.
        var hasConnected = false
    }

    let configuration: RedisConfiguration
    let logger: Logger
    let eventLoop: any EventLoop
    let states = Broadcaster<RedisConnectionState>(replayLatest: true, bufferSize: 64)
    private let shared: Mutex<Shared>
    /// "client" or "subscriber", the `role` dimension of the metrics.
    private let role: String
    private let attemptsCounter: Counter
    private let connectedGauge: Gauge
    /// Set for a Sentinel configuration: the master is looked up before every connect.
    let sentinel: SentinelResolver?
    /// Set for a subscriber in a cluster: the node to connect to is looked up before every connect.
    let clusterTarget: ClusterSubscriptionTarget?

    init(
        configuration: RedisConfiguration, logger: Logger, eventLoop: any EventLoop, role: String,
        clusterTarget: ClusterSubscriptionTarget? = nil
    ) {
        self.clusterTarget = clusterTarget
        self.configuration = configuration
        self.logger = logger
        self.eventLoop = eventLoop
        self.role = role
        self.attemptsCounter = Counter(label: "concord_redis_connection_attempts_total", dimensions: [("role", role)])
        self.connectedGauge = Gauge(label: "concord_redis_connected", dimensions: [("role", role)])
        self.sentinel = configuration.sentinel.map { SentinelResolver(configuration: configuration, sentinel: $0, logger: logger) }
        let backoff = RetryBackoff(base: configuration.reconnect.backoffBase, cap: configuration.reconnect.backoffCap)
        self.shared = Mutex(Shared(supervisor: ReconnectSupervisor(backoff: backoff, random: SystemRandomNumberGenerator())))
        if configuration.tls?.insecureSkipVerify == true {
            logger.warning(
                "TLS certificate verification is OFF (insecure-skip-verify): the connection is encrypted but the server is not authenticated",
                metadata: ["concord.redis.host": "\(configuration.endpointDescription)", "concord.redis.role": "\(role)"])
        }
    }

    var isConnected: Bool { shared.withLock { $0.connection != nil } }

    /// Connection attempts so far (tests check that a failing server is not hammered).
    var connectionAttempts: Int { shared.withLock { $0.supervisor.attempts } }

    // MARK: Handing out the connection

    /// The live connection; while there is none, fails fast or waits up to `waitForConnectionTimeout`.
    /// Before the first connection it waits at least `connectTimeout`, so commands issued just
    /// after `run()` starts do not fail while the first connect is still under way.
    @inline(__always)
    func connection() async throws -> RedisConnection {
        let (connection, hasConnected) = shared.withLock { ($0.connection, $0.hasConnected) }
        if let connection { return connection }
        let timeout = hasConnected
            ? configuration.waitForConnectionTimeout
            : max(configuration.waitForConnectionTimeout, configuration.connectTimeout)
        return try await waitForConnection(timeout: timeout, code: .notConnected)
    }

    func waitForConnection(timeout: Duration, code: RedisError.Code) async throws -> RedisConnection {
        let id = shared.withLock { shared in
            defer { shared.nextWaiterID += 1 }
            return shared.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                enum Outcome { case ready(RedisConnection), failed(RedisError), waiting }
                let outcome: Outcome = shared.withLock { shared in
                    if let connection = shared.connection { return .ready(connection) }
                    // A wrong password or refused certificate is not fixed by waiting: fail now.
                    let isConfigurationProblem = shared.supervisor.lastError?.isConfigurationProblem == true
                    if timeout <= .zero || shared.supervisor.isShutdown || isConfigurationProblem {
                        return .failed(Self.unavailableError(shared, code: code, configuration: configuration))
                    }
                    shared.waiters[id] = Waiter(continuation: continuation, code: code)
                    return .waiting
                }
                switch outcome {
                case .ready(let connection):
                    continuation.resume(returning: connection)
                case .failed(let error):
                    continuation.resume(throwing: error)
                case .waiting:
                    eventLoop.scheduleTask(in: TimeAmount(timeout)) { self.expireWaiter(id, cancelled: false) }
                }
            }
        } onCancel: {
            self.expireWaiter(id, cancelled: true)
        }
    }

    private func expireWaiter(_ id: Int, cancelled: Bool) {
        let expired: (Waiter, RedisError)? = shared.withLock { shared in
            guard let waiter = shared.waiters.removeValue(forKey: id) else { return nil }
            return (waiter, Self.unavailableError(shared, code: waiter.code, configuration: configuration))
        }
        guard let (waiter, error) = expired else { return }
        if cancelled {
            waiter.continuation.resume(throwing: CancellationError())
        } else {
            waiter.continuation.resume(throwing: error)
        }
    }

    /// Why there is no connection. A wrong password or a refused certificate is reported as such
    /// rather than as a bare "not connected", because retrying will not fix it.
    private static func unavailableError(_ shared: Shared, code: RedisError.Code, configuration: RedisConfiguration) -> RedisError {
        let endpoint = configuration.endpointDescription
        if shared.supervisor.isShutdown {
            return RedisError(.notConnected, "not connected to Redis at \(endpoint): the client has shut down")
        }
        if !shared.running {
            return RedisError(code, "not connected to Redis at \(endpoint): run() has not started")
        }
        if let last = shared.supervisor.lastError, last.isConfigurationProblem {
            return RedisError(last.code, last.message, underlying: last)
        }
        return RedisError(code, "not connected to Redis at \(endpoint)", underlying: shared.supervisor.lastError)
    }

    // MARK: The loop

    /// Connects, supervises and reconnects until the task is cancelled.
    func run(
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = nil,
        prepare: @Sendable (RedisConnection) async throws -> Void = { _ in },
        whileConnected: (@Sendable (RedisConnection) async -> Void)? = nil
    ) async {
        let alreadyRunning = shared.withLock { shared in
            defer { shared.running = true }
            return shared.running
        }
        precondition(!alreadyRunning, "run() may only be called once")

        while !Task.isCancelled {
            guard let connecting = shared.withLock({ $0.supervisor.startConnecting() }) else { break }
            states.publish(connecting)
            attemptsCounter.increment()

            let failure: RedisError
            do {
                var target = configuration
                var master: SentinelResolver.Address?
                if let sentinel {
                    let address = try await sentinel.resolveMaster(eventLoop: eventLoop)
                    target = sentinel.configuration(forMaster: address)
                    master = address
                } else if let clusterTarget {
                    target = try await clusterTarget.resolve(eventLoop: eventLoop)
                }
                let connection = try await RedisConnection.connect(
                    configuration: target, eventLoop: eventLoop, logger: logger, onMessage: onMessage)
                do {
                    if let master { try await SentinelResolver.verifyMaster(connection, address: master) }
                    try await prepare(connection)
                } catch {
                    connection.close(RedisError(.connectionClosed, "connection setup failed", underlying: error))
                    throw error
                }
                let waiters = shared.withLock { shared -> [Waiter] in
                    _ = shared.supervisor.connected()
                    shared.connection = connection
                    shared.hasConnected = true
                    defer { shared.waiters = [:] }
                    return Array(shared.waiters.values)
                }
                states.publish(.connected)
                connectedGauge.record(1)
                logger.info(
                    "connected to Redis",
                    metadata: ["concord.redis.connection": "\(connection.id)", "concord.redis.host": "\(target.endpointDescription)"])
                for waiter in waiters { waiter.continuation.resume(returning: connection) }

                failure = await supervise(connection, whileConnected: watching(master, whileConnected))
                shared.withLock { $0.connection = nil }
                connectedGauge.record(0)
            } catch let error as RedisError {
                failure = error
            } catch {
                failure = RedisError(.connectionClosed, "connection setup failed", underlying: error)
            }

            if Task.isCancelled { break }
            Counter(
                label: "concord_redis_connection_failures_total",
                dimensions: [("role", role), ("code", failure.code.description)]
            ).increment()
            let outcome = shared.withLock { shared in
                shared.supervisor.failed(failure, now: .now).map { ($0.publish, $0.delay, shared.supervisor.consecutiveFailures) }
            }
            guard let (publish, delay, failures) = outcome else { break }
            // One warning per outage; the retries that follow go to debug so a long outage does not flood the log.
            logger.log(
                level: failures == 1 ? .warning : .debug,
                "Redis connection failed; reconnecting",
                metadata: [
                    "concord.redis.error": "\(failure)", "concord.redis.backoff": "\(delay)",
                    "concord.redis.failures": "\(failures)",
                ])
            for state in publish { states.publish(state) }
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        shutdown()
    }

    /// `whileConnected`, plus, through Sentinel, the watch that ends the connection when the master moves.
    private func watching(
        _ master: SentinelResolver.Address?,
        _ whileConnected: (@Sendable (RedisConnection) async -> Void)?
    ) -> (@Sendable (RedisConnection) async -> Void)? {
        guard let sentinel, let master else { return whileConnected }
        let eventLoop = eventLoop
        return { connection in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await sentinel.watch(connection, address: master, eventLoop: eventLoop) }
                if let whileConnected {
                    group.addTask { await whileConnected(connection) }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Waits until the connection closes, or the task is cancelled (then closes it).
    private func supervise(
        _ connection: RedisConnection,
        whileConnected: (@Sendable (RedisConnection) async -> Void)?
    ) async -> RedisError {
        await withTaskCancellationHandler {
            if let whileConnected {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await connection.closeFuture.get() }
                    group.addTask { await whileConnected(connection) }
                    await group.next()
                    connection.close(RedisError(.connectionClosed, "connection closed by the client"))
                    group.cancelAll()
                }
            } else {
                try? await connection.closeFuture.get()
            }
        } onCancel: {
            connection.close(RedisError(.connectionClosed, "the Redis client is shutting down"))
        }
        return connection.closeError ?? RedisError(.connectionClosed, "connection closed")
    }

    private func shutdown() {
        let (connection, waiters) = shared.withLock { shared in
            _ = shared.supervisor.shutdown()
            defer {
                shared.connection = nil
                shared.waiters = [:]
            }
            return (shared.connection, Array(shared.waiters.values))
        }
        let error = RedisError(.notConnected, "the Redis client has shut down")
        connection?.close(RedisError(.connectionClosed, "the Redis client has shut down"))
        for waiter in waiters { waiter.continuation.resume(throwing: error) }
        connectedGauge.record(0)
        states.publish(.disconnected(error))
        states.finish()
        logger.debug("Redis connection loop stopped")
    }
}
