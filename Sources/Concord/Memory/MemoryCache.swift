import Synchronization

/// The in-process L1 cache: sharded, bounded by entry count and by total cost, with TTL and
/// time-to-idle, evicting with S3-FIFO.
///
/// **Why S3-FIFO.** The hit path must cost little more than a locked dictionary lookup, so the
/// policy may not move list nodes on a hit (LRU does, and W-TinyLFU also updates a frequency
/// sketch). S3-FIFO and SIEVE both only bump a small counter on a hit. Of those two, S3-FIFO is
/// scan-resistant: new keys go through a small FIFO (10% of the space) and only keys hit while
/// there reach the main FIFO, so a long scan of one-hit keys cannot flush the hot set, whereas
/// SIEVE inserts every new key next to the hot ones. On Zipf traces it matches or beats LRU at
/// every size we measured (see the hit-rate suite of `concord bench`, which compares it with
/// LRU and Bélády's optimum).
///
/// **Layout.** Each shard keeps entries in dense arrays with an open-addressing table of
/// `Int32` positions and queues linked by `Int32` indices: about 65 bytes per entry beyond the
/// key and value (measured with a million `Int` entries), and no allocation on a hit.
///
/// **Time.** The cache never reads a clock; every call takes `now`. An item is live while
/// `now` is before its `expiresAt` and before its last access plus `idleTimeout`. Expired items
/// read as misses and are removed when met: on access, during eviction, and by a sweep of a
/// few entries per insert.
///
/// **Bounds.** Each of the `shardCount` shards owns an equal share of `maxEntries` and
/// `maxCost` and evicts on its own, so the totals never exceed the configured bounds. An item
/// whose cost is more than a shard's share is not stored.
///
/// **Removal listener.** `onRemoval` sees every entry that leaves and every item `set` refused.
/// It is called after the shard's lock is released, on the thread of the call that caused the
/// removal, so it may call back into the cache. The closures passed to `set(_:_:now:if:)`,
/// `update` and `updateAll` run under the lock and must not.
public final class MemoryCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    public typealias UpdateAction = MemoryCacheUpdateAction
    public typealias RemovalListener = @Sendable (Key, Value, RemovalCause) -> Void

    /// The configuration in force, after clamping.
    public let configuration: MemoryCacheConfiguration

    @usableFromInline
    let shards: [MemoryCacheShardBox<Key, Value>]
    /// The shard is chosen from the top bits of the key's hash; the shard's table uses the low.
    @usableFromInline
    let shardShift: UInt64
    @usableFromInline
    let onRemoval: RemovalListener?

    public init(configuration: MemoryCacheConfiguration = .init(), onRemoval: RemovalListener? = nil) {
        let configuration = configuration.clamped
        self.configuration = configuration
        self.onRemoval = onRemoval
        let count = configuration.shardCount
        shardShift = UInt64(Int.bitWidth - count.trailingZeroBitCount)
        shards = (0..<count).map { index in
            MemoryCacheShardBox(
                entryLimit: configuration.maxEntries / count + (index < configuration.maxEntries % count ? 1 : 0),
                costLimit: configuration.maxCost / count + (index < configuration.maxCost % count ? 1 : 0))
        }
    }

    // MARK: Reading

    /// The live value for `key`, or nil. Counts a hit or a miss, marks the entry as used, and
    /// restarts its idle timeout.
    @inlinable
    public func get(_ key: Key, now: CacheInstant) -> Value? {
        let hash = key.hashValue
        let (value, removals) = shard(for: hash).state.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
            let value = shard.get(key, hash: Self.tableHash(hash), now: now.nanoseconds, removals: &removals)
            return (value, removals)
        }
        removals.deliver(to: onRemoval)
        return value
    }

    /// The live value for `key`, or nil, without counting it or marking it as used.
    @inlinable
    public func peek(_ key: Key, now: CacheInstant) -> Value? {
        let hash = key.hashValue
        return shard(for: hash).state.withLock { shard in
            shard.peek(key, hash: Self.tableHash(hash), now: now.nanoseconds)
        }
    }

    // MARK: Writing

    /// Stores `item` under `key`, replacing any value there. Returns false when the item was
    /// not stored because it is already expired or its cost alone exceeds a shard's share; the
    /// listener then sees it as `.expired` or `.evicted`, and the old value as `.replaced`.
    @discardableResult
    @inlinable
    public func set(_ key: Key, _ item: MemoryCacheItem<Value>, now: CacheInstant) -> Bool {
        write(key, item, now: now, condition: nil)
    }

    /// Stores `item` only if `condition`, given the live value under `key` (or nil), returns
    /// true; the check and the store are one atomic step under the shard's lock, which is what
    /// makes version-fenced fills safe. `condition` must not call the cache. Returns whether
    /// the item was stored.
    @discardableResult
    @inlinable
    public func set(
        _ key: Key,
        _ item: MemoryCacheItem<Value>,
        now: CacheInstant,
        if condition: (Value?) -> Bool
    ) -> Bool {
        // The shard takes an optional closure (nil for a plain set); it never keeps it.
        withoutActuallyEscaping(condition) { condition in
            write(key, item, now: now, condition: condition)
        }
    }

    @inlinable
    func write(
        _ key: Key,
        _ item: MemoryCacheItem<Value>,
        now: CacheInstant,
        condition: ((Value?) -> Bool)?
    ) -> Bool {
        let hash = key.hashValue
        let (stored, removals) = shard(for: hash).state.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
            let stored = shard.set(
                key, hash: Self.tableHash(hash), item: item, now: now.nanoseconds,
                condition: condition, removals: &removals)
            return (stored, removals)
        }
        removals.deliver(to: onRemoval)
        return stored
    }

    /// Changes the live item under `key` in place (its value, cost or deadlines) or removes
    /// it, atomically and without moving it in the eviction order. A changed idle timeout runs
    /// from the item's last access. `transform` must not call the cache. Returns false when
    /// there was no live item.
    @discardableResult
    @inlinable
    public func update(
        _ key: Key,
        now: CacheInstant,
        _ transform: (inout MemoryCacheItem<Value>) -> UpdateAction
    ) -> Bool {
        let hash = key.hashValue
        let (found, removals) = shard(for: hash).state.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
            let found = shard.update(
                key, hash: Self.tableHash(hash), now: now.nanoseconds, transform: transform, removals: &removals)
            return (found, removals)
        }
        removals.deliver(to: onRemoval)
        return found
    }

    /// Visits every live item, one shard at a time under that shard's lock, to change or remove
    /// it (marking everything stale, removing by tag, ...). Expired items met on the way are
    /// removed. Not a snapshot: writes to other shards may interleave. `transform` must not
    /// call the cache.
    @inlinable
    public func updateAll(now: CacheInstant, _ transform: (Key, inout MemoryCacheItem<Value>) -> UpdateAction) {
        for box in shards {
            let removals = box.state.withLock { shard in
                var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
                shard.updateAll(now: now.nanoseconds, transform: transform, removals: &removals)
                return removals
            }
            removals.deliver(to: onRemoval)
        }
    }

    /// Removes the entry under `key` and returns its value, even when it had expired but was not
    /// yet swept (there is no `now` to tell). The listener sees `.explicit`.
    @discardableResult
    @inlinable
    public func remove(_ key: Key) -> Value? {
        let hash = key.hashValue
        let (value, removals) = shard(for: hash).state.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
            let value = shard.remove(key, hash: Self.tableHash(hash), removals: &removals)
            return (value, removals)
        }
        removals.deliver(to: onRemoval)
        return value
    }

    /// Removes every entry, shard by shard, and releases the shards' memory. The listener sees
    /// each entry as `.explicit`.
    public func removeAll() {
        for box in shards {
            let removals = box.state.withLock { shard in
                var removals = RemovalBuffer<Key, Value>(isCollecting: onRemoval != nil)
                shard.removeAll(removals: &removals)
                return removals
            }
            removals.deliver(to: onRemoval)
        }
    }

    // MARK: Introspection

    /// The number of entries held, including expired ones not yet swept.
    public var count: Int {
        shards.reduce(0) { sum, box in sum + box.state.withLock { $0.count } }
    }

    /// The sum of the costs of the entries held.
    public var totalCost: Int {
        shards.reduce(0) { sum, box in sum + box.state.withLock { $0.totalCost } }
    }

    /// The counters of every shard, summed.
    public var statistics: MemoryCacheStatistics {
        var statistics = MemoryCacheStatistics()
        for box in shards {
            box.state.withLock { shard in
                statistics.hits += shard.counters.hits
                statistics.misses += shard.counters.misses
                statistics.evictions += shard.counters.evictions
                statistics.expirations += shard.counters.expirations
                statistics.explicitRemovals += shard.counters.explicitRemovals
                statistics.replacements += shard.counters.replacements
                statistics.rejections += shard.counters.rejections
                statistics.entryCount += shard.count
                statistics.totalCost += shard.totalCost
            }
        }
        return statistics
    }

    /// Entry counts per shard, for checking the balance of the sharding.
    public var shardEntryCounts: [Int] {
        shards.map { box in box.state.withLock { $0.count } }
    }

    // MARK: Hashing

    @inlinable
    func shard(for hash: Int) -> MemoryCacheShardBox<Key, Value> {
        shards[Int(truncatingIfNeeded: UInt64(UInt(bitPattern: hash)) >> shardShift)]
    }

    @inlinable
    static func tableHash(_ hash: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: hash)
    }
}
