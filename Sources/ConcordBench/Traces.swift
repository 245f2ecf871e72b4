/// A named sequence of integer keys to replay through caches for the hit-rate suite.
///
/// Keys of the reused population are `0..<keyspace`; keys from scans are `keyspace` and up,
/// each used once. Cache sizes in the suite are fractions of `keyspace`.
package struct KeyTrace: Sendable {
    package var name: String
    package var keyspace: Int
    package var keys: [Int]

    package init(name: String, keyspace: Int, keys: [Int]) {
        self.name = name
        self.keyspace = keyspace
        self.keys = keys
    }

    /// One more than the largest key, so replays can index arrays by key.
    package var keyUpperBound: Int {
        (keys.max() ?? -1) + 1
    }

    /// Independent draws from a Zipf distribution over `keyspace` keys. The most popular key
    /// is not key 0: ranks are shuffled onto keys, so popularity is not tied to key order.
    package static func zipf(exponent: Double, keyspace: Int, requests: Int, seed: UInt64) -> KeyTrace {
        var generator = TraceRandomGenerator(seed: seed)
        let keyOfRank = Array(0..<keyspace).shuffled(using: &generator)
        let distribution = ZipfDistribution(count: keyspace, exponent: exponent)
        var keys = [Int]()
        keys.reserveCapacity(requests)
        for _ in 0..<requests {
            keys.append(keyOfRank[distribution.next(using: &generator)])
        }
        return KeyTrace(name: "zipf-\(exponent)", keyspace: keyspace, keys: keys)
    }

    /// Zipf traffic interrupted by sequential scans of keys never seen before or after: each
    /// `zipfRun` Zipf requests are followed by a scan of `scanLength` new keys. This is what a
    /// batch job or a crawler does to a cache; a scan longer than the cache flushes an LRU.
    package static func scanPollutedZipf(
        exponent: Double,
        keyspace: Int,
        requests: Int,
        zipfRun: Int,
        scanLength: Int,
        seed: UInt64
    ) -> KeyTrace {
        precondition(zipfRun > 0 && scanLength >= 0)
        var generator = TraceRandomGenerator(seed: seed)
        let keyOfRank = Array(0..<keyspace).shuffled(using: &generator)
        let distribution = ZipfDistribution(count: keyspace, exponent: exponent)
        var keys = [Int]()
        keys.reserveCapacity(requests)
        var nextScanKey = keyspace
        while keys.count < requests {
            for _ in 0..<min(zipfRun, requests - keys.count) {
                keys.append(keyOfRank[distribution.next(using: &generator)])
            }
            for _ in 0..<min(scanLength, requests - keys.count) {
                keys.append(nextScanKey)
                nextScanKey += 1
            }
        }
        return KeyTrace(name: "scan-zipf-\(exponent)", keyspace: keyspace, keys: keys)
    }

    /// Zipf traffic whose popular set moves: every `phaseLength` requests the ranks are dealt
    /// to a different set of keys (each key's rank moves by a third of the keyspace), so what
    /// was hot goes cold at once and a policy must forget old frequencies to keep up. A news
    /// front page or a daily catalogue does this to a cache.
    package static func shiftingZipf(
        exponent: Double, keyspace: Int, requests: Int, phaseLength: Int, seed: UInt64
    ) -> KeyTrace {
        precondition(phaseLength > 0)
        var generator = TraceRandomGenerator(seed: seed)
        let keyOfRank = Array(0..<keyspace).shuffled(using: &generator)
        let distribution = ZipfDistribution(count: keyspace, exponent: exponent)
        let shift = max(1, keyspace / 3)
        var keys = [Int]()
        keys.reserveCapacity(requests)
        for request in 0..<requests {
            let phase = request / phaseLength
            let rank = distribution.next(using: &generator)
            keys.append(keyOfRank[(rank + phase * shift) % keyspace])
        }
        return KeyTrace(name: "shifting-zipf-\(exponent)", keyspace: keyspace, keys: keys)
    }

    /// The same `loopLength` keys requested in the same order again and again, as a batch job
    /// that re-reads a table does. With a loop slightly longer than the cache, LRU and FIFO
    /// evict every key just before it comes back and hit nothing, while keeping any fixed
    /// subset hits almost as often as the cache is large.
    package static func loop(loopLength: Int, keyspace: Int, requests: Int, seed: UInt64) -> KeyTrace {
        precondition(loopLength > 0 && loopLength <= keyspace)
        var generator = TraceRandomGenerator(seed: seed)
        let order = Array(0..<keyspace).shuffled(using: &generator).prefix(loopLength)
        var keys = [Int]()
        keys.reserveCapacity(requests)
        while keys.count < requests {
            keys.append(contentsOf: order.prefix(requests - keys.count))
        }
        let percent = Int((Double(loopLength) / Double(keyspace) * 1000).rounded())
        return KeyTrace(name: "loop-\(Double(percent) / 10)%", keyspace: keyspace, keys: keys)
    }
}
