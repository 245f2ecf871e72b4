import Concord
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The node's RESP front end (`concord node --resp-port`): any Redis client can point at the
/// node and get its coherent L1 for GET, SET, DEL, MGET and the other commands of
/// `RESPCommandExecutor`, with the same key and value limits as the HTTP API, a bound on
/// connections and on pipelined requests, and AUTH against the RESP password and the node's
/// bearer tokens when either is configured.
///
/// A service: `run()` binds the port and runs every awaited command (L2 reads, writes) in its
/// own task group, so no work outlives it. On graceful shutdown it stops accepting, closes the
/// open connections and lets commands already running finish.
public final class RESPServer: Service, Sendable {
    /// Where and how the front end listens.
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port, reported to `onBound`.
        public var port: Int
        public var maxConnections: Int
        /// The most arguments one command may have (an MSET of this many keys and values).
        public var maxArguments: Int
        /// A password AUTH accepts for reading and writing (`--resp-token-file`).
        public var token: String?
        /// The node's bearer tokens, which AUTH accepts too, each with its scopes: a read
        /// token reads, an admin token reads and writes.
        public var accessTokens: AccessTokens

        public init(
            host: String = "127.0.0.1", port: Int = 0, maxConnections: Int = 1024, maxArguments: Int = 1 << 16,
            token: String? = nil, accessTokens: AccessTokens = AccessTokens()
        ) {
            self.host = host
            self.port = port
            self.maxConnections = maxConnections
            self.maxArguments = maxArguments
            self.token = token
            self.accessTokens = accessTokens
        }
    }

    let configuration: Configuration
    let cache: HybridCache
    let logger: Logger
    let onBound: @Sendable (Int) async -> Void
    private let nextConnectionID = Atomic<Int>(1)
    private let openConnections = Mutex<[ObjectIdentifier: any Channel]>([:])

    public init(configuration: Configuration, cache: HybridCache, logger: Logger, onBound: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.configuration = configuration
        self.cache = cache
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let jobs = RESPJobQueue()
        let executor = RESPCommandExecutor(cache: cache, token: configuration.token.map { Array($0.utf8) }, accessTokens: configuration.accessTokens)
        // A request holds at most one value at the limit plus its key and framing.
        let maxRequestBytes = cache.configuration.maxValueBytes + cache.configuration.maxKeyBytes + 64 * 1024
        let maxArguments = configuration.maxArguments
        let maxConnections = configuration.maxConnections
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let key = ObjectIdentifier(channel)
                    let admitted = openConnections.withLock { open -> Bool in
                        guard open.count < maxConnections else { return false }
                        open[key] = channel
                        return true
                    }
                    guard admitted else {
                        var writer = RESPReplyWriter(buffer: channel.allocator.buffer(capacity: 64))
                        writer.error("ERR max number of clients reached")
                        channel.writeAndFlush(writer.buffer).whenComplete { _ in channel.close(promise: nil) }
                        return
                    }
                    channel.closeFuture.whenComplete { [self] _ in
                        _ = openConnections.withLock { $0.removeValue(forKey: key) }
                    }
                    let reader = RESPRequestReader(maxArguments: maxArguments, maxBufferedBytes: maxRequestBytes)
                    let state = RESPConnectionState(id: nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue)
                    // GET, MGET and EXISTS of keys L1 holds are answered where they lie in the
                    // read buffer, without copying their arguments (`executeInPlace`).
                    try channel.pipeline.syncOperations.addHandler(RESPConnectionHandler(
                        reader: reader, executor: executor, state: state, answersInPlace: true,
                        submit: { job in jobs.submit(job) }))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        let port = server.localAddress?.port ?? configuration.port
        logger.info("RESP front end listening on \(configuration.host):\(port)")
        await onBound(port)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while let batch = await jobs.next() {
                    for job in batch {
                        group.addTask { await job.run() }
                    }
                }
            }
        } onGracefulShutdown: { [self] in
            server.close(promise: nil)
            jobs.finish()
            for channel in openConnections.withLock({ Array($0.values) }) {
                channel.close(promise: nil)
            }
        }
        // Cancelled rather than shut down: still release the port and the clients.
        try? await server.close()
        for channel in openConnections.withLock({ Array($0.values) }) {
            channel.close(promise: nil)
        }
    }
}
