import ConcordNode
import Logging
import NIOCore
import NIOPosix

/// An in-process TCP proxy on 127.0.0.1 that injects network faults (Toxiproxy's vocabulary)
/// between a client and one upstream server, so chaos tests can cut, slow or reset links on cue.
package final class FaultProxy: Sendable {
    /// A host and port to forward to.
    package struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        package var host: String
        package var port: Int

        package init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        package var description: String { "\(host):\(port)" }
    }

    /// Tuning for the proxy; the defaults suit local tests.
    package struct Configuration: Sendable {
        /// How long dialling the upstream may take before the client connection is dropped.
        package var connectTimeout: Duration = .seconds(2)
        /// Reading from a side pauses once this many bytes wait in a direction's queue
        /// (delayed by toxics); the kernel's buffers then push back on the sender.
        package var highWaterMark: Int = 256 * 1024
        /// Reading resumes once the queue has drained to this many bytes.
        package var lowWaterMark: Int = 64 * 1024

        package init() {}
    }

    /// Counters for tests and reports.
    package struct Statistics: Sendable, Hashable {
        /// Connections accepted since start.
        package var acceptedConnections = 0
        /// Connections with at least one socket still open.
        package var openConnections = 0
        /// Bytes accepted for forwarding (after blackhole and limit decisions).
        package var bytesUpstream = 0
        package var bytesDownstream = 0
        /// The largest number of bytes that ever waited in one direction's queue.
        package var peakQueuedBytes = 0
    }

    /// The port the proxy listens on, on 127.0.0.1.
    package let port: Int
    package var upstream: Endpoint { core.upstream }

    private let core: FaultProxyCore
    private let serverChannel: any Channel

    private init(port: Int, core: FaultProxyCore, serverChannel: any Channel) {
        self.port = port
        self.core = core
        self.serverChannel = serverChannel
    }

    /// Starts listening on 127.0.0.1:`listenPort` (0 picks a free port) and forwards to `upstream`.
    package static func start(
        listenPort: Int = 0,
        upstream: Endpoint,
        configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> FaultProxy {
        guard configuration.lowWaterMark <= configuration.highWaterMark, configuration.highWaterMark > 0 else {
            throw ChaosError(.invalidArgument, "lowWaterMark must not exceed highWaterMark")
        }
        var logger = logger
        logger[metadataKey: "concord.proxy.upstream"] = "\(upstream)"
        let core = FaultProxyCore(upstream: upstream, configuration: configuration, logger: logger)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)
                // One socket read per read() call, so a full queue stops intake within one buffer.
                .childChannelOption(.maxMessagesPerRead, value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        guard let connection = core.register(client: child) else {
                            child.close(promise: nil)
                            return
                        }
                        try child.pipeline.syncOperations.addHandler(RelayHandler(connection: connection, side: .client))
                    }
                }
                .bind(host: "127.0.0.1", port: listenPort)
                .get()
        } catch {
            throw ChaosError(.io, "fault proxy could not listen on 127.0.0.1:\(listenPort)", underlying: error)
        }
        guard let port = channel.localAddress?.port else {
            channel.close(promise: nil)
            throw ChaosError(.io, "fault proxy has no local port")
        }
        logger[metadataKey: "concord.proxy.port"] = "\(port)"
        logger.debug("fault proxy listening")
        return FaultProxy(port: port, core: core, serverChannel: channel)
    }

    /// Installs `toxic` on `direction`, replacing any toxic of the same kind there. Connection-level
    /// toxics (`down`, `resetPeer`, a closing `timeout`) act on existing connections at once.
    package func set(_ toxic: Toxic, direction: ProxyDirection = .both) {
        let (active, connections) = core.set(toxic, direction: direction)
        core.logger.debug("toxic set", metadata: ["concord.toxic": "\(toxic)", "concord.proxy.direction": "\(direction)"])
        switch toxic {
        case .down, .resetPeer, .timeout(closeAfter: .some):
            // A resetPeer on both directions is armed once, and resets both sockets.
            let flow = direction.concrete[0]
            for connection in connections {
                connection.eventLoop.execute { connection.arm(active, direction: flow) }
            }
        default:
            break
        }
    }

    /// Removes the toxic of this kind from `direction`.
    package func remove(_ kind: Toxic.Kind, direction: ProxyDirection = .both) {
        core.remove(kind, direction: direction)
    }

    /// Heals everything: removes every toxic. Data a blackhole swallowed stays lost.
    package func clear() {
        core.clear()
        core.logger.debug("toxics cleared")
    }

    /// The toxics in force, with the directions they cover.
    package var toxics: [(toxic: Toxic, direction: ProxyDirection)] { core.installed }

    /// Closes every open connection (FIN) without changing the toxics.
    package func dropAllConnections() {
        for connection in core.connections {
            connection.eventLoop.execute { connection.close() }
        }
    }

    /// Resets every open connection (RST to both peers) without changing the toxics.
    package func resetAllConnections() {
        for connection in core.connections {
            connection.eventLoop.execute { connection.reset(.both) }
        }
    }

    package var statistics: Statistics { core.statistics }

    /// Connections with a socket still open; zero after `stop()` or once peers hang up.
    package var openConnections: Int { core.statistics.openConnections }

    /// Stops listening, closes every connection and waits (bounded) until their sockets are closed.
    package func stop() async {
        let connections = core.markStopped()
        try? await serverChannel.close()
        for connection in connections {
            connection.eventLoop.execute { connection.close() }
        }
        for connection in connections {
            // Bounded so a wedged socket cannot hang the harness's shutdown.
            _ = try? await connection.closeFuture.deadline(.seconds(5), ChaosError(.timeout, "proxied connection did not close")).get()
        }
        core.logger.debug("fault proxy stopped")
    }
}
