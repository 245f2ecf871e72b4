@_spi(ConcordBackend) import Concord
import Logging
import Synchronization

/// The L2 on Memcached: Concord's envelope in a record per key, version-fenced with
/// compare-and-set, spread over the servers by ketama; invalidations go through an optional
/// backplane (Redis), or nowhere.
///
/// **Write, then notify.** Memcached cannot publish, so a mutation takes two steps: the record is
/// stored first (compare-and-set keeps the newer version), then the mutation is published on the
/// backplane. If the publish fails the call throws, the cache queues the mutation, and the retry
/// finds its own version already stored and publishes again: an acknowledged write is announced
/// at least once. If the store fails (memcached down), the mutation is announced all the same
/// before the call throws, and again when the queued retry stores it. A node that crashes between the steps leaves a stored write that nobody was
/// told about; it was never acknowledged, and other nodes' copies of the key stay in their L1
/// until their memory duration ends.
///
/// **Data loss.** Each server holds a generation id under `concord:<cache>:gen`. A restarted or
/// flushed server has none, so a new one is made. A server that rejoins the ring after failing is
/// flushed (`flush_all`) and given a new one, because keys written elsewhere while it was away
/// would make its copies stale; only the first node to see it back flushes it (the others find a
/// generation they do not know and just adopt it). Either way the cache is told that L2 lost
/// data, and so it is when a server it was connected to becomes unreachable: a tag or clear
/// marker lives on one server and hides entries on the others, so losing sight of it is losing
/// it. The cache then expires its L1 and every L2 entry (see `HybridCache`). Generations are
/// checked on every (re)connect and every `generationCheckInterval`.
public final class MemcachedDistributedCache: DistributedCache {
    /// Settings of the L2 on top of the client's.
    public struct Configuration: Sendable {
        /// Compare-and-set attempts per write before it fails with `.casConflict`.
        public var casRetryLimit: Int
        /// How often each server's generation is checked, which bounds how long a `flush_all`
        /// goes unnoticed.
        public var generationCheckInterval: Duration

        public init(casRetryLimit: Int = 16, generationCheckInterval: Duration = .milliseconds(500)) {
            self.casRetryLimit = max(1, casRetryLimit)
            self.generationCheckInterval = generationCheckInterval
        }
    }

    /// Counters of the L2, for stats and tests.
    public struct Statistics: Sendable, Equatable {
        /// Values too large for memcached: a tombstone was stored instead, fencing older values out.
        public var oversizedValues = 0
        /// Writes that ran out of compare-and-set attempts.
        public var casConflicts = 0
        /// Compare-and-set attempts lost to another writer and retried.
        public var casRetries = 0
        /// Times a server was found to have lost its data (restart, flush, rejoin).
        public var dataLosses = 0
    }

    public let client: MemcachedClient
    public let configuration: Configuration
    private let backplane: (any Backplane)?
    let keyspace: MemcachedKeyspace
    private let runsClient: Bool
    let logger: Logger
    let generations: Mutex<[Int: String]>
    /// Servers that lost data since the last clear this node stored: the markers they held are
    /// gone, so until a clear newer than every entry lands, each entry reads as expired.
    let unsettledLosses = Mutex<Set<Int>>([])
    let statistics = Mutex(Statistics())
    private let corrupt = Atomic<Int>(0)
    let dataLostSink = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// - Parameters:
    ///   - backplane: where mutations are announced after they are stored (the same `RedisBackplane`
    ///     the cache uses), or nil: nodes then stay coherent only within their L1 duration.
    ///   - runsClient: whether this cache's `run()` runs the client (true unless something else does;
    ///     generations are then checked on reconnect only by the heartbeat).
    public init(
        client: MemcachedClient,
        cacheName: String,
        backplane: (any Backplane)?,
        configuration: Configuration = .init(),
        runsClient: Bool = true,
        logger: Logger = Logger(label: "concord.memcached.l2")
    ) {
        self.client = client
        self.configuration = configuration
        self.backplane = backplane
        self.keyspace = MemcachedKeyspace(cacheName: cacheName)
        self.runsClient = runsClient
        self.logger = logger
        self.generations = Mutex([:])
    }

    public var corruptEntries: Int { corrupt.load(ordering: .relaxed) }
    public var stats: Statistics { statistics.withLock { $0 } }

    // MARK: Running

    public func run(whenReachable: @escaping @Sendable () -> Void) async throws {
        try await run(events: DistributedCacheEvents(reachable: whenReachable, dataLost: { _ in }))
    }

