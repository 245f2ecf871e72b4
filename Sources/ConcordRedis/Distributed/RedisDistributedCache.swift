@_spi(ConcordBackend) import Concord
import Logging
import Synchronization

/// The L2 on Redis: entries as hashes `{v: version, d: envelope, x: expire version}` under
/// `concord:{cache}:e:<key>`, written only through the coherence write script so every write is
/// version-fenced and announced in the same atomic step.
public final class RedisDistributedCache: DistributedCache {
    public let client: RedisClient
    public let namespace: RedisNamespace
    /// Messages the log keeps (`XADD MAXLEN ~`).
    public let logMaxLength: Int
    /// Signs every message and log entry this cache writes; nil when no backplane key is set.
    public let authenticator: (any MessageAuthenticator)?
    /// A stored version more than this ahead of a write's own version is not believed (see
    /// `CoherenceScripts.write`).
    public let maxClockDrift: Duration
    private let runsClient: Bool
    private let logger: Logger
    private let corrupt = Atomic<Int>(0)

    /// An L2 on `client`; with `runsClient` (true unless something else runs the client), its
    /// `run()` runs the client.
    public init(
        client: RedisClient, cacheName: String, logMaxLength: Int = 100_000,
        authenticator: (any MessageAuthenticator)? = nil,
        maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift,
        runsClient: Bool = true, logger: Logger = Logger(label: "concord.redis.l2")
    ) {
        self.client = client
        self.namespace = RedisNamespace(cacheName: cacheName)
        self.logMaxLength = logMaxLength
        self.authenticator = authenticator
        self.maxClockDrift = maxClockDrift
        self.runsClient = runsClient
        self.logger = logger
    }

    /// Entries that could not be decoded and were read as misses.
    public var corruptEntries: Int { corrupt.load(ordering: .relaxed) }

    public func run(whenReachable: @escaping @Sendable () -> Void) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            let states = client.states
            group.addTask {
                for await state in states {
                    if case .connected = state { whenReachable() }
                }
            }
            if runsClient {
                try await client.run()
                group.cancelAll()
            }
        }
    }

    public func read(_ key: String) async throws -> DistributedRead? {
        let reply = try await client.evalScript(
            CoherenceScripts.read,
            keys: [RedisArgument(namespace.entry(key)), RedisArgument(namespace.head)]
        )
        guard let (envelope, readMarkers) = try Self.readReply(reply) else { return nil }
        let entry: DistributedEntry
        do {
            entry = try DistributedEntry.decode(envelope)
        } catch {
            corrupt.add(1, ordering: .relaxed)
            logger.warning("L2 entry is not a readable envelope; reading it as a miss", metadata: [
                "concord.key": .string(key), "concord.error": "\(error)",
            ])
            return nil
        }
        var markers = readMarkers
        if !entry.tags.isEmpty {
            var command: [RedisArgument] = ["HMGET", RedisArgument(namespace.head)]
            for tag in entry.tags { command.append(RedisArgument(RedisNamespace.tagField(tag))) }
            let tagReply = try await client.send(command)
            markers.tagRemovals = (tagReply.array ?? []).compactMap(Self.version)
        }
        return DistributedStateRules.evaluate(entry, markers: markers)
    }

    public func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        try await Self.runWrite(
            client: client, namespace: namespace, mutation: mutation, store: true, publish: publish,
            logMaxLength: logMaxLength, authenticator: authenticator, maxClockDrift: maxClockDrift
        )
    }

    /// Runs the write script; shared with `RedisBackplane.publish`.
    static func runWrite(
        client: RedisClient,
        namespace: RedisNamespace,
        mutation: CacheMutation,
        store: Bool,
        publish: Bool,
        logMaxLength: Int,
        authenticator: (any MessageAuthenticator)?,
        maxClockDrift: Duration
    ) async throws -> MutationOutcome {
        let target: String
        switch mutation.kind {
        case .set, .remove, .expire: target = namespace.entry(mutation.key)
        case .removeTag: target = namespace.tagExpiries
        case .clearRemove, .clearExpire: target = namespace.head
        }
        let body = BackplaneMessage.encodeBody(
            kind: mutation.kind, key: mutation.key, version: mutation.version,
            writeID: mutation.writeID, instance: mutation.instance, authenticator: authenticator,
            traceContext: mutation.traceContext
        )
        let ttl = max(1, mutation.timeToLive.millisecondsClamped)
        let believable = CacheVersion(
            milliseconds: mutation.version.milliseconds.addingReportingOverflow(maxClockDrift.millisecondsClamped).overflow
                ? .max : mutation.version.milliseconds + maxClockDrift.millisecondsClamped,
            counter: .max, node: ""
        ).orderedText + "~"
        let reply: RESPValue
        do {
            reply = try await client.evalScript(
                CoherenceScripts.write,
                keys: [RedisArgument(target), RedisArgument(namespace.head), RedisArgument(namespace.log)],
                arguments: [
                    RedisArgument(Int(mutation.kind.rawValue)),
                    RedisArgument(mutation.version.orderedText),
                    RedisArgument(mutation.entry?.encoded() ?? []),
                    RedisArgument(ttl),
                    store ? "1" : "0",
                    publish ? "1" : "0",
                    RedisArgument(body),
                    RedisArgument(logMaxLength),
                    RedisArgument(CoherenceScripts.candidateEpoch()),
                    RedisArgument(namespace.channel),
                    RedisArgument(believable),
                    client.usesShardedPubSub ? "SPUBLISH" : "PUBLISH",
                    RedisArgument(mutation.kind == .removeTag ? RedisNamespace.tagField(mutation.key) : ""),
                ] + (mutation.entry?.tags ?? []).map { RedisArgument(RedisNamespace.tagField($0)) }
            )
        } catch let error as RedisError where error.isOutOfMemory {
            throw CacheError(
                .distributedOutOfMemory,
                "Redis refused the write: it is at maxmemory and its eviction policy (noeviction) keeps it from making room",
                underlying: error
            )
        }
        guard let fields = reply.array, fields.count == 2, let applied = fields[0].int else {
            throw RedisError(.protocolError, "the write script answered \(reply)")
        }
        if applied == 1 {
            let sequence = fields[1].int ?? 0
            return .applied(sequence: sequence > 0 ? UInt64(sequence) : nil)
        }
        guard let newer = version(fields[1]) else {
            throw RedisError(.protocolError, "the write script answered an unreadable newer version: \(fields[1])")
        }
        return .superseded(by: newer)
    }

    /// What the read script answered: nil for a miss, else the envelope and the markers read
    /// with it. Any other shape is a `protocolError`: the reply comes from the wire.
    static func readReply(_ reply: RESPValue) throws -> (envelope: [UInt8], markers: DistributedStateRules.Markers)? {
        guard let fields = reply.array else {
            if reply.isNull { return nil }
            throw RedisError(.protocolError, "the read script answered \(reply) instead of an array or nil")
        }
        guard fields.count == 6, let envelope = fields[1].bytes, case .integer(let sameEpoch) = fields[5] else {
            throw RedisError(.protocolError, "the read script answered \(fields.count) fields instead of 5 and an epoch flag")
        }
        let markers = DistributedStateRules.Markers(
            expire: version(fields[2]),
            clearRemove: version(fields[3]),
            clearExpire: version(fields[4]),
            isFromAnotherEpoch: sameEpoch == 0
        )
        return (envelope, markers)
    }

    static func version(_ value: RESPValue) -> CacheVersion? {
        guard let text = value.string, !text.isEmpty else { return nil }
        return CacheVersion(orderedText: text)
    }
}
