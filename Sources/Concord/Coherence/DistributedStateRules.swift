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
        /// Whether the entry was written in an earlier history of the store (one it has lost
        /// since, with whatever clears and tag removals it held): it then reads as expired.
        public var isFromAnotherEpoch: Bool

        public init(
            expire: CacheVersion? = nil, clearRemove: CacheVersion? = nil, clearExpire: CacheVersion? = nil,
            tagRemovals: [CacheVersion] = [], isFromAnotherEpoch: Bool = false
        ) {
            self.expire = expire
            self.clearRemove = clearRemove
            self.clearExpire = clearExpire
            self.tagRemovals = tagRemovals
            self.isFromAnotherEpoch = isFromAnotherEpoch
        }
    }

    /// The read state of an entry under its markers: nil when a marker removes it.
    public static func evaluate(_ entry: DistributedEntry, markers: Markers) -> DistributedRead? {
        let version = entry.version
        if let removal = markers.clearRemove, removal > version { return nil }
        if markers.tagRemovals.contains(where: { $0 > version }) { return nil }
        var expired = markers.isFromAnotherEpoch
        if let expire = markers.expire, expire > version { expired = true }
        if let clear = markers.clearExpire, clear > version { expired = true }
        return DistributedRead(entry: entry, isExpired: expired)
    }
}
