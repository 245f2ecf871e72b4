/// Per-entry options: how long an entry lives at each level, fail-safe, timeouts, eager refresh
/// and which levels an operation may skip.
///
/// Options passed to a call start from the cache's `HybridCacheConfiguration.defaultEntryOptions`:
/// a value remembers which fields were set on it, and only those replace the defaults when the
/// call runs. So `CacheEntryOptions(duration: .seconds(5))` changes the duration and keeps the
/// fail-safe and timeouts configured as defaults. A field that was not set reads as its built-in
/// default here (`isFailSafeEnabled` reads false), whatever the cache's default is.
public struct CacheEntryOptions: Sendable, Equatable {
    /// The value of every field: what was set, else the built-in default.
    private struct Values: Sendable, Equatable {
        var duration: Duration = .seconds(30)
        var memoryDuration: Duration? = nil
        var distributedDuration: Duration? = nil
        var memoryIdleTimeout: Duration? = nil
        var jitterMaxDuration: Duration = .zero
        var size: Int = 1
        var isFailSafeEnabled: Bool = false
        var failSafeMaxDuration: Duration = .seconds(3600)
        var failSafeThrottleDuration: Duration = .seconds(30)
        var failSafeMaxCycles: Int? = nil
        var factorySoftTimeout: Duration? = nil
        var factoryHardTimeout: Duration? = nil
        var allowTimedOutFactoryBackgroundCompletion: Bool = true
        var distributedSoftTimeout: Duration? = nil
        var distributedHardTimeout: Duration? = nil
        var allowBackgroundDistributedOperations: Bool = false
        var eagerRefreshThreshold: Double? = nil
        var skipMemoryRead: Bool = false
        var skipMemoryWrite: Bool = false
        var skipDistributedRead: Bool = false
        var skipDistributedWrite: Bool = false
        var skipBackplaneNotifications: Bool = false
    }

    /// One bit per field: which fields were set on this value.
    private struct Fields: OptionSet, Sendable, Equatable {
        let rawValue: UInt32
        static let duration = Fields(rawValue: 1 << 0)
        static let memoryDuration = Fields(rawValue: 1 << 1)
        static let distributedDuration = Fields(rawValue: 1 << 2)
        static let memoryIdleTimeout = Fields(rawValue: 1 << 3)
        static let jitterMaxDuration = Fields(rawValue: 1 << 4)
        static let size = Fields(rawValue: 1 << 5)
        static let isFailSafeEnabled = Fields(rawValue: 1 << 6)
        static let failSafeMaxDuration = Fields(rawValue: 1 << 7)
        static let failSafeThrottleDuration = Fields(rawValue: 1 << 8)
        static let failSafeMaxCycles = Fields(rawValue: 1 << 9)
        static let factorySoftTimeout = Fields(rawValue: 1 << 10)
        static let factoryHardTimeout = Fields(rawValue: 1 << 11)
        static let allowTimedOutFactoryBackgroundCompletion = Fields(rawValue: 1 << 12)
        static let distributedSoftTimeout = Fields(rawValue: 1 << 13)
        static let distributedHardTimeout = Fields(rawValue: 1 << 14)
        static let allowBackgroundDistributedOperations = Fields(rawValue: 1 << 15)
        static let eagerRefreshThreshold = Fields(rawValue: 1 << 16)
        static let skipMemoryRead = Fields(rawValue: 1 << 17)
        static let skipMemoryWrite = Fields(rawValue: 1 << 18)
        static let skipDistributedRead = Fields(rawValue: 1 << 19)
        static let skipDistributedWrite = Fields(rawValue: 1 << 20)
        static let skipBackplaneNotifications = Fields(rawValue: 1 << 21)
    }

    private var values = Values()
    private var assigned: Fields = []

