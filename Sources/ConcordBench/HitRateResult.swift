/// The hit ratios of every policy on one trace at one cache size.
package struct HitRateResult: Codable, Hashable, Sendable {
    package var trace: String
    package var requests: Int
    package var keyspace: Int
    /// The cache's capacity in entries.
    package var cacheSize: Int
    /// `cacheSize` as a fraction of the keyspace.
    package var cacheFraction: Double
    /// `MemoryCache` with one shard: the policy itself.
    package var memoryCache: Double
    /// `MemoryCache` with its default shard count, each shard evicting on its own share.
    package var memoryCacheSharded: Double
    package var shardCount: Int
    /// The reference LRU of the same capacity.
    package var lru: Double
    /// The W-TinyLFU reference of the same capacity: the ratio to reach.
    package var wTinyLFU: Double
    /// Bélády's optimum, the ceiling.
    package var optimal: Double

    package init(
        trace: String, requests: Int, keyspace: Int, cacheSize: Int, cacheFraction: Double,
        memoryCache: Double, memoryCacheSharded: Double, shardCount: Int, lru: Double, wTinyLFU: Double, optimal: Double
    ) {
        self.trace = trace
        self.requests = requests
        self.keyspace = keyspace
        self.cacheSize = cacheSize
        self.cacheFraction = cacheFraction
        self.memoryCache = memoryCache
        self.memoryCacheSharded = memoryCacheSharded
        self.shardCount = shardCount
        self.lru = lru
        self.wTinyLFU = wTinyLFU
        self.optimal = optimal
    }

    /// The policy's hit ratio divided by LRU's (above 1 means better than LRU).
    package var ratioToLRU: Double {
        lru == 0 ? .infinity : memoryCache / lru
    }

    /// The share of the gap between LRU and optimal that the policy closes.
    package var gapClosed: Double {
        optimal == lru ? 0 : (memoryCache - lru) / (optimal - lru)
    }
}
