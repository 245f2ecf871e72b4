/// One independently locked part of a `MemoryCache`: its entries, hash table, eviction queues,
/// frequency sketch and counters, as a plain value type that lives behind the shard's `Mutex`.
///
/// Entries are stored densely in one array of slots (key, value and metadata together, so a
/// hit touches one slot after its bucket), and the position of an entry is a small integer.
/// Removing an entry moves the last one into its place, which keeps the array without holes or
/// free lists. The hash table maps a key to that position in 8 bytes per bucket (the position
/// and the key's hash, so a probe reads other keys' slots only on a 32-bit hash match); the
/// queues are doubly linked through the slots by `Int32` positions instead of node objects.
@usableFromInline
struct MemoryCacheShard<Key: Hashable, Value> {
    /// Everything about an entry except its key and value.
    @usableFromInline
    struct Metadata: Sendable {
        @usableFromInline
        var cost: Int
        /// Hard deadline in nanoseconds; `Int64.max` when there is none.
        @usableFromInline
        var expiresAt: Int64
        /// Time-to-idle in nanoseconds; `Int64.max` when there is none.
        @usableFromInline
        var idleTimeout: Int64
        /// The last `set` or hit, from which the idle deadline runs.
        @usableFromInline
        var lastAccess: Int64
        /// The low 32 bits of the key's hash (the shard was chosen from the high bits).
        @usableFromInline
        var hash: UInt32
        /// Neighbours in the entry's queue, toward the newest and toward the oldest; -1 at the
        /// ends and while the entry is detached.
        @usableFromInline
        var newer: Int32
        @usableFromInline
        var older: Int32
        /// Hits since the policy last looked at the entry, saturating at
        /// `MemoryCacheShard.maxFrequency`; the policy moves them into the sketch.
        @usableFromInline
        var frequency: UInt8
        @usableFromInline
        var queue: QueueID

        @inlinable
        init(
            cost: Int, expiresAt: Int64, idleTimeout: Int64, lastAccess: Int64, hash: UInt32,
            newer: Int32, older: Int32, frequency: UInt8, queue: QueueID
        ) {
            self.cost = cost
            self.expiresAt = expiresAt
            self.idleTimeout = idleTimeout
            self.lastAccess = lastAccess
            self.hash = hash
            self.newer = newer
            self.older = older
            self.frequency = frequency
            self.queue = queue
        }
    }

    /// An entry as stored.
    @usableFromInline
    struct Slot {
        @usableFromInline
        var key: Key
        @usableFromInline
        var value: Value
        @usableFromInline
        var meta: Metadata

        @inlinable
        init(key: Key, value: Value, meta: Metadata) {
            self.key = key
            self.value = value
            self.meta = meta
        }
    }

    @usableFromInline
    enum QueueID: UInt8, Sendable {
        case window
        case probation
        case protected
    }

    /// The ends and totals of one FIFO queue; `head` is the newest entry, `tail` the oldest.
    @usableFromInline
    struct Queue: Sendable {
        @usableFromInline
        var head: Int32 = -1
        @usableFromInline
        var tail: Int32 = -1
        @usableFromInline
        var count = 0
        @usableFromInline
        var cost = 0

        @inlinable
        init() {}
    }

    @usableFromInline
    struct Counters: Sendable {
        @usableFromInline
        var hits = 0
        @usableFromInline
        var misses = 0
        @usableFromInline
        var evictions = 0
        @usableFromInline
        var expirations = 0
        @usableFromInline
        var explicitRemovals = 0
        @usableFromInline
        var replacements = 0
        @usableFromInline
        var rejections = 0

        @inlinable
        init() {}
    }

    @inlinable
    static var maxFrequency: UInt8 { .max }
    /// How many entries each insert checks for expiry, so expired entries that are never read
    /// again still leave, at a bounded cost per call.
    @inlinable
    static var sweepStep: Int { 2 }
    @inlinable
    static var emptyBucket: UInt64 { 0 }

    @usableFromInline
    var slots: ContiguousArray<Slot> = []
    /// Open addressing with linear probing. A bucket holds the entry's 32-bit hash in its high
    /// half and its position + 1 in its low half (0 is empty), so probing past other keys
    /// reads only the table, never their slots.
    @usableFromInline
    var buckets: ContiguousArray<UInt64>
    @usableFromInline
    var window = Queue()
    @usableFromInline
    var probation = Queue()
    @usableFromInline
    var protected = Queue()
    @usableFromInline
    var sketch = FrequencySketch()
    @usableFromInline
    var totalCost = 0
    @usableFromInline
    var counters = Counters()
    @usableFromInline
    var sweepCursor = 0

