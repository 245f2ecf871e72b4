// S3-FIFO (Yang et al., SOSP 2023), per shard.
//
// New keys enter a small FIFO queue holding about 10% of the space. A hit only bumps a 2-bit
// counter; nothing moves. When the small queue is over its share, its oldest entry either moves
// to the main queue (it was hit while there) or leaves, its fingerprint going to the ghost
// queue. A key that misses while still in the ghost queue goes straight to the main queue. The
// main queue is a CLOCK-like FIFO: an entry at its tail with a non-zero counter is moved to the
// head with the counter decremented, otherwise evicted.
//
// One-hit keys (scans, long tails) therefore only ever churn the small queue, and a hot set in
// the main queue survives a scan of any length, which LRU and plain CLOCK/SIEVE do not.

extension MemoryCacheShard {
    /// How many hits an entry needs while in the small queue to be kept in the main queue.
    @inlinable
    static var promotionThreshold: UInt8 { 1 }

    /// Frees one entry, preferring expired ones met on the way. Returns false when the shard is
    /// empty. Each entry can be passed over at most `maxFrequency` times, so the loop ends.
    @inlinable
    mutating func evictOne(now: Int64, removals: inout RemovalBuffer<Key, Value>) -> Bool {
        if small.count > 0
            && (small.count >= smallEntryTarget || small.cost >= smallCostTarget || main.count == 0)
        {
            while small.tail >= 0 {
                let position = Int(small.tail)
                let entry = slots[position].meta
                if Self.isExpired(entry, now: now) {
                    removeEntry(at: position, cause: .expired, removals: &removals)
                    return true
                }
                if entry.frequency >= Self.promotionThreshold {
                    detach(position)
                    slots[position].meta.frequency = 0
                    attachAtHead(position, of: .main)
                    continue
                }
                ghost.append(entry.hash, limit: max(main.count, small.count))
                removeEntry(at: position, cause: .evicted, removals: &removals)
                return true
            }
        }
        while main.tail >= 0 {
            let position = Int(main.tail)
            let entry = slots[position].meta
            if Self.isExpired(entry, now: now) {
                removeEntry(at: position, cause: .expired, removals: &removals)
                return true
            }
            if entry.frequency > 0 {
                detach(position)
                slots[position].meta.frequency = entry.frequency - 1
                attachAtHead(position, of: .main)
                continue
            }
            removeEntry(at: position, cause: .evicted, removals: &removals)
            return true
        }
        return false
    }

    /// Takes the entry out of its queue; it keeps its `queue` tag so it can be put back.
    @inlinable
    mutating func detach(_ position: Int) {
        let entry = slots[position].meta
        let index = Int32(position)
        if entry.newer >= 0 {
            slots[Int(entry.newer)].meta.older = entry.older
        }
        if entry.older >= 0 {
            slots[Int(entry.older)].meta.newer = entry.newer
        }
        var list = self[queue: entry.queue]
        if list.head == index { list.head = entry.older }
        if list.tail == index { list.tail = entry.newer }
        list.count -= 1
        list.cost -= entry.cost
        self[queue: entry.queue] = list
        slots[position].meta.newer = -1
        slots[position].meta.older = -1
    }

    @inlinable
    mutating func attachAtHead(_ position: Int, of queue: QueueID) {
        let index = Int32(position)
        slots[position].meta.queue = queue
        slots[position].meta.newer = -1
        let cost = slots[position].meta.cost
        var list = self[queue: queue]
        slots[position].meta.older = list.head
        if list.head >= 0 {
            slots[Int(list.head)].meta.newer = index
        } else {
            list.tail = index
        }
        list.head = index
        list.count += 1
        list.cost += cost
        self[queue: queue] = list
    }
}