    public func run(events: DistributedCacheEvents) async throws {
        dataLostSink.withLock { $0 = events.dataLost }
        await withDiscardingTaskGroup { group in
            for index in client.configuration.servers.indices {
                let states = client.states(server: index)
                group.addTask {
                    var wasConnected = false
                    for await state in states {
                        if state.isConnected {
                            wasConnected = true
                            events.reachable()
                        } else if case .disconnected = state, wasConnected {
                            // The tag and clear markers this server holds are out of reach with it,
                            // and they hide entries kept on the other servers: as good as lost.
                            wasConnected = false
                            events.dataLost("memcached \(index) is unreachable, and with it the markers it holds")
                        }
                    }
                }
            }
            group.addTask { await self.checkGenerations() }
            if runsClient {
                await client.run(prepare: { server in try await self.prepare(server) })
                group.cancelAll()
            }
        }
    }

    // MARK: Addressing

    /// The server and memcached key for a name, and, when that server is not the key's home
    /// (the home is off the ring), the home's generation as this node knows it.
    private func locate(_ name: String) throws -> (server: Int, key: String, homeGeneration: String) {
        let key = keyspace.stored(name)
        guard let server = client.server(for: key) else {
            throw MemcachedError(.noServers, "no memcached server is reachable (\(client.configuration.servers.count) configured)")
        }
        guard let home = client.homeServer(for: key), home != server else { return (server, key, "") }
        return (server, key, generations.withLock { $0[home] } ?? "?")
    }

    /// A record as read from `server`: absent when it belongs to another key, or when it is a
    /// copy stored away from home during an earlier outage of the home server.
    private func current(_ record: MemcachedRecord?, owner: String, homeGeneration: String) -> MemcachedRecord? {
        guard let record, record.owner == owner else { return nil }
        if !record.homeGeneration.isEmpty, record.homeGeneration != homeGeneration { return nil }
        return record
    }

    private func readRecord(_ name: String, owner: String) async throws -> (record: MemcachedRecord?, cas: UInt64?) {
        let (server, key, homeGeneration) = try locate(name)
        let response = try await client.send(.get(key), toServer: server)
        guard let item = try MemcachedClient.item(response) else { return (nil, nil) }
        guard let record = MemcachedRecord.decode(item.value), record.owner == owner else {
            corrupt.add(1, ordering: .relaxed)
            logger.warning("memcached item is not a Concord record of this key; reading it as absent", metadata: ["concord.key": .string(owner)])
            return (nil, item.cas)
        }
        return (current(record, owner: owner, homeGeneration: homeGeneration), item.cas)
    }

    // MARK: Reading

    /// A marker record, and whether its server lost data since this node last learned its
    /// generation. The generation is read after the marker in the same round trip, so a flush
    /// that emptied the marker is always seen: the entries the marker hid, on other servers, must
    /// not read as fresh before the generation poll notices the loss.
    private func readMarker(_ name: String, owner: String) async throws -> (record: MemcachedRecord?, isLost: Bool) {
        let (server, key, homeGeneration) = try locate(name)
        let responses = try await client.sendInOrder([.get(key), .get(keyspace.generation)], toServer: server)
        var record: MemcachedRecord?
        if let item = try MemcachedClient.item(responses[0]) {
            if let decoded = MemcachedRecord.decode(item.value), decoded.owner == owner {
                record = current(decoded, owner: owner, homeGeneration: homeGeneration)
            } else {
                corrupt.add(1, ordering: .relaxed)
                logger.warning("memcached item is not a Concord record of this marker; reading it as absent", metadata: ["concord.key": .string(owner)])
            }
        }
        let unsettled = unsettledLosses.withLock { $0.contains(server) }
        let found = try MemcachedClient.item(responses[1]).map { String(decoding: $0.value, as: UTF8.self) }
        guard let known = generations.withLock({ $0[server] }) else {
            // Not learnt yet (the first poll ran before the connection was up, and another
            // component prepares the connections): what this read found is the generation.
            if let found, !found.isEmpty { adopt(found, server: server, reason: "first seen by a read") }
            return (record, unsettled)
        }
        guard found != known else { return (record, unsettled) }
        let generation = try await currentGeneration { try await client.send($0, toServer: server) }
        adopt(generation, server: server, reason: "it restarted or was flushed (seen by a read)")
        return (record, true)
    }

