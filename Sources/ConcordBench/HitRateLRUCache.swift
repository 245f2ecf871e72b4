/// A plain least-recently-used cache of integer keys: the reference the memory cache's policy
/// is measured against. Written for obvious correctness, not speed.
struct HitRateLRUCache {
    let capacity: Int
    private var slotOfKey: [Int: Int] = [:]
    private var keyOfSlot: [Int] = []
    /// A doubly linked recency list over slots; `newest` is the most recently used.
    private var newerOf: [Int] = []
    private var olderOf: [Int] = []
    private var newest = -1
    private var oldest = -1

    init(capacity: Int) {
        precondition(capacity > 0, "an LRU cache needs room for one key")
        self.capacity = capacity
    }

    var count: Int { slotOfKey.count }

    func contains(_ key: Int) -> Bool {
        slotOfKey[key] != nil
    }

    /// Records an access to `key`: a hit moves it to the front, a miss inserts it there and
    /// evicts the least recently used key when full. Returns whether it was a hit.
    @discardableResult
    mutating func access(_ key: Int) -> Bool {
        if let slot = slotOfKey[key] {
            unlink(slot)
            pushNewest(slot)
            return true
        }
        let slot: Int
        if slotOfKey.count < capacity {
            slot = keyOfSlot.count
            keyOfSlot.append(key)
            newerOf.append(-1)
            olderOf.append(-1)
        } else {
            slot = oldest
            unlink(slot)
            slotOfKey[keyOfSlot[slot]] = nil
            keyOfSlot[slot] = key
        }
        slotOfKey[key] = slot
        pushNewest(slot)
        return false
    }

    private mutating func unlink(_ slot: Int) {
        let newer = newerOf[slot]
        let older = olderOf[slot]
        if newer >= 0 { olderOf[newer] = older } else { newest = older }
        if older >= 0 { newerOf[older] = newer } else { oldest = newer }
        newerOf[slot] = -1
        olderOf[slot] = -1
    }

    private mutating func pushNewest(_ slot: Int) {
        olderOf[slot] = newest
        newerOf[slot] = -1
        if newest >= 0 { newerOf[newest] = slot } else { oldest = slot }
        newest = slot
    }
}
