import Foundation

/// Draws key indices with Zipf-distributed popularity: the key of rank r is picked with
/// probability proportional to 1 / r^s. Ranks are assigned to keys by a seeded shuffle, so the
/// hottest keys are spread over writers and tag groups.
struct ZipfKeys: Sendable {
    /// Cumulative probabilities by rank.
    private let cumulative: [Double]
    /// The key index of each rank.
    private let keyOfRank: [Int]

    init(count: Int, exponent: Double, seed: UInt64) {
        var weights: [Double] = []
        weights.reserveCapacity(count)
        var total = 0.0
        for rank in 1...max(1, count) {
            total += 1 / pow(Double(rank), exponent)
            weights.append(total)
        }
        cumulative = weights.map { $0 / total }
        var random = SeededGenerator(seed: seed, stream: 7)
        keyOfRank = Array(0..<max(1, count)).shuffled(using: &random)
    }

    /// A key index.
    func next(_ random: inout SeededGenerator) -> Int {
        let draw = Double.random(in: 0..<1, using: &random)
        let rank = HistoryIndex.partitionPoint(cumulative) { $0 <= draw }
        return keyOfRank[min(rank, keyOfRank.count - 1)]
    }

    /// The key indices of the `count` most popular keys, hottest first.
    func hottest(_ count: Int) -> [Int] { Array(keyOfRank.prefix(count)) }
}