    @usableFromInline
    let entryLimit: Int
    @usableFromInline
    let costLimit: Int
    /// The window's share of the space, by count and by cost.
    @usableFromInline
    let windowEntryTarget: Int
    @usableFromInline
    let windowCostTarget: Int

    @inlinable
    init(entryLimit: Int, costLimit: Int) {
        self.entryLimit = max(1, entryLimit)
        self.costLimit = max(1, costLimit)
        self.windowEntryTarget = Self.share(Self.initialWindowPercent, of: self.entryLimit)
        self.windowCostTarget = Self.share(Self.initialWindowPercent, of: self.costLimit)
        self.buckets = ContiguousArray(repeating: Self.emptyBucket, count: 16)
    }

    @inlinable
    var count: Int { slots.count }

    // MARK: Reading

    /// The outcome of a `get`; an expired entry is removed and handed back for the listener.
    @usableFromInline
    enum Lookup<Hit> {
        case hit(Hit)
        case miss
        case expired(RemovalBuffer<Key, Value>)
    }

    /// Finds a live entry, counts and marks the hit, and returns what `project` makes of its
    /// value, passed in place (by address) rather than copied.
    @inlinable
    @inline(__always)
    mutating func get<Hit>(
        _ key: Key, hash: UInt32, now: Int64, collectingRemovals: Bool, project: (inout Value) -> Hit
    ) -> Lookup<Hit> {
        guard let found = find(key, hash: hash) else {
            counters.misses &+= 1
            return .miss
        }
        let position = found.position
        if Self.isExpired(slots[position].meta, now: now) {
            var removals = RemovalBuffer<Key, Value>(isCollecting: collectingRemovals)
            removeEntry(at: position, bucket: found.bucket, cause: .expired, removals: &removals)
            counters.misses &+= 1
            return .expired(removals)
        }
        return slots.withUnsafeMutableBufferPointer { slots in
            // Callers read their clocks before taking the lock, so instants can arrive out of
            // order; the idle deadline never moves back.
            if now > slots[position].meta.lastAccess {
                slots[position].meta.lastAccess = now
            }
            if slots[position].meta.frequency < Self.maxFrequency {
                slots[position].meta.frequency &+= 1
            }
            counters.hits &+= 1
            return .hit(project(&slots[position].value))
        }
    }

    @inlinable
    func peek(_ key: Key, hash: UInt32, now: Int64) -> Value? {
        guard let found = find(key, hash: hash), !Self.isExpired(slots[found.position].meta, now: now) else {
            return nil
        }
        return slots[found.position].value
    }

    // MARK: Writing

    /// Stores `item` unless `condition` (given the live value, or nil) refuses. Returns whether
    /// it was stored.
    @inlinable
    mutating func set(
        _ key: Key,
        hash: UInt32,
        item: MemoryCacheItem<Value>,
        now: Int64,
        condition: ((Value?) -> Bool)?,
        removals: inout RemovalBuffer<Key, Value>
    ) -> Bool {
        sweep(now: now, removals: &removals)

        var existing = find(key, hash: hash)
        if let found = existing, Self.isExpired(slots[found.position].meta, now: now) {
            removeEntry(at: found.position, bucket: found.bucket, cause: .expired, removals: &removals)
            existing = nil
        }
        if let condition, !condition(existing.map { slots[$0.position].value }) {
            return false
        }

        let cost = max(0, item.cost)
        let expiresAt = item.expiresAt?.nanoseconds ?? .max
        let idleTimeout = item.idleTimeout.map { max(0, CacheInstant.nanoseconds(of: $0)) } ?? .max

        // An item that cannot be kept still supersedes the old value, and still reaches the
        // listener, so every item handed to `set` is either stored or reported.
        let refusal: RemovalCause? =
            if now >= expiresAt || idleTimeout == 0 {
                .expired
            } else if cost > costLimit {
                .evicted
            } else {
                nil
            }
        if let refusal {
            if let found = existing {
                counters.replacements &+= 1
                removeEntry(at: found.position, bucket: found.bucket, cause: .replaced, removals: &removals)
            }
            if refusal == .expired {
                counters.expirations &+= 1
            } else {
                counters.rejections &+= 1
            }
            removals.append(key, item.value, refusal)
            return false
        }

        if let found = existing {
            replace(at: found.position, key: key, hash: hash, with: item.value, cost: cost,
                    expiresAt: expiresAt, idleTimeout: idleTimeout, now: now, removals: &removals)
        } else {
            insert(key, hash: hash, value: item.value, cost: cost,
                   expiresAt: expiresAt, idleTimeout: idleTimeout, now: now, removals: &removals)
        }
        return true
    }

