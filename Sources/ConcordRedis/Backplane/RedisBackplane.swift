import Concord
import Logging

/// The backplane on Redis: messages on the channel `concord:{cache}:bp` through a dedicated
/// subscriber connection (sharded pub/sub in a Redis Cluster, so only the shard that owns the
/// cache's slot carries them), the invalidation log in the stream `concord:{cache}:log`, the epoch
/// and the sequence. The subscriber re-subscribes on every reconnect and reports it, so the
/// cache can replay what it missed.
public final class RedisBackplane: Backplane {
    public let client: RedisClient
    public let subscriber: RedisSubscriber
    public let namespace: RedisNamespace
    public let logMaxLength: Int
    /// Signs what `publish` writes and checks what the cache receives; nil without a backplane key.
    public let authenticator: (any MessageAuthenticator)?
    private let maxClockDrift: Duration
    private let runsClient: Bool
    private let logger: Logger

    /// A backplane on `client` and `subscriber`; with `runsClient`, its `run()` also runs the
    /// command client (set it when no `RedisDistributedCache` runs it).
    public init(
        client: RedisClient,
        subscriber: RedisSubscriber,
        cacheName: String,
        logMaxLength: Int = 100_000,
        authenticator: (any MessageAuthenticator)? = nil,
        maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift,
        runsClient: Bool = false,
        logger: Logger = Logger(label: "concord.redis.backplane")
    ) {
        self.authenticator = authenticator
        self.maxClockDrift = maxClockDrift
        self.client = client
        self.subscriber = subscriber
        self.namespace = RedisNamespace(cacheName: cacheName)
        self.logMaxLength = logMaxLength
        self.runsClient = runsClient
        self.logger = logger
    }

    public func publish(_ mutation: CacheMutation) async throws -> UInt64 {
        let outcome = try await RedisDistributedCache.runWrite(
            client: client, namespace: namespace, mutation: mutation, store: false, publish: true,
            logMaxLength: logMaxLength, authenticator: authenticator, maxClockDrift: maxClockDrift
        )
        guard case .applied(let sequence) = outcome else { return 0 }
        return sequence ?? 0
    }

    public func head() async throws -> BackplaneHead {
        let reply = try await client.evalScript(
            CoherenceScripts.head,
            keys: [RedisArgument(namespace.head), RedisArgument(namespace.log)],
            arguments: [RedisArgument(CoherenceScripts.candidateEpoch())]
        )
        guard let fields = reply.array, fields.count == 2 || fields.count == 3, let epoch = fields[0].string,
            let sequence = fields[1].int, sequence >= 0
        else {
            throw RedisError(.protocolError, "the head script answered \(reply)")
        }
        // Unreadable text is no version: the clock simply does not follow it.
        let highest = fields.count == 3 ? fields[2].string.flatMap(CacheVersion.init(orderedText:)) : nil
        return BackplaneHead(epoch: epoch, sequence: UInt64(sequence), highestStoredVersion: highest)
    }

    /// Reads `0-from … 0-through` from the log stream in pages. The log is trimmed past `from`
    /// when its first entry in the range is not `0-from`.
    public func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead {
        guard from <= through else { return .messages([]) }
        var messages: [[UInt8]] = []
        var next = from
        let pageSize: UInt64 = 1000
        while next <= through {
            let last = min(through, next + pageSize - 1)
            let reply = try await client.send(
                "XRANGE", RedisArgument(namespace.log), RedisArgument("0-\(next)"), RedisArgument("0-\(last)")
            )
            guard let entries = reply.array else {
                throw RedisError(.protocolError, "XRANGE answered \(reply)")
            }
            var expected = next
            for entry in entries {
                guard let parts = entry.array, parts.count == 2, let id = parts[0].string,
                      let fields = parts[1].array, fields.count >= 2, let payload = fields[1].bytes
                else { throw RedisError(.protocolError, "XRANGE entry is malformed: \(entry)") }
                guard id == "0-\(expected)" else {
                    // The first missing id means the log was trimmed past it (or lost it).
                    return .trimmed
                }
                messages.append(payload)
                expected += 1
            }
            if expected <= last { return .trimmed }
            next = last + 1
        }
        return .messages(messages)
    }

    public var messageAuthenticator: (any MessageAuthenticator)? { authenticator }

    public func run(events: BackplaneEventSink) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if runsClient {
                group.addTask { try await self.client.run() }
            }
            let states = subscriber.states
            group.addTask {
                var wasConnected = false
                for await state in states {
                    switch state {
                    case .connected:
                        wasConnected = true
                        events(.subscribed)
                    case .disconnected(let error):
                        if wasConnected { events(.disconnected(reason: "\(error)")) }
                        wasConnected = false
                    case .connecting, .backingOff:
                        break
                    }
                }
            }
            if client.usesShardedPubSub {
                try await subscriber.ssubscribe(channels: [namespace.channel])
            } else {
                try await subscriber.subscribe(channels: [namespace.channel])
            }
            // Messages go from the connection's event loop straight to the cache's sink: the
            // propagation delay is one hand-off, not a forwarding task per hop.
            let channel = namespace.channel
            try await subscriber.run { message in
                guard message.channel == channel else { return }
                events(.message(message.payload))
            }
            group.cancelAll()
        }
    }
}
