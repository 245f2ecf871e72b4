import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pub/sub connection whose channel and pattern subscriptions survive reconnects; messages arrive as an `AsyncSequence`.
///
/// `run()` keeps the connection alive: it PINGs every `subscriber.pingInterval` (a PONG later than
/// `commandTimeout` counts as a dead link), reconnects with backoff, and re-subscribes to every
/// channel and pattern before publishing `.connected`. So `.connected` on `states` means every
/// subscription is live again, and anything published after it will be delivered.
public final class RedisSubscriber: Service, Sendable {
    private struct Subscriptions {
        var channels: Set<String> = []
        var patterns: Set<String> = []
        /// Sharded channels (`SSUBSCRIBE`); in a cluster they all hash to one slot.
        var shardChannels: Set<String> = []
        /// The connection the current set was (or is being) subscribed on. Guarded by the same
        /// lock as the sets, so a subscribe racing a reconnect is never lost: either the
        /// re-subscription snapshot contains it, or it sees the new connection and sends itself.
        var connection: RedisConnection?
    }

    public let configuration: RedisConfiguration
    private let driver: ConnectionDriver
    private let broadcaster: Broadcaster<RedisPubSubMessage>
    private let subscriptions = Mutex(Subscriptions())
    private let dropped = Atomic<Int>(0)
    private let logger: Logger
    /// Set in a cluster: where the sharded channels' slot lives.
    private let clusterTarget: ClusterSubscriptionTarget?

