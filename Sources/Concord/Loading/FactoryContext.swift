import Synchronization

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
