@_spi(ConcordBackend) import Concord
import Logging
import Synchronization

/// The L2 on Redis: entries as hashes `{v: version, d: envelope, x: expire version}` under
/// `concord:{cache}:e:<key>`, written only through the coherence write script so every write is
/// version-fenced and announced in the same atomic step.
///
/// Writes are group-committed: while one write script call is in flight, concurrent `apply`
/// calls queue, and the next call carries all of them (up to `WriteBatchLimit`), applied in
/// order exactly as their single scripts would be back to back. Each caller gets its own
/// outcome after Redis answered the call that carried its write, so versions, acknowledgement
/// and the pending-write queue behave as without batching; Redis pays the per-script cost once
/// per batch instead of once per write.
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
    /// Concurrent writes go to Redis as one script call while another is in flight.
    let writes: GroupCommit<PreparedWrite, MutationOutcome>

    /// An L2 on `client`; with `runsClient` (true unless something else runs the client), its
    /// `run()` runs the client.
    public init(
        client: RedisClient, cacheName: String, logMaxLength: Int = 100_000,
        authenticator: (any MessageAuthenticator)? = nil,
        maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift,
        runsClient: Bool = true, writeBatchLimit: WriteBatchLimit = WriteBatchLimit(),
        logger: Logger = Logger(label: "concord.redis.l2")
    ) {
        self.client = client
        self.namespace = RedisNamespace(cacheName: cacheName)
        self.logMaxLength = logMaxLength
        self.authenticator = authenticator
        self.maxClockDrift = maxClockDrift
        self.runsClient = runsClient
        self.logger = logger
        let namespace = self.namespace
        writes = GroupCommit(maxCount: writeBatchLimit.mutations, maxBytes: writeBatchLimit.bytes) { batch in
            await Self.runWrites(batch, client: client, namespace: namespace, logMaxLength: logMaxLength)
        }
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
        guard let (envelope, readMarkers, logHead) = try Self.readReply(reply) else { return nil }
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
        var read = DistributedStateRules.evaluate(entry, markers: markers)
        read?.logHead = logHead
        return read
    }

    public func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        let write = Self.prepareWrite(
            namespace: namespace, mutation: mutation, store: true, publish: publish,
            authenticator: authenticator, maxClockDrift: maxClockDrift
        )
        return try await writes.submit(write, bytes: write.byteCount)
    }

    /// Runs the write script for one mutation; shared with `RedisBackplane.publish`.
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
        let write = prepareWrite(
            namespace: namespace, mutation: mutation, store: store, publish: publish,
            authenticator: authenticator, maxClockDrift: maxClockDrift
        )
        return try await runWrite(write, client: client, namespace: namespace, logMaxLength: logMaxLength)
    }

    static func runWrite(_ write: PreparedWrite, client: RedisClient, namespace: RedisNamespace, logMaxLength: Int) async throws -> MutationOutcome {
        let reply = try await evalWrite(client) {
            var arguments = write.arguments
            arguments.insert(contentsOf: [
                RedisArgument(logMaxLength),
                RedisArgument(CoherenceScripts.candidateEpoch()),
                RedisArgument(namespace.channel),
            ], at: 7)
            arguments.append(client.usesShardedPubSub ? "SPUBLISH" : "PUBLISH")
            arguments.append(write.tagRemovalField)
            arguments.append(contentsOf: write.tagFields)
            return try await client.evalScript(
                CoherenceScripts.write,
                keys: [RedisArgument(write.target), RedisArgument(namespace.head), RedisArgument(namespace.log)],
                arguments: arguments
            )
        }
        guard let fields = reply.array, fields.count == 2 else {
            throw RedisError(.protocolError, "the write script answered \(reply)")
        }
        return try outcome(applied: fields[0], detail: fields[1])
    }

    /// A script call that writes; OOM becomes the cache's `distributedOutOfMemory`, which the
    /// pending-write queue and the node's 503 recognise.
    static func evalWrite(_ client: RedisClient, _ call: () async throws -> RESPValue) async throws -> RESPValue {
        do {
            return try await call()
        } catch let error as RedisError where error.isOutOfMemory {
            throw CacheError(
                .distributedOutOfMemory,
                "Redis refused the write: it is at maxmemory and its eviction policy (noeviction) keeps it from making room",
                underlying: error
            )
        }
    }

    /// One mutation's `{applied, seq}` or `{0, newerVersion}` from the write script.
    static func outcome(applied: RESPValue, detail: RESPValue) throws -> MutationOutcome {
        guard let applied = applied.int else {
            throw RedisError(.protocolError, "the write script answered \(applied) where 1 or 0 belongs")
        }
        if applied == 1 {
            let sequence = detail.int ?? 0
            return .applied(sequence: sequence > 0 ? UInt64(sequence) : nil)
        }
        guard let newer = version(detail) else {
            throw RedisError(.protocolError, "the write script answered an unreadable newer version: \(detail)")
        }
        return .superseded(by: newer)
    }

    /// What the read script answered: nil for a miss, else the envelope, the markers read with
    /// it and the log's head then (nil when Redis holds no readable head). Any other shape is a
    /// `protocolError`: the reply comes from the wire.
    static func readReply(_ reply: RESPValue) throws -> (envelope: [UInt8], markers: DistributedStateRules.Markers, logHead: BackplaneHead?)? {
        guard let fields = reply.array else {
            if reply.isNull { return nil }
            throw RedisError(.protocolError, "the read script answered \(reply) instead of an array or nil")
        }
        guard fields.count == 8, let envelope = fields[1].bytes, case .integer(let sameEpoch) = fields[5],
              let headEpoch = fields[6].string, let headSequence = fields[7].string
        else {
            throw RedisError(.protocolError, "the read script answered \(fields.count) fields instead of 5, an epoch flag and the head")
        }
        let markers = DistributedStateRules.Markers(
            expire: version(fields[2]),
            clearRemove: version(fields[3]),
            clearExpire: version(fields[4]),
            isFromAnotherEpoch: sameEpoch == 0
        )
        // A head that is missing or unreadable proves nothing about the entry: no head.
        let logHead = headEpoch.isEmpty ? nil : UInt64(headSequence).map { BackplaneHead(epoch: headEpoch, sequence: $0) }
        return (envelope, markers, logHead)
    }

    static func version(_ value: RESPValue) -> CacheVersion? {
        guard let text = value.string, !text.isEmpty else { return nil }
        return CacheVersion(orderedText: text)
    }
}
