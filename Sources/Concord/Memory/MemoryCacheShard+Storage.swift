extension MemoryCacheShard {
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
    @inline(__always)
    func find(_ key: Key, hash: UInt32) -> (position: Int, bucket: Int)? {
        find(hash: hash) { $0 == key }
    }

    /// `find` for a caller that holds the key in another form (its UTF-8 bytes off the wire):
    /// `matches` must accept exactly the key that `hash` was computed from.
    @inlinable
    @inline(__always)
    func find(hash: UInt32, where matches: (Key) -> Bool) -> (position: Int, bucket: Int)? {
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
                        if matches(slots[position].key) {
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
