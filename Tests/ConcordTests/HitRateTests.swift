import Concord
import ConcordBench
import Testing

/// The traces are seeded and nothing reads a clock, so the policy's standing against the
/// references is asserted here; the `hitrate` bench suite shows the same at full size. Which
/// shard a key lands in follows `String.hashValue`, seeded per process, so the sharded ratio
/// moves by a few thousandths from run to run: the tolerances below allow for that.
@Suite("L1 hit ratio against W-TinyLFU, LRU and the optimum")
struct HitRateTests {
    /// A smaller copy of the bench suite, quick enough for a debug build.
    static var configuration: HitRateSuite.Configuration {
        var configuration = HitRateSuite.Configuration()
        configuration.keyspace = 10_000
        configuration.requests = 100_000
        configuration.scanEvery = 8_000
        configuration.scanLength = 2_000
        configuration.shiftEvery = 10_000
        return configuration
    }

    /// On frequency-driven traces (Zipf, with or without scans) the policy beats the reference
    /// outright; on the shifting and loop traces it stays within 1.5 points of it at this small
    /// size, where shards hold few entries (the bench suite shows the full-size figures).
    @Test func matchesWTinyLFUOnEveryTrace() {
        let results = HitRateSuite(configuration: Self.configuration).run()
        #expect(results.count == 12)
        for result in results {
            let label = "\(result.trace) at \(result.cacheSize): sharded \(result.memoryCacheSharded) vs W-TinyLFU \(result.wTinyLFU)"
            if result.trace.hasPrefix("zipf") || result.trace.hasPrefix("scan") {
                #expect(result.memoryCacheSharded >= result.wTinyLFU, "\(label)")
            } else {
                #expect(result.memoryCacheSharded >= result.wTinyLFU - 0.015, "\(label)")
            }
            #expect(result.memoryCacheSharded > result.lru || result.trace.hasPrefix("shifting"), "\(label), LRU \(result.lru)")
            #expect(result.memoryCacheSharded <= result.optimal)
            #expect(result.wTinyLFU <= result.optimal)
        }
    }

    /// A loop just longer than the cache is the case LRU cannot handle at all: each key is
    /// evicted just before it comes back. Admission keeps a fixed part of the loop instead.
    @Test func loopLongerThanTheCacheIsMostlyHitByAdmissionAndNeverByLRU() {
        let suite = HitRateSuite(configuration: Self.configuration)
        let trace = suite.loopTrace(cacheFraction: 0.1)
        let result = HitRateSuite.measure(trace, cacheFraction: 0.1, shardCount: 16)
        #expect(result.lru == 0)
        #expect(result.wTinyLFU > 0.7)
        #expect(result.memoryCache > 0.7)
        #expect(result.optimal > result.memoryCache)
    }

    /// When the popular keys change, aging lets the new ones in: after each shift the policy's
    /// hit ratio recovers instead of staying with the old hot set.
    @Test func shiftingPopularSetIsFollowed() {
        let trace = KeyTrace.shiftingZipf(exponent: 1.0, keyspace: 10_000, requests: 100_000, phaseLength: 20_000, seed: 7)
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 500, shardCount: 1))
        var hitsAtEndOfPhases = 0
        var requestsAtEndOfPhases = 0
        for (index, key) in trace.keys.enumerated() {
            let hit = cache.get(key, now: .zero) != nil
            if !hit { cache.set(key, MemoryCacheItem(value: key), now: .zero) }
            if index % 20_000 >= 15_000 {
                requestsAtEndOfPhases += 1
                if hit { hitsAtEndOfPhases += 1 }
            }
        }
        let lateRatio = Double(hitsAtEndOfPhases) / Double(requestsAtEndOfPhases)
        let steady = HitRateSuite.lruHits(KeyTrace.zipf(exponent: 1.0, keyspace: 10_000, requests: 20_000, seed: 7).keys, capacity: 500)
        // Late in every phase the policy does at least as well as LRU on an unshifted trace.
        #expect(lateRatio > Double(steady) / 20_000, "late-phase ratio \(lateRatio)")
    }

    @Test func referencePoliciesAreSane() {
        let trace = KeyTrace.zipf(exponent: 1.0, keyspace: 5_000, requests: 50_000, seed: 3)
        let lru = HitRateSuite.lruHits(trace.keys, capacity: 100)
        let wTinyLFU = HitRateSuite.wTinyLFUHits(trace.keys, capacity: 100)
        // On independent Zipf draws, frequency beats recency.
        #expect(wTinyLFU > lru)
        var cache = HitRateWTinyLFUCache(capacity: 100)
        for key in trace.keys { cache.access(key) }
        #expect(cache.count == 100)
    }
}
