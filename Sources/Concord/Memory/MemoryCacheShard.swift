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
        get(hash: hash, where: { $0 == key }, now: now, collectingRemovals: collectingRemovals, project: project)
    }

    /// `get` for a key held in another form; `matches` as for `find(hash:where:)`.
    @inlinable
    @inline(__always)
    mutating func get<Hit>(
        hash: UInt32, where matches: (Key) -> Bool, now: Int64, collectingRemovals: Bool, project: (inout Value) -> Hit
    ) -> Lookup<Hit> {
        guard let found = find(hash: hash, where: matches) else {
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

    /// `peek(_:hash:now:)` by a key matcher (see `find(hash:where:)`).
    @inlinable
    func peek(hash: UInt32, where matches: (Key) -> Bool, now: Int64) -> Value? {
        guard let found = find(hash: hash, where: matches), !Self.isExpired(slots[found.position].meta, now: now) else {
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
}

extension MemoryCacheShard.Lookup: Sendable where Key: Sendable, Value: Sendable, Hit: Sendable {}

extension MemoryCacheShard.Slot: Sendable where Key: Sendable, Value: Sendable {}

// Sendable state is outside region-based isolation checking, which lets the non-Sendable
// closures of `set(if:)` and `update` run against it under the lock.
extension MemoryCacheShard: Sendable where Key: Sendable, Value: Sendable {}
