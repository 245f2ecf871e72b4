import Synchronization

/// The in-process L1 cache: sharded, bounded by entry count and by total cost, with TTL and
/// time-to-idle, evicting with W-TinyLFU.
///
/// **Why W-TinyLFU, without moving anything on a hit.** A small window takes new keys; a
/// frequency sketch decides which of them may replace the main space's least useful key. That
/// keeps a hot set through scans, keeps a fixed part of a loop longer than the cache (where LRU
/// and FIFO hit nothing), and matches or beats Caffeine's W-TinyLFU on every trace of the
/// hit-rate suite of `concord bench`, which measures it against that reference, LRU and
/// Bélády's optimum. The hit path must still cost little more than a locked dictionary lookup,
/// so a hit only bumps a byte in the entry: the queues are CLOCK-like and the sketch learns of
/// the hits when the policy next looks at the entry (see `MemoryCacheShard+Eviction.swift`).
///
/// **Layout.** Each shard keeps entries in one dense slot array, with an open-addressing table
/// of (hash, position) buckets and queues linked by `Int32` positions instead of node objects,
/// plus a sketch of 8 to 16 bytes per entry; no allocation on a hit.
///
/// **Time.** The cache never reads a clock; every call takes `now`. An item is live while
/// `now` is before its `expiresAt` and before its last access plus `idleTimeout`. Expired items
/// read as misses and are removed when met: on access, during eviction, and by a sweep of a
/// few entries per insert.
///
/// **Bounds.** Each of the `shardCount` shards owns an equal share of `maxEntries` and
/// `maxCost` and evicts on its own, so the totals never exceed the configured bounds, at the
/// price of evicting a little early in shards that keys happen to favour. An item whose cost is
/// more than a shard's share is not stored.
///
/// **Specialization.** The operations are `@inlinable` so that a caller in another module gets
/// code specialized for its `Key` and `Value`: unspecialized, every slot access goes through
/// generic metadata and a hit costs several times more. A generic wrapper (such as a
/// `HybridCache<Value>`) keeps that speed by storing a concrete entry type in its L1, or by
/// being inlinable itself.
///
/// **Removal listener.** `onRemoval` sees every entry that leaves and every item `set` refused.
/// It is called after the shard's lock is released, on the thread of the call that caused the
/// removal, so it may call back into the cache. The closures passed to `set(_:_:now:if:)`,
/// `update` and `updateAll` run under the lock and must not.
///
/// `@unchecked Sendable` because the shards live in one manually allocated buffer, each on its
/// own cache lines (so a hit neither retains a box object nor chases a pointer to one, and
/// threads working on neighbouring shards do not share lines); the buffer is written only in
/// `init` and `deinit`, and each element is a `Mutex`.
public final class MemoryCache<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    /// What `update` and `updateAll` do with an item.
    public typealias UpdateAction = MemoryCacheUpdateAction
    /// Called after an item leaves the cache, outside the shard's lock.
    public typealias RemovalListener = @Sendable (Key, Value, RemovalCause) -> Void

    /// The configuration in force, after clamping.
    public let configuration: MemoryCacheConfiguration

    @usableFromInline
    typealias LockedShard = Mutex<MemoryCacheShard<Key, Value>>

    /// `shardCount` locked shards, `shardStride` bytes apart.
    @usableFromInline
    let shardStorage: UnsafeMutableRawPointer
    /// The size of a locked shard rounded up to whole pairs of cache lines, since x86
    /// prefetches lines in adjacent pairs.
    @usableFromInline
    let shardStride: Int
    @usableFromInline
    let shardCount: Int
    /// The shard is chosen from the top bits of the key's hash; the shard's table uses the low.
    @usableFromInline
    let shardShift: UInt64
    @usableFromInline
    let onRemoval: RemovalListener?
    /// Read under the lock instead of `onRemoval`, so a hit does not retain the closure.
    @usableFromInline
    let hasListener: Bool

    public init(configuration: MemoryCacheConfiguration = .init(), onRemoval: RemovalListener? = nil) {
        let configuration = configuration.clamped
        self.configuration = configuration
        self.onRemoval = onRemoval
        hasListener = onRemoval != nil
        let count = configuration.shardCount
        shardCount = count
        shardShift = UInt64(Int.bitWidth - count.trailingZeroBitCount)
        let lineSpan = 128
        shardStride = (MemoryLayout<LockedShard>.stride + lineSpan - 1) / lineSpan * lineSpan
        shardStorage = .allocate(
            byteCount: shardStride * count, alignment: max(lineSpan, MemoryLayout<LockedShard>.alignment))
        for index in 0..<count {
            let shard = MemoryCacheShard<Key, Value>(
                entryLimit: configuration.maxEntries / count + (index < configuration.maxEntries % count ? 1 : 0),
                costLimit: configuration.maxCost / count + (index < configuration.maxCost % count ? 1 : 0))
            (shardStorage + index * shardStride)
                .bindMemory(to: LockedShard.self, capacity: 1)
                .initialize(to: Mutex(shard))
        }
    }

    deinit {
        for index in 0..<shardCount {
            shard(index).deinitialize(count: 1)
        }
        shardStorage.deallocate()
    }

    // MARK: Reading

    /// The live value for `key`, or nil. Counts a hit or a miss, marks the entry as used, and
    /// restarts its idle timeout.
    @inlinable
    public func get(_ key: Key, now: CacheInstant) -> Value? {
        get(key, now: now) { (value: inout Value) in value }
    }

    /// `get`, handing the live value to `project` under the shard's lock and returning what it
    /// returns, so that a caller that needs a few fields of a large value reads them in place
    /// instead of copying the whole value out (and retaining and releasing everything in it).
    /// `inout` because an `inout` argument is passed by address, where a borrowed one read from
    /// the slot array was copied first; `project` must not change the value, must be quick and
    /// must not call the cache. Internal: `HybridCache`'s hit path is the one user.
    ///
    /// Always inlined, so that `project` is inlined too.
    @inlinable
    @inline(__always)
    func get<Projection: Sendable>(
        _ key: Key, now: CacheInstant, project: (inout Value) -> Projection
    ) -> Projection? {
        get(hash: key.hashValue, where: { $0 == key }, now: now, project: project)
    }

    /// `get(_:now:project:)` for a caller that holds the key in another form, such as its UTF-8
    /// bytes in a request buffer, and so need not build a `Key`: `hash` must be the key's
    /// `hashValue` and `matches` must accept that key and no other. The hit, miss, expiry and
    /// listener are those of the keyed `get`.
    @inlinable
    @inline(__always)
    func get<Projection: Sendable>(
        hash: Int, where matches: (Key) -> Bool, now: CacheInstant, project: (inout Value) -> Projection
    ) -> Projection? {
        let lookup = shard(shardIndex(for: hash)).pointee.withLock { shard in
            shard.get(
                hash: Self.tableHash(hash), where: matches, now: now.nanoseconds, collectingRemovals: hasListener,
                project: project)
        }
        // Consumed, so the projection moves out instead of being copied and the lookup destroyed.
        switch consume lookup {
        case .hit(let projection):
            return projection
        case .miss:
            return nil
        case .expired(let removals):
            deliver(removals)
            return nil
        }
    }

    /// The live value for `key`, or nil, without counting it or marking it as used.
    @inlinable
    public func peek(_ key: Key, now: CacheInstant) -> Value? {
        let hash = key.hashValue
        return shard(shardIndex(for: hash)).pointee.withLock { shard in
            shard.peek(key, hash: Self.tableHash(hash), now: now.nanoseconds)
        }
    }

    /// `peek(_:now:)` for a caller that holds the key in another form (its UTF-8 bytes in a
    /// request buffer): `hash` must be the key's `hashValue` and `matches` must accept that key
    /// and no other.
    @inlinable
    func peek(hash: Int, where matches: (Key) -> Bool, now: CacheInstant) -> Value? {
        shard(shardIndex(for: hash)).pointee.withLock { shard in
            shard.peek(hash: Self.tableHash(hash), where: matches, now: now.nanoseconds)
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
        let (stored, removals) = shard(shardIndex(for: hash)).pointee.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: hasListener)
            let stored = shard.set(
                key, hash: Self.tableHash(hash), item: item, now: now.nanoseconds,
                condition: condition, removals: &removals)
            return (stored, removals)
        }
        deliver(removals)
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
        let (found, removals) = shard(shardIndex(for: hash)).pointee.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: hasListener)
            let found = shard.update(
                key, hash: Self.tableHash(hash), now: now.nanoseconds, transform: transform, removals: &removals)
            return (found, removals)
        }
        deliver(removals)
        return found
    }

    /// Visits every live item, one shard at a time under that shard's lock, to change or remove
    /// it (marking everything stale, removing by tag, ...). Expired items met on the way are
    /// removed. Not a snapshot: writes to other shards may interleave. `transform` must not
    /// call the cache.
    @inlinable
    public func updateAll(now: CacheInstant, _ transform: (Key, inout MemoryCacheItem<Value>) -> UpdateAction) {
        for index in 0..<shardCount {
            let removals = shard(index).pointee.withLock { shard in
                var removals = RemovalBuffer<Key, Value>(isCollecting: hasListener)
                shard.updateAll(now: now.nanoseconds, transform: transform, removals: &removals)
                return removals
            }
            deliver(removals)
        }
    }

    /// Removes the entry under `key` and returns its value, even when it had expired but was not
    /// yet swept (there is no `now` to tell). The listener sees `.explicit`.
    @discardableResult
    @inlinable
    public func remove(_ key: Key) -> Value? {
        let hash = key.hashValue
        let (value, removals) = shard(shardIndex(for: hash)).pointee.withLock { shard in
            var removals = RemovalBuffer<Key, Value>(isCollecting: hasListener)
            let value = shard.remove(key, hash: Self.tableHash(hash), removals: &removals)
            return (value, removals)
        }
        deliver(removals)
        return value
    }

    /// Removes every entry, shard by shard, and releases the shards' memory. The listener sees
    /// each entry as `.explicit`.
    public func removeAll() {
        for index in 0..<shardCount {
            let removals = shard(index).pointee.withLock { shard in
                var removals = RemovalBuffer<Key, Value>(isCollecting: hasListener)
                shard.removeAll(removals: &removals)
                return removals
            }
            deliver(removals)
        }
    }

    // MARK: Introspection

    /// The number of entries held, including expired ones not yet swept.
    public var count: Int {
        (0..<shardCount).reduce(0) { sum, index in sum + shard(index).pointee.withLock { $0.count } }
    }

    /// The sum of the costs of the entries held.
    public var totalCost: Int {
        (0..<shardCount).reduce(0) { sum, index in sum + shard(index).pointee.withLock { $0.totalCost } }
    }

    /// The counters of every shard, summed.
    public var statistics: MemoryCacheStatistics {
        var statistics = MemoryCacheStatistics()
        for index in 0..<shardCount {
            shard(index).pointee.withLock { shard in
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
        (0..<shardCount).map { index in shard(index).pointee.withLock { $0.count } }
    }

    // MARK: Hashing

    @inlinable
    func shard(_ index: Int) -> UnsafeMutablePointer<LockedShard> {
        (shardStorage + index &* shardStride).assumingMemoryBound(to: LockedShard.self)
    }

    @inlinable
    func shardIndex(for hash: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(UInt(bitPattern: hash)) >> shardShift)
    }

    /// Calls the listener for what a shard removed; a no-op that does not even load the
    /// listener when nothing was removed.
    @inlinable
    func deliver(_ removals: RemovalBuffer<Key, Value>) {
        if !removals.entries.isEmpty {
            removals.deliver(to: onRemoval)
        }
    }

    @inlinable
    static func tableHash(_ hash: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: hash)
    }
}
