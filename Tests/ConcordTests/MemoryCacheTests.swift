import Concord
import Synchronization
import Testing

@Suite("MemoryCache: API, removal causes, statistics")
struct MemoryCacheTests {
    let now = CacheInstant.zero

    @Test func getSetRemove() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)

        #expect(cache.get("a", now: now) == nil)
        #expect(cache.set("a", MemoryCacheItem(value: 1), now: now))
        #expect(cache.get("a", now: now) == 1)
        #expect(cache.peek("a", now: now) == 1)
        #expect(cache.count == 1)

        #expect(cache.remove("a") == 1)
        #expect(cache.get("a", now: now) == nil)
        #expect(cache.remove("a") == nil)
        #expect(cache.count == 0)
        #expect(recorder.removals.map(\.key) == ["a"])
        #expect(recorder.causes() == [.explicit])
    }

    @Test func replacingReportsTheOldValue() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)
        cache.set("a", MemoryCacheItem(value: 1), now: now)
        cache.set("a", MemoryCacheItem(value: 2), now: now)

        #expect(cache.get("a", now: now) == 2)
        #expect(cache.count == 1)
        #expect(recorder.removals.map(\.value) == [1])
        #expect(recorder.causes() == [.replaced])
        #expect(cache.statistics.replacements == 1)
    }

    @Test func expiryIsReportedAsExpired() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)
        cache.set("a", MemoryCacheItem(value: 1, expiresAt: now + .seconds(10)), now: now)

        #expect(cache.get("a", now: now + .seconds(10)) == nil)
        #expect(recorder.causes() == [.expired])
        #expect(recorder.removals.first?.value == 1)
        #expect(cache.count == 0)
    }

    @Test func evictionIsReportedAsEvicted() {
        let recorder = MemoryCacheRemovalRecorder<Int, Int>()
        let cache = MemoryCache<Int, Int>(
            configuration: .init(maxEntries: 2, shardCount: 1), onRemoval: recorder.listener)
        for key in 0..<3 {
            cache.set(key, MemoryCacheItem(value: key), now: now)
        }

        #expect(cache.count == 2)
        #expect(recorder.causes() == [.evicted])
        // Nothing was read: the first key went on to the main space, and the next one, no more
        // popular, is not admitted in its place.
        #expect(recorder.removals.first?.key == 1)
        #expect(cache.statistics.evictions == 1)
    }

    /// The listener runs after the shard's lock is released, so it may use the cache, even the
    /// same shard (there is only one here).
    @Test(.timeLimit(.minutes(1)))
    func listenerMayCallBackIntoTheCache() {
        final class Reentry: Sendable {
            let cache = Mutex<MemoryCache<Int, Int>?>(nil)
            let observed = Mutex<[Int?]>([])
        }
        let reentry = Reentry()
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 4, shardCount: 1)) { key, _, cause in
            guard cause == .evicted, key < 1_000, let cache = reentry.cache.withLock({ $0 }) else { return }
            let seen = cache.get(key, now: .zero)
            _ = cache.count
            _ = cache.statistics
            // A write from the listener: it may itself evict, and so call the listener again.
            cache.set(1_000 + key, MemoryCacheItem(value: key), now: .zero)
            reentry.observed.withLock { $0.append(seen) }
        }
        reentry.cache.withLock { $0 = cache }
        for key in 0..<8 {
            cache.set(key, MemoryCacheItem(value: key), now: .zero)
        }
        cache.remove(3)
        cache.removeAll()
        reentry.cache.withLock { $0 = nil }

        let observed = reentry.observed.withLock { $0 }
        #expect(!observed.isEmpty)
        // By the time the listener runs, the evicted key is gone.
        #expect(observed.allSatisfy { $0 == nil })
    }

    @Test func statisticsCountEveryOutcome() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(
            configuration: .init(maxEntries: 3, maxCost: 10, shardCount: 1), onRemoval: recorder.listener)
        cache.set("a", MemoryCacheItem(value: 1), now: now)
        cache.set("b", MemoryCacheItem(value: 2, cost: 2), now: now)
        cache.set("t", MemoryCacheItem(value: 3, expiresAt: now + .seconds(1)), now: now)
        _ = cache.get("a", now: now)                                    // hit
        _ = cache.get("a", now: now)                                    // hit
        _ = cache.get("x", now: now)                                    // miss
        _ = cache.peek("b", now: now)                                   // not counted
        _ = cache.get("t", now: now + .seconds(2))                      // miss, expiration
        cache.set("a", MemoryCacheItem(value: 10), now: now)            // replacement
        cache.set("c", MemoryCacheItem(value: 4), now: now)
        cache.set("d", MemoryCacheItem(value: 5), now: now)             // eviction (4 > 3 entries)
        cache.set("big", MemoryCacheItem(value: 6, cost: 11), now: now) // rejection
        cache.remove("c")                                               // explicit
        _ = cache.update("d", now: now) { _ in .remove }                // explicit

        let statistics = cache.statistics
        #expect(statistics.hits == 2)
        #expect(statistics.misses == 2)
        #expect(statistics.expirations == 1)
        #expect(statistics.replacements == 1)
        #expect(statistics.evictions == 1)
        #expect(statistics.rejections == 1)
        #expect(statistics.explicitRemovals == 2)
        #expect(statistics.entryCount == cache.count)
        #expect(statistics.entryCount == 1)
        #expect(statistics.totalCost == cache.totalCost)
        #expect(statistics.hitRatio == 0.5)
        // The listener saw one removal per counted outcome.
        #expect(recorder.count(of: .expired) == statistics.expirations)
        #expect(recorder.count(of: .replaced) == statistics.replacements)
        #expect(recorder.count(of: .evicted) == statistics.evictions + statistics.rejections)
        #expect(recorder.count(of: .explicit) == statistics.explicitRemovals)
    }

    @Test func conditionalSetSeesTheLiveValue() {
        let cache = MemoryCache<String, Int>()
        var seen: [Int?] = []
        #expect(cache.set("a", MemoryCacheItem(value: 1), now: now, if: { seen.append($0); return $0 == nil }))
        #expect(!cache.set("a", MemoryCacheItem(value: 0), now: now, if: { seen.append($0); return ($0 ?? -1) < 0 }))
        #expect(cache.set("a", MemoryCacheItem(value: 2), now: now, if: { seen.append($0); return ($0 ?? -1) < 2 }))
        #expect(seen == [nil, 1, 1])
        #expect(cache.get("a", now: now) == 2)

        // An expired entry is not live: the condition sees nil.
        cache.set("b", MemoryCacheItem(value: 5, expiresAt: now + .seconds(1)), now: now)
        var seenExpired: Int?? = .none
        cache.set("b", MemoryCacheItem(value: 6), now: now + .seconds(1), if: { seenExpired = $0; return true })
        #expect(seenExpired == .some(nil))
    }

    @Test func updateChangesInPlaceOrRemoves() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)
        #expect(!cache.update("a", now: now) { _ in .keep })

        cache.set("a", MemoryCacheItem(value: 1), now: now)
        #expect(cache.update("a", now: now) { item in
            item.value += 41
            item.cost = 5
            return .keep
        })
        #expect(cache.get("a", now: now) == 42)
        #expect(cache.totalCost == 5)

        // Moving the deadline into the past expires the item at once.
        #expect(cache.update("a", now: now + .seconds(5)) { item in
            item.expiresAt = now + .seconds(5)
            return .keep
        })
        #expect(cache.count == 0)
        #expect(recorder.causes() == [.expired])

        cache.set("b", MemoryCacheItem(value: 2), now: now)
        #expect(cache.update("b", now: now) { _ in .remove })
        #expect(cache.get("b", now: now) == nil)
        #expect(recorder.causes() == [.expired, .explicit])
        #expect(cache.statistics.hits == 1)
    }

    /// `update` and `peek` do not count as uses of the entry, unlike `get`: only a used entry
    /// outweighs a newcomer at admission.
    @Test func updateDoesNotMarkTheEntryAsUsed() {
        func firstEvicted(touch: (MemoryCache<Int, Int>) -> Void) -> Int? {
            let recorder = MemoryCacheRemovalRecorder<Int, Int>()
            let cache = MemoryCache<Int, Int>(
                configuration: .init(maxEntries: 10, shardCount: 1), onRemoval: recorder.listener)
            for key in 0..<10 {
                cache.set(key, MemoryCacheItem(value: key), now: .zero)
            }
            // Key 9 is used enough to be admitted over a key used once, not over one used twice.
            _ = cache.get(9, now: .zero)
            _ = cache.get(9, now: .zero)
            touch(cache)
            cache.set(10, MemoryCacheItem(value: 10), now: .zero)
            return recorder.removals.first?.key
        }
        #expect(firstEvicted { cache in _ = cache.update(0, now: .zero) { $0.value = -1; return .keep } } == 0)
        #expect(firstEvicted { cache in _ = cache.get(0, now: .zero) } == 1)
        #expect(firstEvicted { cache in _ = cache.peek(0, now: .zero) } == 0)
    }

    @Test func updateAllMarksOrRemovesEveryLiveItem() {
        struct Entry: Sendable, Equatable {
            var version: Int
            var stale = false
            var tag: String
        }
        let recorder = MemoryCacheRemovalRecorder<Int, Entry>()
        let cache = MemoryCache<Int, Entry>(onRemoval: recorder.listener)
        for key in 0..<1_000 {
            let expiresAt: CacheInstant? = key < 10 ? now + .seconds(1) : nil
            cache.set(key, MemoryCacheItem(value: Entry(version: key, tag: key % 2 == 0 ? "even" : "odd"), expiresAt: expiresAt), now: now)
        }

        var visited = Set<Int>()
        cache.updateAll(now: now + .seconds(1)) { key, item in
            visited.insert(key)
            item.value.stale = true
            return .keep
        }
        #expect(visited == Set(10..<1_000))
        #expect(recorder.count(of: .expired) == 10)
        #expect((10..<1_000).allSatisfy { cache.peek($0, now: now)?.stale == true })

        cache.updateAll(now: now + .seconds(1)) { _, item in
            item.value.tag == "odd" ? .remove : .keep
        }
        #expect(cache.count == 495)
        #expect(recorder.count(of: .explicit) == 495)
        #expect((10..<1_000).allSatisfy { (cache.peek($0, now: now) != nil) == ($0 % 2 == 0) })
    }

    @Test func removeAllEmptiesEveryShard() {
        let recorder = MemoryCacheRemovalRecorder<Int, Int>()
        let cache = MemoryCache<Int, Int>(onRemoval: recorder.listener)
        for key in 0..<500 {
            cache.set(key, MemoryCacheItem(value: key, cost: 2), now: now)
        }
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.totalCost == 0)
        #expect(recorder.count(of: .explicit) == 500)
        #expect(cache.get(7, now: now) == nil)
        cache.set(7, MemoryCacheItem(value: 7), now: now)
        #expect(cache.get(7, now: now) == 7)
    }

    @Test func configurationIsClamped() {
        #expect(MemoryCache<Int, Int>(configuration: .init(maxEntries: 0, maxCost: -5, shardCount: 0)).configuration
            == MemoryCacheConfiguration(maxEntries: 1, maxCost: 1, shardCount: 1))
        #expect(MemoryCache<Int, Int>(configuration: .init(shardCount: 5)).configuration.shardCount == 8)
        let perShard = MemoryCacheConfiguration.minEntriesPerShard
        #expect(MemoryCache<Int, Int>(configuration: .init(maxEntries: 1_024 * perShard, shardCount: 1 << 20)).configuration.shardCount == 1_024)
        // A shard keeps room for its policy to work: small caches get fewer shards.
        #expect(MemoryCache<Int, Int>(configuration: .init(maxEntries: 5, shardCount: 16)).configuration.shardCount == 1)
        #expect(MemoryCache<Int, Int>(configuration: .init(maxEntries: 16 * perShard - 1, shardCount: 16)).configuration.shardCount == 8)
        #expect(MemoryCache<Int, Int>(configuration: .init(maxEntries: 16 * perShard, shardCount: 16)).configuration.shardCount == 16)
        #expect(MemoryCache<Int, Int>(configuration: .init(maxCost: 3, shardCount: 16)).configuration.shardCount == 2)
        #expect(MemoryCache<Int, Int>().configuration == MemoryCacheConfiguration())
        #expect(MemoryCache<Int, Int>().shardEntryCounts.count == 16)
    }

    @Test func instantArithmetic() {
        let start = CacheInstant(nanoseconds: 1_000)
        #expect((start + .milliseconds(1)).nanoseconds == 1_001_000)
        #expect((start - .nanoseconds(1_000)) == .zero)
        #expect((start + .seconds(2)) - start == .seconds(2))
        #expect(start.advanced(by: .seconds(1)).duration(to: start) == .seconds(-1))
        #expect(start < start + .nanoseconds(1))
        // Saturates instead of trapping.
        #expect((start + .seconds(Int64.max)) == .distantFuture)
        #expect((CacheInstant(nanoseconds: .min) - .seconds(1)).nanoseconds == .min)
    }
}