    /// A replaced entry goes back to the head of its queue, keeping its frequency: it is a fresh
    /// write of a key that was already worth keeping.
    @inlinable
    mutating func replace(
        at position: Int,
        key: Key,
        hash: UInt32,
        with value: Value,
        cost: Int,
        expiresAt: Int64,
        idleTimeout: Int64,
        now: Int64,
        removals: inout RemovalBuffer<Key, Value>
    ) {
        counters.replacements &+= 1
        let queue = slots[position].meta.queue
        detach(position)
        totalCost -= slots[position].meta.cost
        removals.append(key, slots[position].value, .replaced)
        slots[position].value = value
        slots[position].meta.cost = cost
        slots[position].meta.expiresAt = expiresAt
        slots[position].meta.idleTimeout = idleTimeout
        slots[position].meta.lastAccess = now

        // Detached, the entry cannot be chosen as a victim while room is made for its new cost.
        var position = position
        if totalCost + cost > costLimit {
            while totalCost + cost > costLimit, evictOne(now: now, removals: &removals) {}
            // Evictions move entries around; look the key up again.
            position = find(key, hash: hash)!.position
        }
        totalCost += cost
        attachAtHead(position, of: queue)
    }

    @inlinable
    mutating func insert(
        _ key: Key,
        hash: UInt32,
        value: Value,
        cost: Int,
        expiresAt: Int64,
        idleTimeout: Int64,
        now: Int64,
        removals: inout RemovalBuffer<Key, Value>
    ) {
        while slots.count >= entryLimit || totalCost + cost > costLimit {
            if !evictOne(now: now, removals: &removals) { break }
        }
        reserveForOneMore()
        let position = slots.count
        sketch.ensureCapacity(position + 1)
        addToSketch(hash, times: 1)
        let queue = QueueID.window
        slots.append(Slot(key: key, value: value, meta: Metadata(
            cost: cost, expiresAt: expiresAt, idleTimeout: idleTimeout, lastAccess: now,
            hash: hash, newer: -1, older: -1, frequency: 0, queue: queue)))
        insertIntoBuckets(position: position, hash: hash)
        totalCost += cost
        attachAtHead(position, of: queue)
    }

    /// Grows the entry arrays geometrically but never past the entry limit, so a full shard
    /// carries no spare capacity.
    @inlinable
    mutating func reserveForOneMore() {
        guard slots.count == slots.capacity else { return }
        let capacity = min(max(slots.count * 2, 8), max(entryLimit, slots.count + 1))
        slots.reserveCapacity(capacity)
    }

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

    // MARK: Entry storage

    /// Removes the entry at `position`, reports it, and fills the hole with the last entry.
    /// Counts expirations and evictions; callers count explicit removals and replacements.
    @inlinable
    mutating func removeEntry(
        at position: Int,
        bucket: Int? = nil,
        cause: RemovalCause,
        removals: inout RemovalBuffer<Key, Value>
    ) {
        switch cause {
        case .expired: counters.expirations &+= 1
        case .evicted: counters.evictions &+= 1
        case .explicit, .replaced: break
        }
        if slots[position].meta.newer >= 0 || slots[position].meta.older >= 0
            || self[queue: slots[position].meta.queue].head == Int32(position)
        {
            detach(position)
        }
        totalCost -= slots[position].meta.cost
        deleteBucket(bucket ?? self.bucket(of: position))

        let last = slots.count - 1
        if position != last {
            relocate(from: last, to: position)
        }
        let slot = slots.removeLast()
        removals.append(slot.key, slot.value, cause)
    }

    /// Moves the entry at `from` to the (already removed) position `to`, swapping it there, and
    /// repoints its bucket and queue neighbours.
    @inlinable
    mutating func relocate(from source: Int, to target: Int) {
        let sourceIndex = Int32(source)
        let targetIndex = Int32(target)
        buckets[bucket(of: source)] = Self.bucketEntry(position: target, hash: slots[source].meta.hash)
        slots.swapAt(source, target)
        let entry = slots[target].meta
        if entry.newer >= 0 {
            slots[Int(entry.newer)].meta.older = targetIndex
        } else {
            repoint(queue: entry.queue, head: true, from: sourceIndex, to: targetIndex)
        }
        if entry.older >= 0 {
            slots[Int(entry.older)].meta.newer = targetIndex
        } else {
            repoint(queue: entry.queue, head: false, from: sourceIndex, to: targetIndex)
        }
    }

