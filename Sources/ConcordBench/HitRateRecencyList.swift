/// An ordered set of integer keys, most recently used first, for the reference policies of the
/// hit-rate suite. Written for obvious correctness, not speed.
struct HitRateRecencyList {
    private var newerOf: [Int: Int] = [:]
    private var olderOf: [Int: Int] = [:]
    private(set) var newest: Int?
    private(set) var oldest: Int?
    private(set) var count = 0

    func contains(_ key: Int) -> Bool {
        newerOf[key] != nil || newest == key
    }

    /// Puts `key`, which must not be in the list, at the most recent end.
    mutating func pushNewest(_ key: Int) {
        precondition(!contains(key), "key \(key) is already in the list")
        if let newest {
            newerOf[newest] = key
            olderOf[key] = newest
        } else {
            oldest = key
        }
        newest = key
        count += 1
    }

    /// Takes `key` out of the list; returns false when it was not there.
    @discardableResult
    mutating func remove(_ key: Int) -> Bool {
        guard contains(key) else { return false }
        let newer = newerOf.removeValue(forKey: key)
        let older = olderOf.removeValue(forKey: key)
        if let newer { olderOf[newer] = older } else { newest = older }
        if let older { newerOf[older] = newer } else { oldest = newer }
        if let newer, older == nil { olderOf[newer] = nil }
        if let older, newer == nil { newerOf[older] = nil }
        count -= 1
        return true
    }

    mutating func moveToNewest(_ key: Int) {
        remove(key)
        pushNewest(key)
    }

    /// Removes and returns the least recently used key.
    mutating func popOldest() -> Int? {
        guard let oldest else { return nil }
        remove(oldest)
        return oldest
    }
}
