import Logging
import NIOCore
import NIOPosix
import Synchronization

/// State shared between the package `FaultProxy` handle and its connections: the toxic table,
/// the live connections and counters, all behind one mutex because they are touched from
/// every event loop and from the harness.
final class FaultProxyCore: Sendable {
    struct State {
        var toxics = ToxicTable()
        var connections: [Int: ProxyConnection] = [:]
        var nextConnectionID = 1
        var stopped = false
        var statistics = FaultProxy.Statistics()
    }

    let upstream: FaultProxy.Endpoint
    let configuration: FaultProxy.Configuration
    let logger: Logger
    private let state = Mutex(State())

    init(upstream: FaultProxy.Endpoint, configuration: FaultProxy.Configuration, logger: Logger) {
        self.upstream = upstream
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Toxics

    func toxics(_ direction: FlowDirection) -> DirectionToxics {
        state.withLock { $0.toxics.toxics(direction) }
    }

    func snapshot() -> (upstream: DirectionToxics, downstream: DirectionToxics, isDown: Bool) {
        state.withLock { ($0.toxics.toxics(.upstream), $0.toxics.toxics(.downstream), $0.toxics.refusesConnections || $0.stopped) }
    }

    func isActive(id: UInt64, direction: FlowDirection) -> Bool {
        state.withLock { $0.toxics.isActive(id: id, direction: direction) }
    }

    /// Installs a toxic and returns the connections that must hear about it now.
    func set(_ toxic: Toxic, direction: ProxyDirection) -> (ActiveToxic, [ProxyConnection]) {
        let now = NIODeadline.now().uptimeNanoseconds
        return state.withLock { state in
            let active = state.toxics.set(toxic, direction: direction, now: now)
            return (active, Array(state.connections.values))
        }
    }

    func remove(_ kind: Toxic.Kind, direction: ProxyDirection) {
        state.withLock { $0.toxics.remove(kind, direction: direction) }
    }

    func clear() {
        state.withLock { $0.toxics.clear() }
    }

    var installed: [(toxic: Toxic, direction: ProxyDirection)] {
        state.withLock { $0.toxics.installed }
    }

    // MARK: Connections

    /// Registers an accepted socket, or returns nil when the proxy has stopped.
    func register(client: any Channel) -> ProxyConnection? {
        let connection = state.withLock { state -> ProxyConnection? in
            guard !state.stopped else { return nil }
            let id = state.nextConnectionID
            state.nextConnectionID += 1
            let connection = ProxyConnection(id: id, client: client, proxy: self, logger: logger)
            state.connections[id] = connection
            state.statistics.acceptedConnections += 1
            return connection
        }
        // A connection counts as open until both of its sockets are closed, so a leak shows.
        connection?.closeFuture.whenComplete { [id = connection!.id] _ in
            self.state.withLock { _ = $0.connections.removeValue(forKey: id) }
        }
        return connection
    }

    var connections: [ProxyConnection] {
        state.withLock { Array($0.connections.values) }
    }

    /// Marks the proxy stopped and returns the connections still open.
    func markStopped() -> [ProxyConnection] {
        state.withLock { state in
            state.stopped = true
            return Array(state.connections.values)
        }
    }

    func connectUpstream(on eventLoop: any EventLoop, connection: ProxyConnection) -> EventLoopFuture<any Channel> {
        let timeout = TimeAmount.nanoseconds(DeliveryPlanner.nanoseconds(configuration.connectTimeout))
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RelayHandler(connection: connection, side: .server))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
    }

    // MARK: Statistics

    func countBytes(_ count: Int, direction: FlowDirection) {
        state.withLock {
            switch direction {
            case .upstream: $0.statistics.bytesUpstream += count
            case .downstream: $0.statistics.bytesDownstream += count
            }
        }
    }

    func observeQueued(_ bytes: Int) {
        state.withLock { $0.statistics.peakQueuedBytes = max($0.statistics.peakQueuedBytes, bytes) }
    }

    var statistics: FaultProxy.Statistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.openConnections = state.connections.count
            return statistics
        }
    }
}
