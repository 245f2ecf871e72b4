/// Per-entry options: how long an entry lives at each level, fail-safe, timeouts, eager refresh
/// and which levels an operation may skip. Every field has a default, so `CacheEntryOptions()`
/// is useful as is; cache-wide defaults live in `HybridCacheConfiguration.defaultEntryOptions`.
public struct CacheEntryOptions: Sendable, Equatable {
    /// How long the entry is fresh (logical expiry).
    public var duration: Duration = .seconds(30)
    /// L1 freshness, when it differs from `duration`.
    public var memoryDuration: Duration?
    /// L2 freshness, when it differs from `duration`.
    public var distributedDuration: Duration?
    /// Time-to-idle in L1: an entry not read for this long is dropped from L1 (sliding expiry).
    public var memoryIdleTimeout: Duration?
    /// A random extra duration in `0...jitterMaxDuration` added to the freshness, so entries
    /// written together do not expire together.
    public var jitterMaxDuration: Duration = .zero
    /// The entry's cost against `MemoryCacheConfiguration.maxCost`.
    public var size: Int = 1

    /// Serve the last value when the factory or L2 fails, for up to `failSafeMaxDuration`.
    public var isFailSafeEnabled: Bool = false
    /// How long after its logical expiry an entry may still be served by fail-safe. Also its
    /// physical lifetime in L1 and its TTL in Redis.
    public var failSafeMaxDuration: Duration = .seconds(3600)
    /// After a fail-safe activation, the stale value is served without calling the factory
    /// again for this long, so a failing source is not hammered.
    public var failSafeThrottleDuration: Duration = .seconds(30)
    /// After this many consecutive fail-safe activations for an entry, the error is thrown
    /// instead of the stale value. `nil` means no limit.
    public var failSafeMaxCycles: Int?

    /// When a fail-safe value is available, the factory is given this long before that value
    /// is served and the factory goes on in the background.
    public var factorySoftTimeout: Duration?
    /// The factory is never waited for longer than this.
    public var factoryHardTimeout: Duration?
    /// Whether a timed-out factory may complete in the background and update the cache.
    public var allowTimedOutFactoryBackgroundCompletion: Bool = true

    /// When a fail-safe value is available, an L2 read is given this long before it is abandoned.
    public var distributedSoftTimeout: Duration?
    /// An L2 operation is never waited for longer than this.
    public var distributedHardTimeout: Duration?
    /// Write L2 in the background: `set` returns after the L1 write.
    public var allowBackgroundDistributedOperations: Bool = false

    /// Fraction of `duration` (strictly between 0 and 1) after which a hit returns at once and
    /// the entry is refreshed once in the background.
    public var eagerRefreshThreshold: Double?

    /// Do not read L1.
    public var skipMemoryRead: Bool = false
    /// Do not write L1.
    public var skipMemoryWrite: Bool = false
    /// Do not read L2.
    public var skipDistributedRead: Bool = false
    /// Do not write L2.
    public var skipDistributedWrite: Bool = false
    /// Do not notify other nodes.
    public var skipBackplaneNotifications: Bool = false

    public init() {}

    /// Options with the given freshness.
    public init(duration: Duration) {
        self.duration = duration
    }

    /// Checks ranges; throws `CacheError(.invalidConfiguration)` naming the field.
    public func validate() throws {
        func positive(_ value: Duration?, _ name: String) throws {
            if let value, value <= .zero {
                throw CacheError(.invalidConfiguration, "\(name) must be positive, got \(value)")
            }
        }
        try positive(duration, "duration")
        try positive(memoryDuration, "memoryDuration")
        try positive(distributedDuration, "distributedDuration")
        try positive(memoryIdleTimeout, "memoryIdleTimeout")
        try positive(failSafeMaxDuration, "failSafeMaxDuration")
        try positive(factorySoftTimeout, "factorySoftTimeout")
        try positive(factoryHardTimeout, "factoryHardTimeout")
        try positive(distributedSoftTimeout, "distributedSoftTimeout")
        try positive(distributedHardTimeout, "distributedHardTimeout")
        if jitterMaxDuration < .zero {
            throw CacheError(.invalidConfiguration, "jitterMaxDuration must not be negative")
        }
        if failSafeThrottleDuration < .zero {
            throw CacheError(.invalidConfiguration, "failSafeThrottleDuration must not be negative")
        }
        if size < 0 { throw CacheError(.invalidConfiguration, "size must not be negative, got \(size)") }
        if let cycles = failSafeMaxCycles, cycles < 0 {
            throw CacheError(.invalidConfiguration, "failSafeMaxCycles must not be negative")
        }
        if let threshold = eagerRefreshThreshold, !(threshold > 0 && threshold < 1) {
            throw CacheError(.invalidConfiguration, "eagerRefreshThreshold must be strictly between 0 and 1, got \(threshold)")
        }
    }

    /// L1 freshness in force.
    var effectiveMemoryDuration: Duration { memoryDuration ?? duration }
    /// L2 freshness in force.
    var effectiveDistributedDuration: Duration { distributedDuration ?? duration }
}