    /// The newest clear, or removal of one of `tags`. A set older than it is superseded by it (as
    /// in the Redis write script) instead of stored and hidden only when read, which would leave
    /// it fresh in its writer's L1 (a write queued during an outage and flushed after a clear
    /// its writer never heard). Memcached has no scripts: a clear landing between this read and
    /// the store is not seen here, and is announced to the writer like any other.
    private func newestHidingMarker(tags: [String]) async throws -> CacheVersion? {
        var versions: [CacheVersion] = []
        let (clear, _) = try await readMarker(keyspace.clear, owner: "")
        if let clear, clear.kind == .marker { versions += [clear.version, clear.secondVersion].compactMap { $0 } }
        for tag in tags {
            let (marker, _) = try await readMarker(keyspace.tag(tag), owner: tag)
            if let marker, marker.kind == .marker, let removed = marker.version { versions.append(removed) }
        }
        return versions.max()
    }

    public func read(_ key: String) async throws -> DistributedRead? {
        // Taken before any marker is read: the clear that settles a loss may land while this
        // read runs, after its clear marker was read and before its tag markers are.
        let unsettledBefore = unsettledLosses.withLock { !$0.isEmpty }
        async let entryRead = readRecord(keyspace.entry(key), owner: key)
        async let clearRead = readMarker(keyspace.clear, owner: "")
        let (entryRecord, _) = try await entryRead
        let (clear, clearLost) = try await clearRead
        guard let record = entryRecord, record.kind == .entry else { return nil }
        let entry: DistributedEntry
        do {
            entry = try DistributedEntry.decode(record.envelope)
        } catch {
            corrupt.add(1, ordering: .relaxed)
            logger.warning("L2 entry is not a readable envelope; reading it as a miss", metadata: [
                "concord.key": .string(key), "concord.error": "\(error)",
            ])
            return nil
        }
        var markers = DistributedStateRules.Markers(
            expire: record.secondVersion,
            clearRemove: clear?.kind == .marker ? clear?.version : nil,
            clearExpire: clear?.kind == .marker ? clear?.secondVersion : nil,
            isFromAnotherEpoch: unsettledBefore || clearLost
        )
        for tag in entry.tags {
            let (marker, lost) = try await readMarker(keyspace.tag(tag), owner: tag)
            if lost { markers.isFromAnotherEpoch = true }
            if let marker, marker.kind == .marker, let version = marker.version {
                markers.tagRemovals.append(version)
            }
        }
        return DistributedStateRules.evaluate(entry, markers: markers)
    }

    // MARK: Writing

    private enum Decision {
        /// Store this record.
        case store(MemcachedRecord)
        /// Leave the item as it is and report this outcome.
        case keep(MutationOutcome)
    }