    /// How long the entry is fresh (logical expiry).
    public var duration: Duration {
        get { values.duration }
        set { values.duration = newValue; assigned.insert(.duration) }
    }
    /// L1 freshness, when it differs from `duration`.
    public var memoryDuration: Duration? {
        get { values.memoryDuration }
        set { values.memoryDuration = newValue; assigned.insert(.memoryDuration) }
    }
    /// L2 freshness, when it differs from `duration`.
    public var distributedDuration: Duration? {
        get { values.distributedDuration }
        set { values.distributedDuration = newValue; assigned.insert(.distributedDuration) }
    }
    /// Time-to-idle in L1: an entry not read for this long is dropped from L1 (sliding expiry).
    public var memoryIdleTimeout: Duration? {
        get { values.memoryIdleTimeout }
        set { values.memoryIdleTimeout = newValue; assigned.insert(.memoryIdleTimeout) }
    }
    /// A random extra duration in `0...jitterMaxDuration` added to the freshness, so entries
    /// written together do not expire together.
    public var jitterMaxDuration: Duration {
        get { values.jitterMaxDuration }
        set { values.jitterMaxDuration = newValue; assigned.insert(.jitterMaxDuration) }
    }
    /// The entry's cost against `MemoryCacheConfiguration.maxCost`.
    public var size: Int {
        get { values.size }
        set { values.size = newValue; assigned.insert(.size) }
    }
    /// Serve the last value when the factory or L2 fails, for up to `failSafeMaxDuration`.
    public var isFailSafeEnabled: Bool {
        get { values.isFailSafeEnabled }
        set { values.isFailSafeEnabled = newValue; assigned.insert(.isFailSafeEnabled) }
    }
    /// How long after its logical expiry an entry may still be served by fail-safe. Also its
    /// physical lifetime in L1 and its TTL in Redis.
    public var failSafeMaxDuration: Duration {
        get { values.failSafeMaxDuration }
        set { values.failSafeMaxDuration = newValue; assigned.insert(.failSafeMaxDuration) }
    }
    /// After a fail-safe activation, the stale value is served without calling the factory
    /// again for this long, so a failing source is not hammered.
    public var failSafeThrottleDuration: Duration {
        get { values.failSafeThrottleDuration }
        set { values.failSafeThrottleDuration = newValue; assigned.insert(.failSafeThrottleDuration) }
    }
    /// After this many consecutive fail-safe activations for an entry, the error is thrown
    /// instead of the stale value. `nil` means no limit.
    public var failSafeMaxCycles: Int? {
        get { values.failSafeMaxCycles }
        set { values.failSafeMaxCycles = newValue; assigned.insert(.failSafeMaxCycles) }
    }
    /// When a fail-safe value is available, the factory is given this long before that value
    /// is served and the factory goes on in the background.
    public var factorySoftTimeout: Duration? {
        get { values.factorySoftTimeout }
        set { values.factorySoftTimeout = newValue; assigned.insert(.factorySoftTimeout) }
    }
    /// The factory is never waited for longer than this.
    public var factoryHardTimeout: Duration? {
        get { values.factoryHardTimeout }
        set { values.factoryHardTimeout = newValue; assigned.insert(.factoryHardTimeout) }
    }
    /// Whether a timed-out factory may complete in the background and update the cache.
    public var allowTimedOutFactoryBackgroundCompletion: Bool {
        get { values.allowTimedOutFactoryBackgroundCompletion }
        set { values.allowTimedOutFactoryBackgroundCompletion = newValue; assigned.insert(.allowTimedOutFactoryBackgroundCompletion) }
    }
    /// When a fail-safe value is available, an L2 read is given this long before it is abandoned.
    public var distributedSoftTimeout: Duration? {
        get { values.distributedSoftTimeout }
        set { values.distributedSoftTimeout = newValue; assigned.insert(.distributedSoftTimeout) }
    }
    /// An L2 operation is never waited for longer than this.
    public var distributedHardTimeout: Duration? {
        get { values.distributedHardTimeout }
        set { values.distributedHardTimeout = newValue; assigned.insert(.distributedHardTimeout) }
    }
    /// Write L2 in the background: `set` returns after the L1 write.
    public var allowBackgroundDistributedOperations: Bool {
        get { values.allowBackgroundDistributedOperations }
        set { values.allowBackgroundDistributedOperations = newValue; assigned.insert(.allowBackgroundDistributedOperations) }
    }
    /// Fraction of `duration` (strictly between 0 and 1) after which a hit returns at once and
    /// the entry is refreshed once in the background.
    public var eagerRefreshThreshold: Double? {
        get { values.eagerRefreshThreshold }
        set { values.eagerRefreshThreshold = newValue; assigned.insert(.eagerRefreshThreshold) }
    }
    /// Do not read L1.
    public var skipMemoryRead: Bool {
        get { values.skipMemoryRead }
        set { values.skipMemoryRead = newValue; assigned.insert(.skipMemoryRead) }
    }
    /// Do not write L1.
    public var skipMemoryWrite: Bool {
        get { values.skipMemoryWrite }
        set { values.skipMemoryWrite = newValue; assigned.insert(.skipMemoryWrite) }
    }
    /// Do not read L2.
    public var skipDistributedRead: Bool {
        get { values.skipDistributedRead }
        set { values.skipDistributedRead = newValue; assigned.insert(.skipDistributedRead) }
    }
    /// Do not write L2.
    public var skipDistributedWrite: Bool {
        get { values.skipDistributedWrite }
        set { values.skipDistributedWrite = newValue; assigned.insert(.skipDistributedWrite) }
    }
    /// Do not notify other nodes.
    public var skipBackplaneNotifications: Bool {
        get { values.skipBackplaneNotifications }
        set { values.skipBackplaneNotifications = newValue; assigned.insert(.skipBackplaneNotifications) }
    }