    public init(
        configuration: RedisConfiguration = .init(),
        logger: Logger = Logger(label: "concord.redis.subscriber"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.logger = logger
        let clusterTarget = configuration.cluster.map { ClusterSubscriptionTarget(configuration: configuration, cluster: $0, logger: logger) }
        self.clusterTarget = clusterTarget
        self.driver = ConnectionDriver(
            configuration: configuration, logger: logger, eventLoop: eventLoopGroup.next(), role: "subscriber",
            clusterTarget: clusterTarget)
        self.broadcaster = Broadcaster(replayLatest: false, bufferSize: configuration.subscriber.messageBufferSize)
    }

    /// Connects, subscribes and reconnects until cancelled or a graceful shutdown; call it once.
    public func run() async throws {
        try await run(handlingMessages: nil)
    }

    /// `run()`, also handing every message to `handler` on the connection's event loop before
    /// the `messages` streams get it. `handler` must return quickly and never block: it runs on
    /// the I/O thread. It saves a task hop for a consumer that only forwards messages.
    public func run(handlingMessages handler: (@Sendable (RedisPubSubMessage) -> Void)?) async throws {
        await cancelWhenGracefulShutdown {
            await self.driver.run(
                onMessage: { [self] message in
                    handler?(message)
                    self.deliver(message)
                },
                prepare: { [self] connection in try await self.resubscribe(on: connection) },
                whileConnected: { [self] connection in await self.keepAlive(connection) }
            )
        }
        broadcaster.finish()
    }

    /// Messages from now on, for all subscriptions; each call returns a new, independent stream.
    /// Create it before subscribing so no early message is missed. It finishes when `run()` returns.
    public var messages: AsyncStream<RedisPubSubMessage> { broadcaster.makeStream() }

    /// A new stream of connection states for each call; it starts with the current state.
    public var states: AsyncStream<RedisConnectionState> { driver.states.makeStream() }

    public var isConnected: Bool { driver.isConnected }

    /// Messages dropped because a consumer of `messages` fell more than `messageBufferSize` behind.
    public var droppedMessages: Int { dropped.load(ordering: .relaxed) }

    /// Returns once connected and re-subscribed; throws `.timeout` (or `.authenticationFailed`) after `timeout`.
    public func waitUntilConnected(timeout: Duration) async throws {
        _ = try await driver.waitForConnection(timeout: timeout, code: .timeout)
    }

    /// The channels and patterns currently wanted.
    public var subscribedChannels: Set<String> { subscriptions.withLock { $0.channels } }
    public var subscribedPatterns: Set<String> { subscriptions.withLock { $0.patterns } }
    public var subscribedShardChannels: Set<String> { subscriptions.withLock { $0.shardChannels } }

    // MARK: Subscribing

    /// Subscribes to `channels`. Returns once Redis confirmed, or at once while disconnected: the
    /// subscription is kept and made on the next connect. Throws `.server` if Redis rejects it.
    public func subscribe(channels: [String]) async throws {
        try await change(command: "SUBSCRIBE", names: channels, adding: true, in: \.channels)
    }

    /// Subscribes to glob-style `patterns` (`PSUBSCRIBE`); same contract as `subscribe(channels:)`.
    public func psubscribe(patterns: [String]) async throws {
        try await change(command: "PSUBSCRIBE", names: patterns, adding: true, in: \.patterns)
    }

    /// Subscribes to sharded `channels` (`SSUBSCRIBE`, Redis 7+); same contract as
    /// `subscribe(channels:)`. In a cluster the connection goes to the primary that owns their
    /// slot, so all of them must hash to one slot (`.crossSlot` otherwise). When Redis ends the
    /// subscription by itself (the slot migrated, the shard failed over), the subscriber finds
    /// the new owner and subscribes there; `states` shows it as a reconnect.
    public func ssubscribe(channels: [String]) async throws {
        if let clusterTarget {
            let slots = Set((subscribedShardChannels.union(channels)).map { ClusterHashSlot.slot(of: $0) })
            guard slots.count <= 1 else {
                throw RedisError(.crossSlot, "the sharded channels of one subscriber must share a slot; these hash to slots \(slots.sorted())")
            }
            clusterTarget.slot = slots.first
        }
        try await change(command: "SSUBSCRIBE", names: channels, adding: true, in: \.shardChannels)
    }

    /// Stops receiving sharded `channels`. No SUNSUBSCRIBE goes on the wire, because a
    /// `sunsubscribe` push is how Redis says a slot moved: the connection is renewed instead.
    public func sunsubscribe(channels: [String]) async throws {
        let connection = subscriptions.withLock { state -> RedisConnection? in
            var removed = false
            for channel in channels where state.shardChannels.remove(channel) != nil { removed = true }
            return removed ? state.connection : nil
        }
        connection?.close(RedisError(.connectionClosed, "sharded channels unsubscribed; renewing the subscription"))
    }

    public func unsubscribe(channels: [String]) async throws {
        try await change(command: "UNSUBSCRIBE", names: channels, adding: false, in: \.channels)
    }

    public func punsubscribe(patterns: [String]) async throws {
        try await change(command: "PUNSUBSCRIBE", names: patterns, adding: false, in: \.patterns)
    }

    private func change(
        command: RedisArgument,
        names: [String],
        adding: Bool,
        in set: WritableKeyPath<Subscriptions, Set<String>>
    ) async throws {
        var changed: [String] = []
        var sent = false
        do {
            // The wanted set is updated and the command queued under one lock, so the order of
            // commands on the wire always matches the order of changes to the set, even while a
            // reconnect is re-subscribing.
            let reply = try await withUnsafeThrowingContinuation { continuation in
                subscriptions.withLock { state in
                    for name in names {
                        if adding ? state[keyPath: set].insert(name).inserted : state[keyPath: set].remove(name) != nil {
                            changed.append(name)
                        }
                    }
                    if !changed.isEmpty, let connection = state.connection {
                        connection.submit(Self.command(command, changed), replies: changed.count, continuation: continuation)
                        sent = true
                    }
                }
                if !sent { continuation.resume(returning: .null) }
            }
            let current = subscriptions.withLock { $0.connection }
            if let moved = Self.moved(reply, on: current) {
                // The slot is elsewhere: subscribe there. The wanted set keeps the channels.
                clusterTarget?.moved(to: moved)
                current?.close(RedisError(.shardSubscriptionMoved, "SSUBSCRIBE was redirected to \(moved)"))
                return
            }
            _ = try RedisClient.checked(reply)
        } catch let error as RedisError where error.code == .server {
            if adding {
                subscriptions.withLock { state in
                    for name in changed { state[keyPath: set].remove(name) }
                }
            }
            throw error
        } catch {
            // The connection failed under us; the wanted set is already updated and the next
            // connect re-subscribes from it.
            logger.debug("subscription change deferred to reconnect", metadata: ["concord.redis.error": "\(error)"])
        }
    }

    private static func command(_ command: RedisArgument, _ names: [String]) -> [RedisArgument] {
        var arguments: [RedisArgument] = [command]
        arguments.reserveCapacity(names.count + 1)
        for name in names { arguments.append(RedisArgument(name)) }
        return arguments
    }

    // MARK: Connection hooks

    private func resubscribe(on connection: RedisConnection) async throws {
        var counts = [0, 0, 0]
        let kinds: [(command: RedisArgument, set: KeyPath<Subscriptions, Set<String>>)] = [
            ("SUBSCRIBE", \.channels), ("PSUBSCRIBE", \.patterns), ("SSUBSCRIBE", \.shardChannels),
        ]
        for (index, kind) in kinds.enumerated() {
            // Snapshot and submit under the lock (see `change`): from here on, subscribe calls
            // see this connection and send their own commands after ours.
            let reply = try await withUnsafeThrowingContinuation { continuation in
                let names = subscriptions.withLock { state -> [String] in
                    state.connection = connection
                    let names = Array(state[keyPath: kind.set])
                    if !names.isEmpty {
                        connection.submit(Self.command(kind.command, names), replies: names.count, continuation: continuation)
                    }
                    return names
                }
                if names.isEmpty { continuation.resume(returning: .null) }
                counts[index] = names.count
            }
            if let moved = Self.moved(reply, on: connection) {
                clusterTarget?.moved(to: moved)
                throw RedisError(.shardSubscriptionMoved, "SSUBSCRIBE was redirected to \(moved)")
            }
            _ = try RedisClient.checked(reply)
        }
        logger.debug(
            "subscriptions restored",
            metadata: [
                "concord.redis.channels": "\(counts[0])", "concord.redis.patterns": "\(counts[1])",
                "concord.redis.shardChannels": "\(counts[2])",
            ])
    }

    /// Where a MOVED error reply sends a sharded subscription; nil for any other reply. A MOVED
    /// without a host names the host of the node that answered, the one `connection` reaches.
    private static func moved(_ reply: RESPValue, on connection: RedisConnection?) -> RedisConfiguration.Cluster.Endpoint? {
        guard case .error(let message) = reply, message.hasPrefix("MOVED") else { return nil }
        let answeredBy = connection?.channel.remoteAddress?.ipAddress ?? "127.0.0.1"
        guard case .moved(_, let endpoint)? = try? ClusterRedirection(errorMessage: message, answeredBy: answeredBy) else { return nil }
        return endpoint
    }

    /// PINGs until the connection fails; a late PONG trips the command timeout, which closes it.
    private func keepAlive(_ connection: RedisConnection) async {
        while true {
            do {
                try await Task.sleep(for: configuration.subscriber.pingInterval)
                _ = try await connection.send(["PING"])
            } catch {
                return
            }
        }
    }

    private func deliver(_ message: RedisPubSubMessage) {
        let droppedNow = broadcaster.publish(message)
        guard droppedNow > 0 else { return }
        let total = dropped.add(droppedNow, ordering: .relaxed).newValue
        // Log the 1st, 2nd, 4th, 8th... drop: visible without flooding the log.
        if total & (total - 1) == 0 {
            logger.warning(
                "pub/sub consumer too slow; messages dropped",
                metadata: ["concord.redis.dropped": "\(total)", "concord.redis.channel": "\(message.channel)"])
        }
    }
}