    public func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        var outcome: MutationOutcome
        // A clear stored after a loss was seen is newer than every entry the lost markers hid.
        let settles = mutation.kind == .clearExpire || mutation.kind == .clearRemove
            ? unsettledLosses.withLock { $0 } : []
        do {
            outcome = try await store(mutation)
            if !settles.isEmpty { unsettledLosses.withLock { $0.subtract(settles) } }
        } catch {
            // Memcached is down while the backplane may be up: announce the mutation anyway, so
            // other nodes stop serving their older copies now rather than when memcached is back.
            // The cache queues the mutation and its retry stores and announces it again; a
            // duplicate announcement is harmless, as nodes apply versions, not messages.
            if publish, let backplane { _ = try? await backplane.publish(mutation) }
            throw error
        }
        if case .applied = outcome, publish, let backplane {
            // Stored first, announced second: see the type's documentation for a crash in between.
            outcome = .applied(sequence: try await backplane.publish(mutation))
        }
        return outcome
    }

    private func store(_ mutation: CacheMutation) async throws -> MutationOutcome {
        let version = mutation.version
        switch mutation.kind {
        case .set, .remove:
            if mutation.kind == .set, let hiding = try await newestHidingMarker(tags: mutation.entry?.tags ?? []), hiding >= version {
                return .superseded(by: hiding)
            }
            var record = MemcachedRecord(kind: .tombstone, version: version, owner: mutation.key, envelope: [])
            if mutation.kind == .set, let entry = mutation.entry {
                record = MemcachedRecord(kind: .entry, version: version, owner: mutation.key, envelope: entry.encoded())
                let size = keyspace.prefix.utf8.count + mutation.key.utf8.count + 64 + record.encoded().count + MemcachedConfiguration.itemOverhead
                if size > client.configuration.itemSizeLimit {
                    // Too large for memcached: fence older values out with a tombstone at this
                    // version, so no node reads an older value as current; the value lives in L1 only.
                    statistics.withLock { $0.oversizedValues += 1 }
                    logger.warning("value exceeds memcached's item size limit; stored a tombstone instead", metadata: [
                        "concord.key": .string(mutation.key), "concord.bytes": "\(entry.payload.count)",
                        "concord.memcached.limit": "\(client.configuration.itemSizeLimit)",
                    ])
                    record = MemcachedRecord(kind: .tombstone, version: version, owner: mutation.key, envelope: [])
                }
            }
            return try await update(keyspace.entry(mutation.key), owner: mutation.key, timeToLive: mutation.timeToLive) { current in
                if let current, current.kind != .marker, let stored = current.version {
                    if stored == version { return .keep(.applied(sequence: nil)) }
                    if stored > version { return .keep(.superseded(by: stored)) }
                }
                // An expire newer than this write stays (as in the Redis write script): a write
                // flushed late must not make its older value fresh again. A set under it is
                // superseded by it, so its writer does not keep it fresh in L1 either.
                if mutation.kind == .set, let expired = current?.secondVersion, expired >= version {
                    return .keep(.superseded(by: expired))
                }
                var stored = record
                if let expired = current?.secondVersion, expired > version { stored.secondVersion = expired }
                return .store(stored)
            }
        case .expire:
            return try await update(keyspace.entry(mutation.key), owner: mutation.key, timeToLive: nil, newItemTimeToLive: mutation.timeToLive) { current in
                // A key without an entry keeps the expire as a marker record, so an older write
                // that lands later is stored stale.
                guard var current else {
                    return .store(MemcachedRecord(kind: .marker, secondVersion: version, owner: mutation.key, envelope: []))
                }
                if current.kind != .marker, let stored = current.version, stored >= version { return .keep(.superseded(by: stored)) }
                if let expired = current.secondVersion, expired >= version { return .keep(.applied(sequence: nil)) }
                current.secondVersion = version
                return .store(current)
            }
        case .removeTag:
            return try await update(keyspace.tag(mutation.key), owner: mutation.key, timeToLive: mutation.timeToLive) { current in
                if let stored = current?.version, stored >= version { return .keep(.applied(sequence: nil)) }
                return .store(MemcachedRecord(kind: .marker, version: version, owner: mutation.key, envelope: []))
            }
        case .clearRemove, .clearExpire:
            return try await update(keyspace.clear, owner: "", timeToLive: mutation.timeToLive) { current in
                var marker = current?.kind == .marker ? current! : MemcachedRecord(kind: .marker, owner: "", envelope: [])
                if mutation.kind == .clearRemove {
                    if let stored = marker.version, stored >= version { return .keep(.applied(sequence: nil)) }
                    marker.version = version
                } else {
                    if let stored = marker.secondVersion, stored >= version { return .keep(.applied(sequence: nil)) }
                    marker.secondVersion = version
                }
                return .store(marker)
            }
        }
    }

    /// Read, decide, compare-and-set; again when another writer got in between, up to the retry
    /// limit. `timeToLive` nil keeps the item's remaining time (an expire marks, it does not extend);
    /// an item created then lives `newItemTimeToLive` (never forever).
    private func update(
        _ name: String,
        owner: String,
        timeToLive: Duration?,
        newItemTimeToLive: Duration? = nil,
        _ decide: (MemcachedRecord?) -> Decision
    ) async throws -> MutationOutcome {
        for attempt in 0..<configuration.casRetryLimit {
            if attempt > 0 { statistics.withLock { $0.casRetries += 1 } }
            let (server, key, homeGeneration) = try locate(name)
            let response = try await client.send(MetaCommand.get(key, extra: ["t"]), toServer: server)
            let item = try MemcachedClient.item(response)
            let record = current(item.flatMap { MemcachedRecord.decode($0.value) }, owner: owner, homeGeneration: homeGeneration)
            switch decide(record) {
            case .keep(let outcome):
                return outcome
            case .store(var updated):
                updated.homeGeneration = homeGeneration
                let seconds: Int
                if let lifetime = timeToLive ?? (item == nil ? newItemTimeToLive : nil) {
                    seconds = MemcachedClient.expiry(lifetime)
                } else {
                    // Keep the remaining time: `t` is -1 for no expiry.
                    let remaining = response.flag("t").flatMap { Int($0) } ?? -1
                    seconds = remaining < 0 ? 0 : max(1, remaining)
                }
                let command = MetaCommand.set(key, value: updated.encoded(), timeToLiveSeconds: seconds, cas: item?.cas, mode: item == nil ? .add : .set)
                switch try MemcachedClient.storeOutcome(await client.send(command, toServer: server)) {
                case .stored: return .applied(sequence: nil)
                case .exists, .notFound, .notStored: continue
                }
            }
        }
        statistics.withLock { $0.casConflicts += 1 }
        throw MemcachedError(.casConflict, "'\(owner)' kept changing under \(configuration.casRetryLimit) compare-and-set attempts")
    }
}
