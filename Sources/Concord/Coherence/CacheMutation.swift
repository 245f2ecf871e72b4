/// What a versioned change does.
public enum MutationKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// A new value for a key.
    case set = 1
    /// The key is gone (a tombstone stays in L2 so older writes cannot come back).
    case remove = 2
    /// The key's value is stale: still servable by fail-safe, no longer fresh.
    case expire = 3
    /// Every entry carrying the tag is gone.
    case removeTag = 4
    /// Every entry is gone.
    case clearRemove = 5
    /// Every entry is stale.
    case clearExpire = 6

    public var description: String {
        switch self {
        case .set: "set"
        case .remove: "remove"
        case .expire: "expire"
        case .removeTag: "removeTag"
        case .clearRemove: "clearRemove"
        case .clearExpire: "clearExpire"
        }
    }

    /// Whether the mutation names one key (rather than a tag or every key).
    public var isKeyed: Bool { self == .set || self == .remove || self == .expire }
}

/// A versioned change to the shared cache state, written to L2 and announced to every node in
/// one atomic step.
public struct CacheMutation: Sendable, Equatable {
    public var kind: MutationKind
    /// The key, or the tag for `removeTag`, or empty for the clears.
    public var key: String
    /// The change's version; its node is the source.
    public var version: CacheVersion
    /// The entry to store, for `set`.
    public var entry: DistributedEntry?
    /// How long Redis keeps what the mutation stores: the entry, the tombstone or the marker.
    public var timeToLive: Duration
    /// A random id of this write, carried by its message and log entry.
    public var writeID: UInt64
    /// The random id of the writing process (`HybridCache.instanceID`).
    public var instance: UInt64
    /// The trace context of the span that made the change, carried by its message; nil when
    /// the writer does not trace.
    public var traceContext: BackplaneTraceContext?

    public init(
        kind: MutationKind, key: String, version: CacheVersion, entry: DistributedEntry? = nil, timeToLive: Duration,
        writeID: UInt64 = CacheMutation.randomWriteID(), instance: UInt64 = 0
    ) {
        self.kind = kind
        self.key = key
        self.version = version
        self.entry = entry
        self.timeToLive = timeToLive
        self.writeID = writeID
        self.instance = instance
    }

    /// A random, non-zero write id.
    public static func randomWriteID() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return UInt64.random(in: 1 ... .max, using: &generator)
    }

    /// The slot in the pending-write queue: one per key, per tag, and one for clears.
    var pendingSlot: String {
        switch kind {
        case .set, .remove, .expire: "k:" + key
        case .removeTag: "t:" + key
        case .clearRemove, .clearExpire: "c:"
        }
    }
}

/// What applying a mutation to L2 did.
public enum MutationOutcome: Sendable, Equatable {
    /// Stored, and announced with this sequence number when it was published.
    case applied(sequence: UInt64?)
    /// Not stored: L2 already holds this newer version for the key.
    case superseded(by: CacheVersion)
}

/// An entry read from L2 with its state after tombstones and markers are taken into account.
public struct DistributedRead: Sendable, Equatable {
    public var entry: DistributedEntry
    /// An `expire`, a clear or a tag marker newer than the entry makes it stale.
    public var isExpired: Bool

    public init(entry: DistributedEntry, isExpired: Bool) {
        self.entry = entry
        self.isExpired = isExpired
    }
}

/// The state rules every L2 implementation follows (the Redis scripts mirror them): markers
/// newer than an entry remove or expire it.
@_spi(ConcordBackend)
public enum DistributedStateRules {
    /// Markers that apply to a stored entry.
    public struct Markers: Sendable, Equatable {
        /// The newest `expire` of this key.
        public var expire: CacheVersion?
        /// The newest `clearRemove`.
        public var clearRemove: CacheVersion?
        /// The newest `clearExpire`.
        public var clearExpire: CacheVersion?
        /// The newest `removeTag` of each of the entry's tags.
        public var tagRemovals: [CacheVersion]

        public init(expire: CacheVersion? = nil, clearRemove: CacheVersion? = nil, clearExpire: CacheVersion? = nil, tagRemovals: [CacheVersion] = []) {
            self.expire = expire
            self.clearRemove = clearRemove
            self.clearExpire = clearExpire
            self.tagRemovals = tagRemovals
        }
    }

    /// The read state of an entry under its markers: nil when a marker removes it.
    public static func evaluate(_ entry: DistributedEntry, markers: Markers) -> DistributedRead? {
        let version = entry.version
        if let removal = markers.clearRemove, removal > version { return nil }
        if markers.tagRemovals.contains(where: { $0 > version }) { return nil }
        var expired = false
        if let expire = markers.expire, expire > version { expired = true }
        if let clear = markers.clearExpire, clear > version { expired = true }
        return DistributedRead(entry: entry, isExpired: expired)
    }
}
