@_spi(ConcordBackend) import Concord
import Synchronization

/// A shared in-process stand-in for Redis: entries with version fencing, tombstones and
/// markers, the invalidation log, the epoch and pub/sub. Several caches in one process share
/// one store through `InMemoryDistributedCache` and `InMemoryBackplane`, so a cluster runs in a
/// unit test. Its rules are the ones the Redis scripts implement.
public final class InMemoryCacheStore: Sendable {
    struct Stored {
        /// Nil for an expire marker stored before any entry (see `CoherenceScripts.write`).
        var version: CacheVersion?
        var entry: DistributedEntry?
        var expire: CacheVersion?
    }

    struct State: Sendable {
        var entries: [String: Stored] = [:]
        var tagRemovals: [String: CacheVersion] = [:]
        var clearRemove: CacheVersion?
        var clearExpire: CacheVersion?
        /// The highest version of a set stored, as the write script's `hv`.
        var highestStoredSet: CacheVersion?
        var epoch: String
        var sequence: UInt64 = 0
        var log: [(sequence: UInt64, bytes: [UInt8])] = []
        var subscribers: [UInt64: @Sendable (BackplaneEvent) -> Void] = [:]
        var isAvailable = true
        var reads = 0
        var applies = 0
    }

    let state: Mutex<State>
    /// The log keeps at most this many messages, like `XADD MAXLEN`.
    public let logCapacity: Int
    /// Signs the messages the store writes, as the Redis backend does with a backplane key; the
    /// caches on this store check them with it.
    public let authenticator: (any MessageAuthenticator)?

    public init(logCapacity: Int = 10_000, authenticator: (any MessageAuthenticator)? = nil) {
        self.logCapacity = logCapacity
        self.authenticator = authenticator
        self.state = Mutex(State(epoch: Self.newEpoch()))
    }

    /// The whole state at this moment, to roll the store back to later (`restore`).
    public struct Snapshot: Sendable {
        internal let state: State
    }

    /// A copy of everything stored, like an RDB snapshot.
    public func takeSnapshot() -> Snapshot {
        state.withLock { Snapshot(state: $0) }
    }

    /// Goes back to `snapshot`, keeping the subscribers: a restart from an old snapshot or a
    /// failover to a replica that was behind. The epoch stays the snapshot's.
    public func restore(_ snapshot: Snapshot) {
        state.withLock { state in
            let subscribers = state.subscribers
            let available = state.isAvailable
            state = snapshot.state
            state.subscribers = subscribers
            state.isAvailable = available
        }
    }

    static func newEpoch() -> String {
        String(UInt64.random(in: 1 ... .max), radix: 16)
    }

    /// Makes every operation fail (an outage) or succeed again.
    public func setAvailable(_ available: Bool) {
        state.withLock { $0.isAvailable = available }
    }

    /// Loses all data and starts a new epoch, like FLUSHALL or a restart without persistence.
    public func flushAll() {
        state.withLock { state in
            let subscribers = state.subscribers
            let available = state.isAvailable
            state = State(epoch: Self.newEpoch())
            state.subscribers = subscribers
            state.isAvailable = available
        }
    }

    /// Drops the oldest log messages, keeping the last `count`.
    public func trimLog(keepingLast count: Int) {
        state.withLock { state in
            if state.log.count > count { state.log.removeFirst(state.log.count - count) }
        }
    }

    /// Publishes raw bytes on the channel without a write: for tests of garbage messages.
    public func publishRaw(_ bytes: [UInt8]) {
        let targets = state.withLock { Array($0.subscribers.values) }
        for target in targets { target(.message(bytes)) }
    }

    /// Stores raw bytes as a key's envelope: for tests of corrupt L2 entries.
    public func storeRaw(key: String, version: CacheVersion, bytes: [UInt8]) {
        state.withLock { $0.entries[key] = Stored(version: version, entry: nil, expire: nil) }
        rawEnvelopes.withLock { $0[key] = bytes }
    }

    let rawEnvelopes = Mutex<[String: [UInt8]]>([:])

    /// The epoch, last sequence and number of reads and applies so far.
    public var snapshot: (epoch: String, sequence: UInt64, reads: Int, applies: Int) {
        state.withLock { ($0.epoch, $0.sequence, $0.reads, $0.applies) }
    }

    /// The stored version of a key, tombstones included.
    public func storedVersion(of key: String) -> CacheVersion? {
        state.withLock { $0.entries[key]?.version }
    }

    func checkAvailable(_ state: State) throws {
        guard state.isAvailable else {
            throw CacheError(.distributedFailed, "the in-memory store is unavailable (simulated outage)")
        }
    }

