/// Caffeine's W-TinyLFU policy, the reference the memory cache's hit ratio must reach: a
/// window LRU of 1% of the capacity in front of a segmented LRU main space (a probation segment
/// and a protected one of 80% of the main space), with TinyLFU admission between them. A key
/// leaving the window enters probation when there is room; otherwise it replaces probation's
/// least recently used key only when the frequency sketch estimates it strictly more popular.
/// A hit in probation promotes the key to protected, which demotes its own overflow back to
/// probation. Every access, hit or miss, is counted in the sketch. Written for obvious
/// correctness, not speed; the window is fixed (Caffeine's simulator calls this variant
/// W-TinyLFU 1%).
package struct HitRateWTinyLFUCache {
    package let capacity: Int
    private let windowCapacity: Int
    private let protectedCapacity: Int
    private var window = HitRateRecencyList()
    private var probation = HitRateRecencyList()
    private var protected = HitRateRecencyList()
    private var sketch: HitRateFrequencySketch

    package init(capacity: Int, windowFraction: Double = 0.01) {
        precondition(capacity > 0, "a cache needs room for one key")
        self.capacity = capacity
        windowCapacity = min(capacity, max(1, Int((Double(capacity) * windowFraction).rounded())))
        let mainCapacity = capacity - windowCapacity
        protectedCapacity = Int(Double(mainCapacity) * 0.8)
        sketch = HitRateFrequencySketch(capacity: capacity)
    }

    package var count: Int { window.count + probation.count + protected.count }

    /// Records an access to `key`; returns whether it was a hit.
    @discardableResult
    package mutating func access(_ key: Int) -> Bool {
        sketch.increment(key)
        if window.contains(key) {
            window.moveToNewest(key)
            return true
        }
        if protected.contains(key) {
            protected.moveToNewest(key)
            return true
        }
        if probation.contains(key) {
            probation.remove(key)
            protected.pushNewest(key)
            if protected.count > protectedCapacity, let demoted = protected.popOldest() {
                probation.pushNewest(demoted)
            }
            return true
        }
        window.pushNewest(key)
        if window.count > windowCapacity, let candidate = window.popOldest() {
            admit(candidate)
        }
        return false
    }

    private mutating func admit(_ candidate: Int) {
        if probation.count + protected.count < capacity - windowCapacity {
            probation.pushNewest(candidate)
            return
        }
        let victim = probation.oldest ?? protected.oldest
        guard let victim else { return }
        if sketch.estimate(candidate) > sketch.estimate(victim) {
            if !probation.remove(victim) { protected.remove(victim) }
            probation.pushNewest(candidate)
        }
    }
}
