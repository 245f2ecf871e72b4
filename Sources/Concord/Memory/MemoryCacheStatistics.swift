/// A snapshot of a `MemoryCache`'s counters, summed over its shards.
///
/// The counters are kept per shard, under the shard's lock, so a hit pays no shared atomic;
/// the sum is therefore not one atomic snapshot while other threads are writing.
public struct MemoryCacheStatistics: Hashable, Sendable {
    /// `get` calls that found a live item.
    public var hits: Int
    /// `get` calls that found nothing, or an expired item.
    public var misses: Int
    /// Items removed to respect the entry or cost bound.
    public var evictions: Int
    /// Items removed because their deadline passed, plus items `set` refused as already
    /// expired.
    public var expirations: Int
    /// Items removed by `remove`, `removeAll` or an `update` that returned `.remove`.
    public var explicitRemovals: Int
    /// Items superseded by a `set` of the same key.
    public var replacements: Int
    /// `set` calls whose item was not stored because its cost alone exceeds a shard's cost share
    /// (the removal listener sees these as `.evicted` too).
    public var rejections: Int
    /// Entries held now, including expired ones not yet swept.
    public var entryCount: Int
    /// Sum of the costs of the entries held now.
    public var totalCost: Int

    public init(
        hits: Int = 0,
        misses: Int = 0,
        evictions: Int = 0,
        expirations: Int = 0,
        explicitRemovals: Int = 0,
        replacements: Int = 0,
        rejections: Int = 0,
        entryCount: Int = 0,
        totalCost: Int = 0
    ) {
        self.hits = hits
        self.misses = misses
        self.evictions = evictions
        self.expirations = expirations
        self.explicitRemovals = explicitRemovals
        self.replacements = replacements
        self.rejections = rejections
        self.entryCount = entryCount
        self.totalCost = totalCost
    }

    /// `hits + misses`.
    public var requestCount: Int { hits + misses }

    /// The fraction of `get` calls that hit, or 0 before any call.
    public var hitRatio: Double {
        requestCount == 0 ? 0 : Double(hits) / Double(requestCount)
    }
}
