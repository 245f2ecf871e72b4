import Synchronization

// PLACEHOLDER until the memory-cache branch is merged: same API, FIFO eviction, single lock.

public struct MemoryCacheConfiguration: Sendable, Equatable {
    public var maxEntries: Int = 100_000
    public var maxCost: Int = .max
    public var shardCount: Int = 16
    public init() {}
}

public enum RemovalCause: Sendable { case explicit, replaced, expired, evicted }

public enum UpdateAction: Sendable { case keep, remove }

public struct MemoryCacheItem<Value> {
    public var value: Value
    public var cost: Int
    public var expiresAt: CacheInstant?
    public var idleTimeout: Duration?
    public init(value: Value, cost: Int = 1, expiresAt: CacheInstant? = nil, idleTimeout: Duration? = nil) {
        self.value = value; self.cost = cost; self.expiresAt = expiresAt; self.idleTimeout = idleTimeout
    }
}
extension MemoryCacheItem: Sendable where Value: Sendable {}

public struct MemoryCacheStatistics: Sendable, Equatable {
    public var hits = 0, misses = 0, evictions = 0, expirations = 0, explicitRemovals = 0, replacements = 0, entries = 0, totalCost = 0
}

public final class MemoryCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct Slot { var item: MemoryCacheItem<Value>; var idleDeadline: CacheInstant? }
    struct State { var map: [Key: Slot] = [:]; var order: [Key] = []; var stats = MemoryCacheStatistics(); var cost = 0 }
    let state = Mutex(State())
    let configuration: MemoryCacheConfiguration
    let onRemoval: (@Sendable (Key, Value, RemovalCause) -> Void)?

    public init(configuration: MemoryCacheConfiguration = .init(), onRemoval: (@Sendable (Key, Value, RemovalCause) -> Void)? = nil) {
        self.configuration = configuration
        self.onRemoval = onRemoval
    }

    private static func live(_ slot: Slot, _ now: CacheInstant) -> Bool {
        if let e = slot.item.expiresAt, now >= e { return false }
        if let i = slot.idleDeadline, now >= i { return false }
        return true
    }

    public func get(_ key: Key, now: CacheInstant) -> Value? {
        state.withLock { s in
            guard var slot = s.map[key] else { s.stats.misses += 1; return nil }
            guard Self.live(slot, now) else { s.map[key] = nil; s.cost -= slot.item.cost; s.stats.misses += 1; s.stats.expirations += 1; return nil }
            if let idle = slot.item.idleTimeout { slot.idleDeadline = now + idle; s.map[key] = slot }
            s.stats.hits += 1
            return slot.item.value
        }
    }

    public func peek(_ key: Key, now: CacheInstant) -> Value? {
        state.withLock { s in
            guard let slot = s.map[key], Self.live(slot, now) else { return nil }
            return slot.item.value
        }
    }

    public func set(_ key: Key, _ item: MemoryCacheItem<Value>, now: CacheInstant) {
        set(key, item, now: now, if: { _ in true })
    }

    @discardableResult
    public func set(_ key: Key, _ item: MemoryCacheItem<Value>, now: CacheInstant, if condition: (Value?) -> Bool) -> Bool {
        state.withLock { s in
            let existing = s.map[key].flatMap { Self.live($0, now) ? $0.item.value : nil }
            guard condition(existing) else { return false }
            if let old = s.map[key] { s.cost -= old.item.cost } else { s.order.append(key) }
            s.map[key] = Slot(item: item, idleDeadline: item.idleTimeout.map { now + $0 })
            s.cost += item.cost
            while s.map.count > configuration.maxEntries || s.cost > configuration.maxCost, !s.order.isEmpty {
                let victim = s.order.removeFirst()
                if let slot = s.map.removeValue(forKey: victim) { s.cost -= slot.item.cost; s.stats.evictions += 1 }
            }
            return true
        }
    }

    @discardableResult
    public func update(_ key: Key, now: CacheInstant, _ transform: (inout MemoryCacheItem<Value>) -> UpdateAction) -> Bool {
        state.withLock { s in
            guard var slot = s.map[key], Self.live(slot, now) else { return false }
            s.cost -= slot.item.cost
            switch transform(&slot.item) {
            case .keep: s.map[key] = slot; s.cost += slot.item.cost
            case .remove: s.map[key] = nil
            }
            return true
        }
    }

    public func updateAll(now: CacheInstant, _ transform: (Key, inout MemoryCacheItem<Value>) -> UpdateAction) {
        state.withLock { s in
            for (key, var slot) in s.map {
                s.cost -= slot.item.cost
                switch transform(key, &slot.item) {
                case .keep: s.map[key] = slot; s.cost += slot.item.cost
                case .remove: s.map[key] = nil
                }
            }
        }
    }

    @discardableResult
    public func remove(_ key: Key) -> Value? {
        state.withLock { s in
            guard let slot = s.map.removeValue(forKey: key) else { return nil }
            s.cost -= slot.item.cost
            return slot.item.value
        }
    }

    public func removeAll() { state.withLock { $0 = State() } }
    public var count: Int { state.withLock { $0.map.count } }
    public var totalCost: Int { state.withLock { $0.cost } }
    public var statistics: MemoryCacheStatistics { state.withLock { var st = $0.stats; st.entries = $0.map.count; st.totalCost = $0.cost; return st } }
}
