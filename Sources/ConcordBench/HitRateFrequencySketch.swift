/// The frequency filter of the W-TinyLFU reference, as the TinyLFU paper (Einziger, Friedman
/// and Manes, 2017) and Caffeine describe it: a count-min sketch of 4-bit counters in four rows,
/// a doorkeeper Bloom filter that absorbs each key's first occurrence, and aging that halves
/// every counter (and clears the doorkeeper) after a sample of ten accesses per cache entry.
/// Written for obvious correctness, not speed: one byte per counter.
struct HitRateFrequencySketch {
    static let rows = 4
    static let maxCount: UInt8 = 15
    private var counters: [[UInt8]]
    private var doorkeeper: [Bool]
    private let width: Int
    private let sampleSize: Int
    private var additions = 0

    init(capacity: Int) {
        var width = 16
        while width < capacity * 4 { width <<= 1 }
        self.width = width
        counters = Array(repeating: Array(repeating: 0, count: width), count: Self.rows)
        doorkeeper = Array(repeating: false, count: width * 2)
        sampleSize = 10 * max(1, capacity)
    }

    /// Records one access to `key`.
    mutating func increment(_ key: Int) {
        let doorkeeperSlots = doorkeeperIndices(key)
        if !doorkeeperSlots.allSatisfy({ doorkeeper[$0] }) {
            for slot in doorkeeperSlots { doorkeeper[slot] = true }
        } else {
            for row in 0..<Self.rows {
                let column = index(key, row: row)
                if counters[row][column] < Self.maxCount { counters[row][column] += 1 }
            }
        }
        additions += 1
        if additions >= sampleSize { age() }
    }

    /// The estimated number of accesses to `key` in the recent past.
    func estimate(_ key: Int) -> Int {
        let sketch = (0..<Self.rows).map { Int(counters[$0][index(key, row: $0)]) }.min() ?? 0
        let seen = doorkeeperIndices(key).allSatisfy { doorkeeper[$0] }
        return sketch + (seen ? 1 : 0)
    }

    private mutating func age() {
        for row in 0..<Self.rows {
            for column in 0..<width { counters[row][column] /= 2 }
        }
        doorkeeper = Array(repeating: false, count: doorkeeper.count)
        additions /= 2
    }

    private func index(_ key: Int, row: Int) -> Int {
        Int(truncatingIfNeeded: Self.mix(UInt64(truncatingIfNeeded: key), seed: UInt64(row + 1)) % UInt64(width))
    }

    private func doorkeeperIndices(_ key: Int) -> [Int] {
        (0..<3).map {
            Int(truncatingIfNeeded: Self.mix(UInt64(truncatingIfNeeded: key), seed: UInt64(100 + $0)) % UInt64(doorkeeper.count))
        }
    }

    /// SplitMix64's finalizer over the key and a per-row seed: independent-looking rows.
    private static func mix(_ value: UInt64, seed: UInt64) -> UInt64 {
        var z = value &+ seed &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
