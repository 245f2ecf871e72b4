/// The bounds and layout of a `MemoryCache`.
///
/// Nonsensical values are clamped rather than rejected, so a configuration read from flags can
/// never make the cache fail to start: `maxEntries` and `maxCost` are raised to at least 1,
/// `shardCount` is rounded up to a power of two in `1...1024`, then lowered until every shard
/// gets at least `minEntriesPerShard` entries (or there is one shard) and one unit of cost. `MemoryCache.configuration` reports the values
/// in force.
public struct MemoryCacheConfiguration: Hashable, Sendable {
    /// The most entries the cache holds.
    public var maxEntries: Int
    /// The largest sum of item costs the cache holds.
    public var maxCost: Int
    /// How many independently locked parts the cache is split into. Each shard owns an equal
    /// share of `maxEntries` and `maxCost` and evicts on its own, so an item whose cost exceeds
    /// `maxCost / shardCount` is not stored; use fewer shards when items are large relative to
    /// `maxCost`.
    public var shardCount: Int

    public init(maxEntries: Int = 100_000, maxCost: Int = .max, shardCount: Int = 16) {
        self.maxEntries = maxEntries
        self.maxCost = maxCost
        self.shardCount = shardCount
    }

    static let maxShardCount = 1024
    /// Below this many entries per shard, a small cache loses hits to sharding itself: each
    /// shard evicts on its own, and keys do not hash evenly, so some shards hold fewer of the
    /// popular keys than they have room for while others turn them away. `concord bench
    /// --suite hitrate`, loop over 1.1× a 1,000-entry cache: 8 shards of 125 reach 0.896, one
    /// or two shards 0.899 (W-TinyLFU unsharded: 0.899). A cache that small does not need
    /// more than a couple of locks.
    public static let minEntriesPerShard = 256

    /// The configuration with every value brought into range.
    var clamped: MemoryCacheConfiguration {
        let entries = max(1, maxEntries)
        let cost = max(1, maxCost)
        var shards = min(max(1, shardCount), Self.maxShardCount)
        if shards & (shards - 1) != 0 {
            shards = 1 << (Int.bitWidth - (shards - 1).leadingZeroBitCount)
        }
        while shards > 1 && (entries / shards < Self.minEntriesPerShard || shards > cost) {
            shards >>= 1
        }
        return MemoryCacheConfiguration(maxEntries: entries, maxCost: cost, shardCount: shards)
    }
}
