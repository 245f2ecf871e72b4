import Concord
import Foundation
import Synchronization

/// Records what a `MemoryCache` reports to its removal listener, for assertions.
final class MemoryCacheRemovalRecorder<Key: Sendable, Value: Sendable>: Sendable {
    struct Removal: Sendable {
        var key: Key
        var value: Value
        var cause: RemovalCause
    }

    private let state = Mutex<[Removal]>([])

    var listener: @Sendable (Key, Value, RemovalCause) -> Void {
        { [self] key, value, cause in
            state.withLock { $0.append(Removal(key: key, value: value, cause: cause)) }
        }
    }

    var removals: [Removal] {
        state.withLock { $0 }
    }

    func causes() -> [RemovalCause] {
        removals.map(\.cause)
    }

    func count(of cause: RemovalCause) -> Int {
        removals.filter { $0.cause == cause }.count
    }
}

/// A deterministic generator (SplitMix64) so every randomized test replays the same way.
struct MemoryCacheTestRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// A textbook LRU, the policy the memory cache must beat: the tests run it through the same
/// access sequences to show that they would fail under LRU.
struct MemoryCacheReferenceLRU {
    let capacity: Int
    private var lastUse: [Int: Int] = [:]
    private var order: [Int: Int] = [:]  // use tick -> key, for finding the oldest
    private var tick = 0
    private var oldestTick = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    func contains(_ key: Int) -> Bool {
        lastUse[key] != nil
    }

    /// Returns whether `key` was cached, then makes it the most recently used.
    @discardableResult
    mutating func access(_ key: Int) -> Bool {
        let hit = lastUse[key] != nil
        if let previous = lastUse[key] {
            order[previous] = nil
        } else if lastUse.count == capacity {
            while order[oldestTick] == nil { oldestTick += 1 }
            let victim = order.removeValue(forKey: oldestTick)!
            lastUse[victim] = nil
        }
        lastUse[key] = tick
        order[tick] = key
        tick += 1
        return hit
    }
}

/// Draws Zipf-distributed ranks by inverting the cumulative distribution.
struct MemoryCacheZipfKeys {
    private let cumulative: [Double]

    init(keyspace: Int, exponent: Double) {
        var sums = [Double]()
        var sum = 0.0
        for rank in 1...keyspace {
            sum += 1 / pow(Double(rank), exponent)
            sums.append(sum)
        }
        cumulative = sums.map { $0 / sum }
    }

    func next(using random: inout MemoryCacheTestRandom) -> Int {
        let target = Double.random(in: 0..<1, using: &random)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > target { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
