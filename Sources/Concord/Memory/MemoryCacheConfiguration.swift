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
    /// Below this many entries a shard's window and admission have too little room to tell
    /// keys apart (a loop just longer than the cache loses a tenth of its hits over sixteen
    /// shards of 62), and a cache that small does not need sixteen locks.
    public static let minEntriesPerShard = 64

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