    func read(_ key: String) throws -> DistributedRead? {
        if let raw = rawEnvelopes.withLock({ $0[key] }) {
            _ = try DistributedEntry.decode(raw)
        }
        return try state.withLock { state in
            try checkAvailable(state)
            state.reads += 1
            guard let stored = state.entries[key], let entry = stored.entry else { return nil }
            let markers = DistributedStateRules.Markers(
                expire: stored.expire,
                clearRemove: state.clearRemove,
                clearExpire: state.clearExpire,
                tagRemovals: entry.tags.compactMap { state.tagRemovals[$0] }
            )
            // The head read with the entry, as the Redis read script returns it.
            var read = DistributedStateRules.evaluate(entry, markers: markers)
            read?.logHead = BackplaneHead(epoch: state.epoch, sequence: state.sequence)
            return read
        }
    }

    func apply(_ mutation: CacheMutation, store: Bool, publish: Bool) throws -> MutationOutcome {
        let (outcome, targets, message): (MutationOutcome, [@Sendable (BackplaneEvent) -> Void], [UInt8]?) = try state.withLock { state in
            try checkAvailable(state)
            state.applies += 1
            if store {
                // As the write script: a live clear or tag removal older than a stored set
                // comes after it.
                if mutation.ordersAfterStoredSets, !mutation.kind.isKeyed, let highest = state.highestStoredSet, highest > mutation.version {
                    return (.superseded(by: highest), [], nil)
                }
                switch mutation.kind {
                case .set, .remove:
                    let current = state.entries[mutation.key]
                    if let stored = current?.version, stored >= mutation.version {
                        return (.superseded(by: stored), [], nil)
                    }
                    // As the write script: a set older than the key's expire, a clear or a
                    // removal of one of its tags is superseded by it instead of stored and hidden.
                    if mutation.kind == .set, let expired = current?.expire, expired >= mutation.version {
                        return (.superseded(by: expired), [], nil)
                    }
                    if mutation.kind == .set {
                        let tags = mutation.entry?.tags ?? []
                        let hiding = [state.clearRemove, state.clearExpire] + tags.map { state.tagRemovals[$0] }
                        if let newest = hiding.compactMap({ $0 }).filter({ $0 >= mutation.version }).max() {
                            return (.superseded(by: newest), [], nil)
                        }
                    }
                    // An expire newer than this write stays: the write's value is stale already.
                    let keptExpire = current?.expire.flatMap { $0 > mutation.version ? $0 : nil }
                    state.entries[mutation.key] = Stored(version: mutation.version, entry: mutation.kind == .set ? mutation.entry : nil, expire: keptExpire)
                    if mutation.kind == .set {
                        rawEnvelopes.withLock { $0[mutation.key] = nil }
                        state.highestStoredSet = max(state.highestStoredSet ?? mutation.version, mutation.version)
                    }
                case .expire:
                    var current = state.entries[mutation.key] ?? Stored(version: nil, entry: nil, expire: nil)
                    if let stored = current.version, stored >= mutation.version { return (.superseded(by: stored), [], nil) }
                    if current.expire == nil || current.expire! < mutation.version { current.expire = mutation.version }
                    state.entries[mutation.key] = current
                case .removeTag:
                    if state.tagRemovals[mutation.key].map({ $0 < mutation.version }) ?? true {
                        state.tagRemovals[mutation.key] = mutation.version
                    }
                case .clearRemove:
                    if state.clearRemove.map({ $0 < mutation.version }) ?? true { state.clearRemove = mutation.version }
                case .clearExpire:
                    if state.clearExpire.map({ $0 < mutation.version }) ?? true { state.clearExpire = mutation.version }
                }
            }
            guard publish else { return (.applied(sequence: nil), [], nil) }
            state.sequence += 1
            let bytes = BackplaneMessage.assemble(
                epoch: state.epoch,
                sequence: state.sequence,
                body: BackplaneMessage.encodeBody(
                    kind: mutation.kind, key: mutation.key, version: mutation.version,
                    writeID: mutation.writeID, instance: mutation.instance, authenticator: authenticator,
                    traceContext: mutation.traceContext
                )
            )
            state.log.append((state.sequence, bytes))
            if state.log.count > logCapacity { state.log.removeFirst(state.log.count - logCapacity) }
            return (.applied(sequence: state.sequence), Array(state.subscribers.values), bytes)
        }
        if let message {
            for target in targets { target(.message(message)) }
        }
        return outcome
    }

    func head() throws -> BackplaneHead {
        try state.withLock { state in
            try checkAvailable(state)
            return BackplaneHead(epoch: state.epoch, sequence: state.sequence, highestStoredVersion: state.highestStoredSet)
        }
    }

    func readLog(from: UInt64, through: UInt64) throws -> BackplaneLogRead {
        try state.withLock { state in
            try checkAvailable(state)
            guard from <= through else { return .messages([]) }
            if let first = state.log.first, first.sequence > from { return .trimmed }
            if state.log.isEmpty, state.sequence >= from { return .trimmed }
            return .messages(state.log.filter { $0.sequence >= from && $0.sequence <= through }.map(\.bytes))
        }
    }

    func subscribe(id: UInt64, _ deliver: @escaping @Sendable (BackplaneEvent) -> Void) {
        state.withLock { $0.subscribers[id] = deliver }
    }

    func unsubscribe(id: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
}
