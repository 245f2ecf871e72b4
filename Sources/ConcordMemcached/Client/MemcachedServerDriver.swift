import Concord
import ConcordRedis
import Logging
import Metrics
import NIOCore
import Synchronization

/// Keeps one server's connection alive with the shared `ReconnectSupervisor` and hands the live
/// connection to callers; requests to a server without a connection fail fast.
final class MemcachedServerDriver: Sendable {
    private struct Shared {
        var supervisor: ReconnectSupervisor<SystemRandomNumberGenerator, MemcachedServerState>
        var connection: MemcachedConnection?
        var running = false
        /// Set once the server has failed, until it answers again: it is off the ring meanwhile.
        var ejected = false
    }

    let index: Int
    let server: MemcachedConfiguration.Server
    let configuration: MemcachedConfiguration
    let logger: Logger
    let eventLoop: any EventLoop
    let states = Broadcaster<MemcachedServerState>(replayLatest: true, bufferSize: 64)
    private let shared: Mutex<Shared>
    private let connectedGauge: Gauge

    init(index: Int, server: MemcachedConfiguration.Server, configuration: MemcachedConfiguration, logger: Logger, eventLoop: any EventLoop) {
        self.index = index
        self.server = server
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "concord.memcached.server"] = "\(server)"
        self.logger = logger
        self.eventLoop = eventLoop
        self.connectedGauge = Gauge(label: "concord_memcached_connected", dimensions: [("server", "\(server)")])
        let backoff = RetryBackoff(base: configuration.reconnect.backoffBase, cap: configuration.reconnect.backoffCap)
        self.shared = Mutex(Shared(supervisor: ReconnectSupervisor(
            backoff: backoff, random: SystemRandomNumberGenerator(), publishing: MemcachedServerState.self)))
    }

    var isConnected: Bool { shared.withLock { $0.connection != nil } }
    var isEjected: Bool { shared.withLock { $0.ejected } }
    var connectionAttempts: Int { shared.withLock { $0.supervisor.attempts } }

    /// The live connection, or a typed error saying why there is none.
    func connection() throws(MemcachedError) -> MemcachedConnection {
        let outcome: Result<MemcachedConnection, MemcachedError> = shared.withLock { shared in
            if let connection = shared.connection { return .success(connection) }
            if shared.supervisor.isShutdown {
                return .failure(MemcachedError(.notConnected, "not connected to memcached at \(server): the client has shut down"))
            }
            if !shared.running {
                return .failure(MemcachedError(.notConnected, "not connected to memcached at \(server): run() has not started"))
            }
            return .failure(MemcachedError(.notConnected, "not connected to memcached at \(server)", underlying: shared.supervisor.lastError))
        }
        return try outcome.get()
    }

    /// Connects, supervises and reconnects until cancelled. `prepare` runs on each new connection
    /// before it serves requests; `rejoining` tells whether the server had failed since it last served.
    /// `membershipChanged` is called when the server leaves or rejoins the ring.
    func run(
        prepare: @escaping @Sendable (MemcachedConnection, _ rejoining: Bool) async throws -> Void,
        membershipChanged: @escaping @Sendable () -> Void
    ) async {
        let alreadyRunning = shared.withLock { shared in
            defer { shared.running = true }
            return shared.running
        }
        precondition(!alreadyRunning, "run() may only be called once per server")

        while !Task.isCancelled {
            guard let connecting = shared.withLock({ $0.supervisor.startConnecting() }) else { break }
            states.publish(connecting)
            let failure: MemcachedError
            do {
                let connection = try await MemcachedConnection.connect(
                    host: server.host, port: server.port, configuration: configuration, eventLoop: eventLoop, logger: logger)
                do {
                    try await prepare(connection, shared.withLock { $0.ejected })
                } catch {
                    connection.close(MemcachedError(.connectionClosed, "connection setup failed", underlying: error))
                    throw error
                }
                let rejoined = shared.withLock { shared in
                    _ = shared.supervisor.connected()
                    shared.connection = connection
                    defer { shared.ejected = false }
                    return shared.ejected
                }
                states.publish(.connected)
                connectedGauge.record(1)
                logger.info(rejoined ? "memcached server is back on the ring" : "connected to memcached")
                if rejoined { membershipChanged() }
                try? await withTaskCancellationHandler {
                    try await connection.closeFuture.get()
                } onCancel: {
                    connection.close(MemcachedError(.connectionClosed, "the memcached client is shutting down"))
                }
                failure = connection.closeError ?? MemcachedError(.connectionClosed, "connection closed")
                shared.withLock { $0.connection = nil }
                connectedGauge.record(0)
            } catch let error as MemcachedError {
                failure = error
            } catch {
                failure = MemcachedError(.connectionClosed, "connection setup failed", underlying: error)
            }
            if Task.isCancelled { break }
            let outcome = shared.withLock { shared in
                let wasEjected = shared.ejected
                if configuration.ejectFailedServers { shared.ejected = true }
                return shared.supervisor.failed(failure, now: .now).map { ($0.publish, $0.delay, shared.supervisor.consecutiveFailures, wasEjected) }
            }
            guard let (publish, delay, failures, wasEjected) = outcome else { break }
            if configuration.ejectFailedServers, !wasEjected { membershipChanged() }
            logger.log(
                level: failures == 1 ? .warning : .debug,
                "memcached connection failed; reconnecting",
                metadata: ["concord.memcached.error": "\(failure)", "concord.memcached.backoff": "\(delay)"])
            for state in publish { states.publish(state) }
            do { try await Task.sleep(for: delay) } catch { break }
        }
        let connection = shared.withLock { shared in
            _ = shared.supervisor.shutdown()
            defer { shared.connection = nil }
            return shared.connection
        }
        connection?.close(MemcachedError(.connectionClosed, "the memcached client has shut down"))
        connectedGauge.record(0)
        states.publish(.disconnected(MemcachedError(.notConnected, "the memcached client has shut down")))
        states.finish()
    }
}
