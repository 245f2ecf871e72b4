import Concord
import Testing

/// Time is injected: every instant is made up, nothing sleeps.
@Suite("MemoryCache: time-to-live and time-to-idle")
struct MemoryCacheExpiryTests {
    let start = CacheInstant(nanoseconds: 1_000_000)

    @Test func itemExpiresExactlyAtItsDeadline() {
        let cache = MemoryCache<String, Int>()
        let deadline = start + .milliseconds(250)
        cache.set("a", MemoryCacheItem(value: 1, expiresAt: deadline), now: start)

        #expect(cache.peek("a", now: deadline - .nanoseconds(1)) == 1)
        #expect(cache.get("a", now: deadline - .nanoseconds(1)) == 1)
        #expect(cache.peek("a", now: deadline) == nil)
        #expect(cache.get("a", now: deadline) == nil)
        #expect(cache.count == 0)
        #expect(cache.statistics.expirations == 1)
        #expect(cache.statistics.misses == 1)
    }

    @Test func idleTimeoutSlidesOnEachHit() {
        let cache = MemoryCache<String, Int>()
        cache.set("a", MemoryCacheItem(value: 1, idleTimeout: .seconds(10)), now: start)

        #expect(cache.get("a", now: start + .seconds(9)) == 1)   // idle deadline now start+19s
        #expect(cache.get("a", now: start + .seconds(18)) == 1)  // now start+28s
        #expect(cache.get("a", now: start + .seconds(27)) == 1)  // now start+37s
        #expect(cache.peek("a", now: start + .seconds(37) - .nanoseconds(1)) == 1)
        #expect(cache.get("a", now: start + .seconds(37)) == nil)
    }

    @Test func idleTimeoutExpiresWithoutHits() {
        let cache = MemoryCache<String, Int>()
        cache.set("a", MemoryCacheItem(value: 1, idleTimeout: .seconds(10)), now: start)
        // `peek` does not count as use, so it does not slide the deadline.
        #expect(cache.peek("a", now: start + .seconds(9)) == 1)
        #expect(cache.get("a", now: start + .seconds(10)) == nil)
    }

    @Test func idleDeadlineNeverPassesTheHardDeadline() {
        let cache = MemoryCache<String, Int>()
        cache.set("a", MemoryCacheItem(value: 1, expiresAt: start + .seconds(25), idleTimeout: .seconds(10)), now: start)

        #expect(cache.get("a", now: start + .seconds(9)) == 1)
        #expect(cache.get("a", now: start + .seconds(18)) == 1)  // idle deadline would be 28s
        #expect(cache.get("a", now: start + .seconds(25) - .nanoseconds(1)) == 1)
        #expect(cache.get("a", now: start + .seconds(25)) == nil)
    }

    @Test func idleDeadlineDoesNotMoveBackForAnOlderInstant() {
        let cache = MemoryCache<String, Int>()
        cache.set("a", MemoryCacheItem(value: 1, idleTimeout: .seconds(10)), now: start)
        #expect(cache.get("a", now: start + .seconds(8)) == 1)
        // A caller that read its clock before the previous one took the lock.
        #expect(cache.get("a", now: start + .seconds(1)) == 1)
        #expect(cache.get("a", now: start + .seconds(17)) == 1)
    }

    @Test func updateCanChangeTheDeadlines() {
        let cache = MemoryCache<String, Int>()
        cache.set("a", MemoryCacheItem(value: 1, expiresAt: start + .seconds(5)), now: start)
        cache.update("a", now: start + .seconds(1)) { item in
            item.expiresAt = start + .seconds(60)
            item.idleTimeout = .seconds(10)
            return .keep
        }
        // The idle timeout runs from the last access, the set at `start`.
        #expect(cache.peek("a", now: start + .seconds(9)) == 1)
        #expect(cache.peek("a", now: start + .seconds(10)) == nil)

        cache.set("b", MemoryCacheItem(value: 2, expiresAt: start + .seconds(5)), now: start)
        cache.update("b", now: start) { item in
            item.expiresAt = nil
            return .keep
        }
        #expect(cache.get("b", now: start + .seconds(3_600)) == 2)
    }

    @Test func alreadyExpiredItemIsNotStored() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)
        cache.set("a", MemoryCacheItem(value: 1), now: start)
        #expect(!cache.set("a", MemoryCacheItem(value: 2, expiresAt: start), now: start))
        #expect(!cache.set("b", MemoryCacheItem(value: 3, idleTimeout: .zero), now: start))
        #expect(cache.count == 0)
        #expect(recorder.removals.map(\.value) == [1, 2, 3])
        #expect(recorder.causes() == [.replaced, .expired, .expired])
    }

    /// Entries that expire and are never read again still leave: each insert sweeps a few.
    @Test func insertsSweepExpiredEntries() {
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 10_000, shardCount: 1))
        for key in 0..<100 {
            cache.set(key, MemoryCacheItem(value: key, expiresAt: start + .seconds(1)), now: start)
        }
        for key in 100..<400 {
            cache.set(key, MemoryCacheItem(value: key), now: start + .seconds(2))
        }
        #expect(cache.statistics.expirations == 100)
        #expect(cache.count == 300)
    }

    /// When room is needed, expired entries leave before live ones (by sweep or by eviction).
    @Test func expiredEntriesLeaveBeforeLiveOnes() {
        let recorder = MemoryCacheRemovalRecorder<Int, Int>()
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 4, shardCount: 1), onRemoval: recorder.listener)
        for key in 0..<4 {
            let expiresAt: CacheInstant? = key == 0 ? start + .seconds(1) : nil
            cache.set(key, MemoryCacheItem(value: key, expiresAt: expiresAt), now: start)
        }
        cache.set(4, MemoryCacheItem(value: 4), now: start + .seconds(1))
        #expect(recorder.causes() == [.expired])
        #expect((1...4).allSatisfy { cache.peek($0, now: start + .seconds(1)) == $0 })
    }
}
