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
    /// For a clear or a tag removal made live (not flushed from the queue): Redis's order puts
    /// it after every set already stored, so a stored set with a newer version (its writer's
    /// clock ran ahead) supersedes it instead of escaping it, and the writer rebases it after
    /// that version. A queued one keeps its version: sets stored since it was acknowledged may
    /// be newer than it. Backends without a highest stored version (Memcached) ignore it.
    public var ordersAfterStoredSets = false

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

    /// A non-zero write id: unpredictable across processes and never repeated within one
    /// (`WriteIDSequence`).
    public static func randomWriteID() -> UInt64 {
        WriteIDSequence.next()
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
