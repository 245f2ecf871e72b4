/// What L1 holds per key: the decoded value and what coherence and fail-safe need to know.
struct MemoryEntry: Sendable {
    var value: any Sendable
    var version: CacheVersion
    /// Fresh until this instant (logical expiry, jitter included).
    var freshUntil: CacheInstant
    /// A hit at or after this instant starts a background refresh (`nanoseconds == .max`: never).
    var eagerRefreshAt: CacheInstant
    /// The logical expiry shared with other nodes through L2, in Unix milliseconds.
    var logicalExpiryMilliseconds: Int64
    var tags: [String]
    /// Expired by `expire`, by another node's write, or by a full expiry: kept only for fail-safe.
    var isExpired: Bool
    /// Installed by a fail-safe activation: served, but flagged stale.
    var isFailSafeValue: Bool
    /// Whether this entry may be served stale at all.
    var allowsFailSafe: Bool
    /// Consecutive fail-safe activations.
    var failSafeCycles: UInt16
    /// Where the value came from when it entered L1.
    var source: CacheValueSource
}

/// A value with where it came from, its version, and whether it is stale (served by fail-safe).
public struct CacheResult<Value: Sendable>: Sendable {
    public var value: Value
    public var source: CacheValueSource
    public var isStale: Bool
    public var version: CacheVersion

    public init(value: Value, source: CacheValueSource, isStale: Bool, version: CacheVersion) {
        self.value = value
        self.source = source
        self.isStale = isStale
        self.version = version
    }
}

/// Given to a factory: the stale value if there is one, the options it may change (adaptive
/// caching), the tags it may set, and a way to say the stale value is still good.
public final class FactoryContext<Value: Sendable>: Sendable {
    private struct State {
        var options: CacheEntryOptions
        var tags: [String]
        var notModified = false
    }

    /// The key being loaded.
    public let key: String
    /// The last known value, if any (from L1 or L2), even if expired.
    public let staleValue: Value?
    private let state: Mutex<State>

    init(key: String, staleValue: Value?, options: CacheEntryOptions, tags: [String]) {
        self.key = key
        self.staleValue = staleValue
        self.state = Mutex(State(options: options, tags: tags))
    }

    /// The options the entry will be stored with; change them from the loaded value.
    public var options: CacheEntryOptions {
        get { state.withLock { $0.options } }
        set { state.withLock { $0.options = newValue } }
    }

    /// The tags the entry will carry.
    public var tags: [String] {
        get { state.withLock { $0.tags } }
        set { state.withLock { $0.tags = newValue } }
    }

    /// Keeps the stale value and renews its expiry; return what this returns from the factory.
    /// Throws `CacheError(.notFound)` when there is no stale value.
    public func notModified() throws -> Value {
        guard let staleValue else {
            throw CacheError(.notFound, "notModified() needs a stale value and there is none for '\(key)'")
        }
        state.withLock { $0.notModified = true }
        return staleValue
    }

    var isNotModified: Bool { state.withLock { $0.notModified } }
}

import Synchronization
