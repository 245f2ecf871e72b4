import Foundation

/// Draws ranks `0..<count` with probability proportional to `1 / (rank + 1)^exponent`.
///
/// Sampling inverts a precomputed cumulative table by binary search: exact for any exponent
/// (including the s ≤ 1 cases that closed-form approximations handle poorly) and fast enough
/// for millions of draws.
struct ZipfDistribution: Sendable {
    let count: Int
    let exponent: Double
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        precondition(count > 0, "a Zipf distribution needs at least one rank")
        self.count = count
        self.exponent = exponent
        var cumulative = [Double]()
        cumulative.reserveCapacity(count)
        var sum = 0.0
        for rank in 1...count {
            sum += 1 / pow(Double(rank), exponent)
            cumulative.append(sum)
        }
        self.cumulative = cumulative.map { $0 / sum }
    }

    func next(using generator: inout some RandomNumberGenerator) -> Int {
        let target = Double.random(in: 0..<1, using: &generator)
        var low = 0
        var high = count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > target {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }
}
