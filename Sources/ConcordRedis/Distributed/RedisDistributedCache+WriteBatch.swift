@_spi(ConcordBackend) import Concord

/// Group commit of L2 writes: one `CoherenceScripts.writeBatch` call for the mutations that
/// queued while the previous write script was in flight.
///
/// Cluster mode batches too: every key of a cache (entries, tags, head, log) carries the hash
/// tag `{cacheName}`, so one cache is one slot and any batch of its mutations is a legal
/// single-slot script, exactly as each single write script already is.
extension RedisDistributedCache {
    /// The SHA1 digests of the write scripts (single and batch), by which their `EVALSHA` calls
    /// are found in Redis's `SLOWLOG` and monitoring output.
    public static var writeScriptDigests: Set<String> {
        [CoherenceScripts.write.sha1, CoherenceScripts.writeBatch.sha1]
    }

    /// One mutation's part of a write script call.
    struct PreparedWrite: Sendable {
        /// The key the mutation changes: entry, tag marker, or the head for a clear.
        let target: String
        /// ARGV 1–7 and 11 of `CoherenceScripts.write`: kind, version, envelope, ttl ms, store,
        /// publish, message body, highest believable version.
        let arguments: [RedisArgument]
        /// ARGV 13: a tag removal's head field, empty for other kinds.
        let tagRemovalField: RedisArgument
        /// ARGV 14…: for a set, the head fields of its entry's tags; `1` for a live clear or
        /// tag removal.
        let tagFields: [RedisArgument]
        /// What the mutation adds to a batch: envelope, message and key.
        let byteCount: Int
    }

    static func prepareWrite(
        namespace: RedisNamespace,
        mutation: CacheMutation,
        store: Bool,
        publish: Bool,
        authenticator: (any MessageAuthenticator)?,
        maxClockDrift: Duration
    ) -> PreparedWrite {
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
        let envelope = mutation.entry?.encoded() ?? []
        let ttl = max(1, mutation.timeToLive.millisecondsClamped)
        let tagFields: [String]
        switch mutation.kind {
        case .set: tagFields = (mutation.entry?.tags ?? []).map(RedisNamespace.tagField)
        case .removeTag, .clearRemove, .clearExpire: tagFields = mutation.ordersAfterStoredSets ? ["1"] : []
        case .remove, .expire: tagFields = []
        }
        let tagRemovalField = mutation.kind == .removeTag ? RedisNamespace.tagField(mutation.key) : ""
        let believable = CacheVersion(
            milliseconds: mutation.version.milliseconds.addingReportingOverflow(maxClockDrift.millisecondsClamped).overflow
                ? .max : mutation.version.milliseconds + maxClockDrift.millisecondsClamped,
            counter: .max, node: ""
        ).orderedText + "~"
        return PreparedWrite(
            target: target,
            arguments: [
                RedisArgument(Int(mutation.kind.rawValue)),
                RedisArgument(mutation.version.orderedText),
                RedisArgument(envelope),
                RedisArgument(ttl),
                store ? "1" : "0",
                publish ? "1" : "0",
                RedisArgument(body),
                RedisArgument(believable),
            ],
            tagRemovalField: RedisArgument(tagRemovalField),
            tagFields: tagFields.map { RedisArgument($0) },
            byteCount: envelope.count + body.count + target.utf8.count + tagRemovalField.utf8.count
                + tagFields.reduce(0) { $0 + $1.utf8.count }
        )
    }

    /// Sends a batch: alone, through the single write script; else as one `writeBatch` call.
    /// A failed call fails every mutation of the batch with the error a single write gets.
    static func runWrites(
        _ batch: [PreparedWrite], client: RedisClient, namespace: RedisNamespace, logMaxLength: Int
    ) async -> [Result<MutationOutcome, any Error>] {
        if batch.count == 1 {
            do {
                return [.success(try await runWrite(batch[0], client: client, namespace: namespace, logMaxLength: logMaxLength))]
            } catch {
                return [.failure(error)]
            }
        }
        do {
            let outcomes = try await runWriteBatch(batch, client: client, namespace: namespace, logMaxLength: logMaxLength)
            return outcomes.map { .success($0) }
        } catch {
            return Array(repeating: .failure(error), count: batch.count)
        }
    }

    /// Applies `batch` in order with one `CoherenceScripts.writeBatch` call.
    static func runWriteBatch(
        _ batch: [PreparedWrite], client: RedisClient, namespace: RedisNamespace, logMaxLength: Int
    ) async throws -> [MutationOutcome] {
        var keys: [RedisArgument] = [RedisArgument(namespace.head), RedisArgument(namespace.log)]
        keys.reserveCapacity(2 + batch.count)
        var arguments: [RedisArgument] = [
            RedisArgument(batch.count),
            RedisArgument(logMaxLength),
            RedisArgument(CoherenceScripts.candidateEpoch()),
            RedisArgument(namespace.channel),
            client.usesShardedPubSub ? "SPUBLISH" : "PUBLISH",
        ]
        arguments.reserveCapacity(arguments.count + 10 * batch.count)
        for write in batch {
            keys.append(RedisArgument(write.target))
            arguments.append(contentsOf: write.arguments)
            arguments.append(write.tagRemovalField)
            arguments.append(RedisArgument(write.tagFields.count))
            arguments.append(contentsOf: write.tagFields)
        }
        let reply = try await evalWrite(client) {
            try await client.evalScript(CoherenceScripts.writeBatch, keys: keys, arguments: arguments)
        }
        return try batchOutcomes(reply, count: batch.count)
    }

    /// The batch script's flattened replies, one outcome per mutation; any other shape is a
    /// `protocolError`, as the reply comes from the wire.
    static func batchOutcomes(_ reply: RESPValue, count: Int) throws -> [MutationOutcome] {
        guard let fields = reply.array, fields.count == 2 * count else {
            throw RedisError(.protocolError, "the batch write script answered \(reply) for \(count) mutations")
        }
        return try (0..<count).map { try outcome(applied: fields[2 * $0], detail: fields[2 * $0 + 1]) }
    }
}