    /// Fixes a queue end that named the moved entry; a detached entry is named by neither end.
    @inlinable
    mutating func repoint(queue: QueueID, head: Bool, from source: Int32, to target: Int32) {
        if head {
            if self[queue: queue].head == source { self[queue: queue].head = target }
        } else {
            if self[queue: queue].tail == source { self[queue: queue].tail = target }
        }
    }

    /// One of the three queues, so each list operation is written once for both.
    @inlinable
    subscript(queue queue: QueueID) -> Queue {
        get {
            switch queue {
            case .window: window
            case .probation: probation
            case .protected: protected
            }
        }
        set {
            switch queue {
            case .window: window = newValue
            case .probation: probation = newValue
            case .protected: protected = newValue
            }
        }
    }

    // MARK: Hash table

    @inlinable
    static func bucketEntry(position: Int, hash: UInt32) -> UInt64 {
        UInt64(hash) << 32 | UInt64(truncatingIfNeeded: position + 1)
    }

    @inlinable
    static func position(inBucket entry: UInt64) -> Int {
        Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
    }

    @inlinable
    func find(_ key: Key, hash: UInt32) -> (position: Int, bucket: Int)? {
        buckets.withUnsafeBufferPointer { buckets in
            slots.withUnsafeBufferPointer { slots in
                let mask = buckets.count - 1
                let tag = UInt64(hash) << 32
                var bucket = Int(hash) & mask
                while true {
                    let stored = buckets[bucket]
                    if stored == Self.emptyBucket { return nil }
                    if stored & 0xFFFF_FFFF_0000_0000 == tag {
                        let position = Self.position(inBucket: stored)
                        if slots[position].key == key {
                            return (position, bucket)
                        }
                    }
                    bucket = (bucket + 1) & mask
                }
            }
        }
    }

    @inlinable
    func bucket(of position: Int) -> Int {
        let mask = buckets.count - 1
        let hash = slots[position].meta.hash
        let entry = Self.bucketEntry(position: position, hash: hash)
        var bucket = Int(hash) & mask
        while buckets[bucket] != entry {
            bucket = (bucket + 1) & mask
        }
        return bucket
    }

    /// Adds the just appended slot at `position` to the table. When that would fill the table
    /// past 3/4, the table doubles instead, and the rebuild places every slot, this one too.
    @inlinable
    mutating func insertIntoBuckets(position: Int, hash: UInt32) {
        if slots.count * 4 > buckets.count * 3 {
            rebuildBuckets(count: buckets.count * 2)
        } else {
            place(position, hash: hash)
        }
    }

    @inlinable
    mutating func place(_ position: Int, hash: UInt32) {
        let mask = buckets.count - 1
        var bucket = Int(hash) & mask
        while buckets[bucket] != Self.emptyBucket {
            bucket = (bucket + 1) & mask
        }
        buckets[bucket] = Self.bucketEntry(position: position, hash: hash)
    }

    @inlinable
    mutating func rebuildBuckets(count: Int) {
        buckets = ContiguousArray(repeating: Self.emptyBucket, count: count)
        for position in slots.indices {
            place(position, hash: slots[position].meta.hash)
        }
    }

    /// Empties `hole`, shifting later members of its probe run back so lookups need no
    /// tombstones.
    @inlinable
    mutating func deleteBucket(_ bucket: Int) {
        let mask = buckets.count - 1
        var hole = bucket
        var probe = bucket
        while true {
            probe = (probe + 1) & mask
            let stored = buckets[probe]
            if stored == Self.emptyBucket { break }
            let home = Int(truncatingIfNeeded: stored >> 32) & mask
            // Move `stored` into the hole unless its home lies cyclically in (hole, probe].
            if (probe - home) & mask >= (probe - hole) & mask {
                buckets[hole] = stored
                hole = probe
            }
        }
        buckets[hole] = Self.emptyBucket
    }
}

extension MemoryCacheShard.Lookup: Sendable where Key: Sendable, Value: Sendable, Hit: Sendable {}

extension MemoryCacheShard.Slot: Sendable where Key: Sendable, Value: Sendable {}

// Sendable state is outside region-based isolation checking, which lets the non-Sendable
// closures of `set(if:)` and `update` run against it under the lock.
extension MemoryCacheShard: Sendable where Key: Sendable, Value: Sendable {}
