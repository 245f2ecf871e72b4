extension MemoryCacheShard {
    // MARK: Updating and removing

    /// Runs `transform` on the live item under `key`, keeping its eviction position. Returns
    /// false when there is no live item.
    @inlinable
    mutating func update(
        _ key: Key,
        hash: UInt32,
        now: Int64,
        transform: (inout MemoryCacheItem<Value>) -> MemoryCacheUpdateAction,
        removals: inout RemovalBuffer<Key, Value>
    ) -> Bool {
        guard let found = find(key, hash: hash) else { return false }
        if Self.isExpired(slots[found.position].meta, now: now) {
            removeEntry(at: found.position, bucket: found.bucket, cause: .expired, removals: &removals)
            return false
        }
        var item = self.item(at: found.position)
        switch transform(&item) {
        case .remove:
            counters.explicitRemovals &+= 1
            removeEntry(at: found.position, bucket: found.bucket, cause: .explicit, removals: &removals)
        case .keep:
            if apply(item, at: found.position, now: now, removals: &removals) {
                while totalCost > costLimit, evictOne(now: now, removals: &removals) {}
            }
        }
        return true
    }

    /// Runs `transform` on every live item; expired items met on the way are removed.
    @inlinable
    mutating func updateAll(
        now: Int64,
        transform: (Key, inout MemoryCacheItem<Value>) -> MemoryCacheUpdateAction,
        removals: inout RemovalBuffer<Key, Value>
    ) {
        var position = 0
        // A removal moves the last entry into `position`, which has not been visited yet, so
        // the cursor only advances past entries that stay.
        while position < slots.count {
            if Self.isExpired(slots[position].meta, now: now) {
                removeEntry(at: position, cause: .expired, removals: &removals)
                continue
            }
            var item = self.item(at: position)
            switch transform(slots[position].key, &item) {
            case .remove:
                counters.explicitRemovals &+= 1
                removeEntry(at: position, cause: .explicit, removals: &removals)
            case .keep:
                if apply(item, at: position, now: now, removals: &removals) {
                    position += 1
                }
            }
        }
        // Evicting inside the loop would move unvisited entries behind the cursor.
        while totalCost > costLimit, evictOne(now: now, removals: &removals) {}
    }

    @inlinable
    mutating func remove(_ key: Key, hash: UInt32, removals: inout RemovalBuffer<Key, Value>) -> Value? {
        guard let found = find(key, hash: hash) else { return nil }
        counters.explicitRemovals &+= 1
        let value = slots[found.position].value
        removeEntry(at: found.position, bucket: found.bucket, cause: .explicit, removals: &removals)
        return value
    }

    @inlinable
    mutating func removeAll(removals: inout RemovalBuffer<Key, Value>) {
        for position in slots.indices {
            removals.append(slots[position].key, slots[position].value, .explicit)
        }
        counters.explicitRemovals &+= slots.count
        slots = []
        buckets = ContiguousArray(repeating: Self.emptyBucket, count: 16)
        window = Queue()
        probation = Queue()
        protected = Queue()
        sketch.removeAll()
        totalCost = 0
        sweepCursor = 0
    }

    @inlinable
    func item(at position: Int) -> MemoryCacheItem<Value> {
        let entry = slots[position].meta
        return MemoryCacheItem(
            value: slots[position].value,
            cost: entry.cost,
            expiresAt: entry.expiresAt == .max ? nil : CacheInstant(nanoseconds: entry.expiresAt),
            idleTimeout: entry.idleTimeout == .max ? nil : .nanoseconds(entry.idleTimeout))
    }

    /// Writes an updated item back in place. The idle deadline keeps running from the last
    /// access. Returns false when the item was removed instead (it is now expired, or alone
    /// exceeds the cost limit).
    @inlinable
    mutating func apply(
        _ item: MemoryCacheItem<Value>,
        at position: Int,
        now: Int64,
        removals: inout RemovalBuffer<Key, Value>
    ) -> Bool {
        let cost = max(0, item.cost)
        let delta = cost - slots[position].meta.cost
        slots[position].value = item.value
        slots[position].meta.cost = cost
        slots[position].meta.expiresAt = item.expiresAt?.nanoseconds ?? .max
        slots[position].meta.idleTimeout = item.idleTimeout.map { max(0, CacheInstant.nanoseconds(of: $0)) } ?? .max
        totalCost += delta
        self[queue: slots[position].meta.queue].cost += delta
        if Self.isExpired(slots[position].meta, now: now) {
            removeEntry(at: position, cause: .expired, removals: &removals)
            return false
        }
        if cost > costLimit {
            removeEntry(at: position, cause: .evicted, removals: &removals)
            return false
        }
        return true
    }

    /// Removes expired entries among the next few positions of a cursor that cycles over the
    /// whole shard.
    @inlinable
    mutating func sweep(now: Int64, removals: inout RemovalBuffer<Key, Value>) {
        for _ in 0..<Self.sweepStep {
            if slots.isEmpty { return }
            if sweepCursor >= slots.count { sweepCursor = 0 }
            if Self.isExpired(slots[sweepCursor].meta, now: now) {
                removeEntry(at: sweepCursor, cause: .expired, removals: &removals)
            } else {
                sweepCursor += 1
            }
        }
    }

    @inlinable
    static func isExpired(_ entry: Metadata, now: Int64) -> Bool {
        if now >= entry.expiresAt { return true }
        if entry.idleTimeout == .max { return false }
        let (idle, overflow) = now.subtractingReportingOverflow(entry.lastAccess)
        return overflow ? now > entry.lastAccess : idle >= entry.idleTimeout
    }
}