    /// These options over `defaults`: the fields set here, the rest from `defaults`. What a call
    /// runs with when it is given options.
    public func applied(over defaults: CacheEntryOptions) -> CacheEntryOptions {
        var result = defaults
        result.assigned.formUnion(assigned)
        if assigned.contains(.duration) { result.values.duration = values.duration }
        if assigned.contains(.memoryDuration) { result.values.memoryDuration = values.memoryDuration }
        if assigned.contains(.distributedDuration) { result.values.distributedDuration = values.distributedDuration }
        if assigned.contains(.memoryIdleTimeout) { result.values.memoryIdleTimeout = values.memoryIdleTimeout }
        if assigned.contains(.jitterMaxDuration) { result.values.jitterMaxDuration = values.jitterMaxDuration }
        if assigned.contains(.size) { result.values.size = values.size }
        if assigned.contains(.isFailSafeEnabled) { result.values.isFailSafeEnabled = values.isFailSafeEnabled }
        if assigned.contains(.failSafeMaxDuration) { result.values.failSafeMaxDuration = values.failSafeMaxDuration }
        if assigned.contains(.failSafeThrottleDuration) { result.values.failSafeThrottleDuration = values.failSafeThrottleDuration }
        if assigned.contains(.failSafeMaxCycles) { result.values.failSafeMaxCycles = values.failSafeMaxCycles }
        if assigned.contains(.factorySoftTimeout) { result.values.factorySoftTimeout = values.factorySoftTimeout }
        if assigned.contains(.factoryHardTimeout) { result.values.factoryHardTimeout = values.factoryHardTimeout }
        if assigned.contains(.allowTimedOutFactoryBackgroundCompletion) { result.values.allowTimedOutFactoryBackgroundCompletion = values.allowTimedOutFactoryBackgroundCompletion }
        if assigned.contains(.distributedSoftTimeout) { result.values.distributedSoftTimeout = values.distributedSoftTimeout }
        if assigned.contains(.distributedHardTimeout) { result.values.distributedHardTimeout = values.distributedHardTimeout }
        if assigned.contains(.allowBackgroundDistributedOperations) { result.values.allowBackgroundDistributedOperations = values.allowBackgroundDistributedOperations }
        if assigned.contains(.eagerRefreshThreshold) { result.values.eagerRefreshThreshold = values.eagerRefreshThreshold }
        if assigned.contains(.skipMemoryRead) { result.values.skipMemoryRead = values.skipMemoryRead }
        if assigned.contains(.skipMemoryWrite) { result.values.skipMemoryWrite = values.skipMemoryWrite }
        if assigned.contains(.skipDistributedRead) { result.values.skipDistributedRead = values.skipDistributedRead }
        if assigned.contains(.skipDistributedWrite) { result.values.skipDistributedWrite = values.skipDistributedWrite }
        if assigned.contains(.skipBackplaneNotifications) { result.values.skipBackplaneNotifications = values.skipBackplaneNotifications }
        return result
    }

    /// Whether `skipMemoryRead` was set on these options (nil: the cache's default applies). Read
    /// on the L1 hit path, where copying the whole options is too dear.
    @usableFromInline
    var assignedSkipMemoryRead: Bool? { assigned.contains(.skipMemoryRead) ? values.skipMemoryRead : nil }

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
