/// Bélády's optimal policy (MIN) with bypass: the most hits any policy can get on a trace, the
/// ceiling the other policies are compared with.
///
/// On a miss with a full cache it evicts the cached key whose next use is furthest away, or
/// does not cache the new key at all when that key is the one reused last (never caching a
/// key that is not reused again).
enum HitRateOptimal {
    /// The number of hits of the optimal policy replaying `keys` with room for `capacity` keys.
    /// `keyUpperBound` bounds the keys, which index arrays.
    static func hits(keys: [Int], keyUpperBound: Int, capacity: Int) -> Int {
        let never = Int.max
        var nextUse = [Int](repeating: never, count: keys.count)
        var upcoming = [Int](repeating: never, count: keyUpperBound)
        for index in keys.indices.reversed() {
            nextUse[index] = upcoming[keys[index]]
            upcoming[keys[index]] = index
        }

        // The next use of each cached key (`never` also marks keys not cached: a cached key
        // reused never again is evicted or skipped first, so it is never kept under `never`).
        var cachedNextUse = [Int](repeating: -1, count: keyUpperBound)
        var cachedCount = 0
        // Max-heap of (next use, key); entries whose next use is stale are skipped when popped.
        var heap = MaxHeap()
        var hits = 0
        for (index, key) in keys.enumerated() {
            let next = nextUse[index]
            if cachedNextUse[key] >= 0 {
                hits += 1
                if next == never {
                    cachedNextUse[key] = -1
                    cachedCount -= 1
                } else {
                    cachedNextUse[key] = next
                    heap.push(next, key)
                }
                continue
            }
            if next == never { continue }
            if cachedCount == capacity {
                while let top = heap.top, cachedNextUse[top.key] != top.nextUse {
                    heap.pop()
                }
                guard let victim = heap.top, victim.nextUse > next else { continue }
                heap.pop()
                cachedNextUse[victim.key] = -1
                cachedCount -= 1
            }
            cachedNextUse[key] = next
            cachedCount += 1
            heap.push(next, key)
        }
        return hits
    }

    private struct MaxHeap {
        private var nodes: [(nextUse: Int, key: Int)] = []

        var top: (nextUse: Int, key: Int)? { nodes.first }

        mutating func push(_ nextUse: Int, _ key: Int) {
            nodes.append((nextUse, key))
            var child = nodes.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if nodes[parent].nextUse >= nodes[child].nextUse { break }
                nodes.swapAt(parent, child)
                child = parent
            }
        }

        mutating func pop() {
            let last = nodes.removeLast()
            guard !nodes.isEmpty else { return }
            nodes[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var largest = parent
                if left < nodes.count && nodes[left].nextUse > nodes[largest].nextUse { largest = left }
                if right < nodes.count && nodes[right].nextUse > nodes[largest].nextUse { largest = right }
                if largest == parent { break }
                nodes.swapAt(parent, largest)
                parent = largest
            }
        }
    }
}
