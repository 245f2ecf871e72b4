import Concord
import Testing

@Suite("MemoryCache: bounds and the W-TinyLFU policy")
struct MemoryCacheEvictionTests {
    let now = CacheInstant.zero

    @Test(arguments: [1, 4, 16])
    func entryBoundHolds(shardCount: Int) {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 1_000, shardCount: shardCount))
        var random = MemoryCacheTestRandom(seed: 1)
        for _ in 0..<50_000 {
            let key = Int.random(in: 0..<20_000, using: &random)
            if cache.get(key, now: now) == nil {
                cache.set(key, MemoryCacheItem(value: key), now: now)
            }
            #expect(cache.count <= 1_000)
        }
        #expect(cache.count <= 1_000)
        #expect(cache.count > 900)
        #expect(cache.shardEntryCounts.reduce(0, +) == cache.count)
        let statistics = cache.statistics
        #expect(statistics.entryCount == cache.count)
        // Every stored key either is still there or was evicted.
        #expect(statistics.misses == cache.count + statistics.evictions)
    }

    @Test(arguments: [1, 4])
    func costBoundHolds(shardCount: Int) {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxCost: 1_000, shardCount: shardCount))
        var random = MemoryCacheTestRandom(seed: 2)
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<5_000, using: &random)
            let cost = Int.random(in: 1...60, using: &random)
            cache.set(key, MemoryCacheItem(value: step, cost: cost), now: now)
            if step % 100 == 0 {
                #expect(cache.totalCost <= 1_000)
            }
        }
        #expect(cache.totalCost <= 1_000)
        // Filled, not emptied by over-eager eviction (each shard may sit up to ~2 items below its share).
        #expect(cache.totalCost > 600)
        #expect(cache.statistics.totalCost == cache.totalCost)
    }

    @Test func itemCostlierThanTheBoundIsRejected() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(
            configuration: .init(maxCost: 100, shardCount: 1), onRemoval: recorder.listener)
        cache.set("small", MemoryCacheItem(value: 1, cost: 60), now: now)

        #expect(!cache.set("huge", MemoryCacheItem(value: 2, cost: 101), now: now))
        #expect(cache.get("huge", now: now) == nil)
        // Nothing was evicted to make room for an item that could never fit.
        #expect(cache.get("small", now: now) == 1)

        // Replacing with an oversized value drops the old one: the cache must not keep serving
        // a value the caller has superseded.
        #expect(!cache.set("small", MemoryCacheItem(value: 3, cost: 1_000), now: now))
        #expect(cache.get("small", now: now) == nil)
        #expect(recorder.causes() == [.evicted, .replaced, .evicted])
        #expect(cache.statistics.rejections == 2)

        // An item of exactly the bound fits, after evicting everything else.
        cache.set("a", MemoryCacheItem(value: 4, cost: 50), now: now)
        #expect(cache.set("exact", MemoryCacheItem(value: 5, cost: 100), now: now))
        #expect(cache.totalCost == 100)
        #expect(cache.count == 1)
    }

    /// Each shard owns an equal share of the cost bound.
    @Test func itemCostlierThanAShardShareIsRejected() {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxCost: 100, shardCount: 4))
        #expect(!cache.set(1, MemoryCacheItem(value: 1, cost: 26), now: now))
        #expect(cache.set(1, MemoryCacheItem(value: 1, cost: 25), now: now))
    }

    @Test func negativeCostCountsAsZero() {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxCost: 10, shardCount: 1))
        #expect(cache.set(1, MemoryCacheItem(value: 1, cost: -50), now: now))
        #expect(cache.set(2, MemoryCacheItem(value: 2, cost: 10), now: now))
        #expect(cache.totalCost == 10)
        #expect(cache.count == 2)
        cache.update(2, now: now) { item in
            item.cost = -1
            return .keep
        }
        #expect(cache.totalCost == 0)
    }

    @Test func growingAnItemThroughUpdateEvictsOthers() {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxCost: 10, shardCount: 1))
        for key in 0..<10 {
            cache.set(key, MemoryCacheItem(value: key), now: now)
        }
        cache.update(9, now: now) { item in
            item.cost = 5
            return .keep
        }
        #expect(cache.totalCost <= 10)
        // Whichever entries the policy chose, what left was counted as evicted.
        #expect(cache.count + cache.statistics.evictions == 10)
        #expect(cache.count < 10)
    }

    /// The point of frequency-based admission over LRU: a scan of one-hit keys longer than the
    /// cache does not flush a hot set. The same access sequence through an LRU loses the whole hot set.
    @Test(arguments: [1, 16])
    func hotSetSurvivesAScan(shardCount: Int) {
        let capacity = 1_000
        let hotKeys = 0..<200
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: capacity, shardCount: shardCount))
        var lru = MemoryCacheReferenceLRU(capacity: capacity)
        func access(_ key: Int) {
            if cache.get(key, now: now) == nil {
                cache.set(key, MemoryCacheItem(value: key), now: now)
            }
            lru.access(key)
        }
        for _ in 0..<3 {
            for key in hotKeys { access(key) }
        }
        for key in 1_000_000..<1_010_000 {
            access(key)
        }

        let keptByPolicy = hotKeys.filter { cache.peek($0, now: now) != nil }.count
        let keptByLRU = hotKeys.filter { lru.contains($0) }.count
        #expect(keptByPolicy >= 190)
        #expect(keptByLRU < 20)
    }

    /// On a skewed trace the policy hits more often than LRU of the same size.
    @Test(arguments: [1, 4])
    func beatsLRUOnZipf(shardCount: Int) {
        let keyspace = 10_000
        let capacity = 200
        let zipf = MemoryCacheZipfKeys(keyspace: keyspace, exponent: 1.0)
        var random = MemoryCacheTestRandom(seed: 3)
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: capacity, shardCount: shardCount))
        var lru = MemoryCacheReferenceLRU(capacity: capacity)
        var policyHits = 0
        var lruHits = 0
        let requests = 100_000
        for _ in 0..<requests {
            let key = zipf.next(using: &random)
            if cache.get(key, now: now) != nil {
                policyHits += 1
            } else {
                cache.set(key, MemoryCacheItem(value: key), now: now)
            }
            if lru.access(key) { lruHits += 1 }
        }
        let policyRatio = Double(policyHits) / Double(requests)
        let lruRatio = Double(lruHits) / Double(requests)
        #expect(policyRatio > lruRatio + 0.03, "policy \(policyRatio) vs LRU \(lruRatio)")
        #expect(cache.statistics.hits == policyHits)
    }

    /// Random operations against a model kept from return values and removal reports: every
    /// read returns exactly what the model says is live, and the counts match. This exercises
    /// the table's deletions and the moves that keep storage dense.
    @Test(arguments: [(1, 64), (1, 1_000), (4, 64)])
    func agreesWithAModel(shardCount: Int, maxEntries: Int) {
        struct Entry {
            var value: Int
            var expiresAt: CacheInstant?
        }
        final class Model: @unchecked Sendable {
            var entries: [Int: Entry] = [:]

            func live(_ key: Int, at now: CacheInstant) -> Int? {
                guard let entry = entries[key] else { return nil }
                if let expiresAt = entry.expiresAt, now >= expiresAt { return nil }
                return entry.value
            }
        }
        let model = Model()
        let cache = MemoryCache<Int, Int>(
            configuration: .init(maxEntries: maxEntries, maxCost: maxEntries * 3, shardCount: shardCount)
        ) { key, value, _ in
            // Every report names the value it removes; a refused item was never in the model.
            if model.entries[key]?.value == value { model.entries[key] = nil }
        }
        var random = MemoryCacheTestRandom(seed: UInt64(shardCount * 10_000 + maxEntries))
        var clock = CacheInstant.zero
        var nextValue = 0
        var failures = 0
        func check(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition && failures < 10 {
                failures += 1
                Issue.record(Comment(rawValue: message()))
            }
        }
        let keyspace = maxEntries * 3
        for step in 0..<30_000 {
            let key = Int.random(in: 0..<keyspace, using: &random)
            clock += .milliseconds(Int64.random(in: 0...3, using: &random))
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                nextValue += 1
                let expiresAt: CacheInstant? =
                    Bool.random(using: &random) ? clock + .milliseconds(Int64.random(in: 1...500, using: &random)) : nil
                let item = MemoryCacheItem(value: nextValue, cost: Int.random(in: 0...6, using: &random), expiresAt: expiresAt)
                if cache.set(key, item, now: clock) {
                    model.entries[key] = Entry(value: nextValue, expiresAt: expiresAt)
                }
            case 45..<80:
                let expected = model.live(key, at: clock)
                let value = cache.get(key, now: clock)
                check(value == expected, "step \(step): get \(key) = \(String(describing: value)), model \(String(describing: expected))")
            case 80..<88:
                let expected = model.entries[key]?.value
                let removed = cache.remove(key)
                check(removed == expected, "step \(step): remove \(key) = \(String(describing: removed)), model \(String(describing: expected))")
            case 88..<96:
                let wasLive = model.live(key, at: clock) != nil
                let found = cache.update(key, now: clock) { item in
                    nextValue += 1
                    item.value = nextValue
                    model.entries[key]?.value = nextValue
                    return .keep
                }
                check(found == wasLive, "step \(step): update \(key) found \(found), model \(wasLive)")
            case 96..<99:
                nextValue += 1
                let value = nextValue
                let wasLive = model.live(key, at: clock) != nil
                if cache.set(key, MemoryCacheItem(value: value), now: clock, if: { $0 == nil }) {
                    check(!wasLive, "step \(step): conditional set over a live value")
                    model.entries[key] = Entry(value: value)
                }
            default:
                let threshold = Int.random(in: 0..<keyspace, using: &random) / 10
                cache.updateAll(now: clock) { key, _ in key < threshold ? .remove : .keep }
            }
            check(cache.count == model.entries.count, "step \(step): count \(cache.count), model \(model.entries.count)")
            check(cache.count <= maxEntries, "step \(step): count \(cache.count) over the bound")
            check(cache.totalCost <= maxEntries * 3, "step \(step): cost \(cache.totalCost) over the bound")
            if step % 97 == 0 {
                for probe in 0..<keyspace {
                    let value = cache.peek(probe, now: clock)
                    let expected = model.live(probe, at: clock)
                    check(value == expected, "step \(step): peek \(probe) = \(String(describing: value)), model \(String(describing: expected))")
                }
            }
        }
        #expect(failures == 0)
    }
}
