import Synchronization

/// Holds one shard's state behind its own lock; a class because `Mutex` cannot be copied into
/// an array.
@usableFromInline
final class MemoryCacheShardBox<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    @usableFromInline
    let state: Mutex<MemoryCacheShard<Key, Value>>

    @usableFromInline
    init(entryLimit: Int, costLimit: Int) {
        state = Mutex(MemoryCacheShard(entryLimit: entryLimit, costLimit: costLimit))
    }
}
