import Concord
import Foundation

/// The `hitrate` benchmark suite: replays synthetic traces through `MemoryCache`, the
/// W-TinyLFU reference, a reference LRU and Bélády's optimum at several cache sizes, and
/// reports the hit ratios side by side.
package struct HitRateSuite: Sendable {
    /// What to generate and at which sizes to measure.
    package struct Configuration: Sendable {
        package var keyspace = 100_000
        package var requests = 1_000_000
        package var zipfExponents: [Double] = [0.8, 1.0, 1.2]
        /// The scan-polluted trace: Zipf with this exponent, interrupted every `scanEvery`
        /// requests by a scan of `scanLength` one-hit keys.
        package var scanZipfExponent = 1.0
        package var scanEvery = 80_000
        package var scanLength = 20_000
        /// The shifting trace: Zipf with this exponent whose popular keys change every
        /// `shiftEvery` requests.
        package var shiftZipfExponent = 1.0
        package var shiftEvery = 100_000
        /// The loop trace cycles over this many times as many keys as the cache holds.
        package var loopOverCapacity = 1.1
        /// Cache sizes, as fractions of the keyspace.
        package var cacheFractions: [Double] = [0.01, 0.1]
        /// The sharded run uses this many shards (the cache's default).
        package var shardCount = MemoryCacheConfiguration().shardCount
        package var seed: UInt64 = 42

        package init() {}
    }

    package var configuration: Configuration

    package init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The traces of the suite, generated from the seed.
    package func traces() -> [KeyTrace] {
        var traces = configuration.zipfExponents.enumerated().map { offset, exponent in
            KeyTrace.zipf(
                exponent: exponent, keyspace: configuration.keyspace, requests: configuration.requests,
                seed: configuration.seed &+ UInt64(offset))
        }
        traces.append(KeyTrace.scanPollutedZipf(
            exponent: configuration.scanZipfExponent, keyspace: configuration.keyspace,
            requests: configuration.requests, zipfRun: configuration.scanEvery,
            scanLength: configuration.scanLength, seed: configuration.seed &+ 100))
        traces.append(KeyTrace.shiftingZipf(
            exponent: configuration.shiftZipfExponent, keyspace: configuration.keyspace,
            requests: configuration.requests, phaseLength: configuration.shiftEvery,
            seed: configuration.seed &+ 200))
        return traces
    }

    /// The loop trace for one cache size: it loops over `loopOverCapacity` times the entries
    /// that size holds, so it is made per size.
    package func loopTrace(cacheFraction: Double) -> KeyTrace {
        let size = Self.cacheSize(keyspace: configuration.keyspace, fraction: cacheFraction)
        let length = min(configuration.keyspace, max(size + 1, Int((Double(size) * configuration.loopOverCapacity).rounded())))
        return KeyTrace.loop(
            loopLength: length, keyspace: configuration.keyspace, requests: configuration.requests,
            seed: configuration.seed &+ 300)
    }

    /// Replays every trace at every size. Takes a few seconds in release builds with the
    /// default configuration.
    package func run() -> [HitRateResult] {
        let results = traces().flatMap { trace in
            configuration.cacheFractions.map { fraction in
                Self.measure(trace, cacheFraction: fraction, shardCount: configuration.shardCount)
            }
        }
        return results + configuration.cacheFractions.map { fraction in
            Self.measure(loopTrace(cacheFraction: fraction), cacheFraction: fraction, shardCount: configuration.shardCount)
        }
    }

    static func cacheSize(keyspace: Int, fraction: Double) -> Int {
        max(1, Int((Double(keyspace) * fraction).rounded()))
    }

    /// Measures one trace at one size with every policy.
    package static func measure(_ trace: KeyTrace, cacheFraction: Double, shardCount: Int) -> HitRateResult {
        let size = cacheSize(keyspace: trace.keyspace, fraction: cacheFraction)
        let requests = Double(max(1, trace.keys.count))
        let single = memoryCacheHits(trace.keys, capacity: size, shardCount: 1)
        let sharded = memoryCacheHits(trace.keys, capacity: size, shardCount: shardCount)
        let lru = lruHits(trace.keys, capacity: size)
        let wTinyLFU = wTinyLFUHits(trace.keys, capacity: size)
        let optimal = HitRateOptimal.hits(keys: trace.keys, keyUpperBound: trace.keyUpperBound, capacity: size)
        return HitRateResult(
            trace: trace.name, requests: trace.keys.count, keyspace: trace.keyspace,
            cacheSize: size, cacheFraction: cacheFraction,
            memoryCache: Double(single) / requests,
            memoryCacheSharded: Double(sharded) / requests,
            shardCount: shardsInForce(capacity: size, requested: shardCount),
            lru: Double(lru) / requests,
            wTinyLFU: Double(wTinyLFU) / requests,
            optimal: Double(optimal) / requests)
    }

    /// How many shards a `MemoryCache` of this size runs with when asked for `requested`: small
    /// caches get fewer (`MemoryCacheConfiguration.minEntriesPerShard`).
    static func shardsInForce(capacity: Int, requested: Int) -> Int {
        MemoryCache<Int, Int>(configuration: MemoryCacheConfiguration(maxEntries: capacity, shardCount: requested))
            .configuration.shardCount
    }

    /// Hits of a `MemoryCache` used as a look-aside cache: get, and set on a miss.
    package static func memoryCacheHits(_ keys: [Int], capacity: Int, shardCount: Int) -> Int {
        let cache = MemoryCache<Int, Int>(
            configuration: MemoryCacheConfiguration(maxEntries: capacity, shardCount: shardCount))
        var hits = 0
        for key in keys {
            if cache.get(key, now: .zero) != nil {
                hits += 1
            } else {
                cache.set(key, MemoryCacheItem(value: key), now: .zero)
            }
        }
        return hits
    }

    package static func lruHits(_ keys: [Int], capacity: Int) -> Int {
        var lru = HitRateLRUCache(capacity: capacity)
        var hits = 0
        for key in keys where lru.access(key) {
            hits += 1
        }
        return hits
    }

    package static func wTinyLFUHits(_ keys: [Int], capacity: Int) -> Int {
        var cache = HitRateWTinyLFUCache(capacity: capacity)
        var hits = 0
        for key in keys where cache.access(key) {
            hits += 1
        }
        return hits
    }

    /// A fixed-width table of the results, with the policy's ratio to LRU and the share of the
    /// LRU-to-optimal gap it closes.
    package static func render(_ results: [HitRateResult]) -> String {
        func column(_ text: String, _ width: Int) -> String {
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
        func ratio(_ value: Double) -> String { String(format: "%.4f", value) }
        let header = ["trace", "size", "Concord", "sharded", "W-TinyLFU", "LRU", "optimal", "vs LRU", "gap closed"]
        let widths = [20, 8, 9, 9, 10, 9, 9, 8, 10]
        var lines = [zip(header, widths).map { column($0, $1) }.joined()]
        for result in results {
            let cells = [
                result.trace, String(result.cacheSize), ratio(result.memoryCache), ratio(result.memoryCacheSharded),
                ratio(result.wTinyLFU), ratio(result.lru), ratio(result.optimal), String(format: "%.3f", result.ratioToLRU),
                String(format: "%.0f%%", result.gapClosed * 100),
            ]
            lines.append(zip(cells, widths).map { column($0, $1) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
