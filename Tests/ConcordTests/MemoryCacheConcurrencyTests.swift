import Concord
import Dispatch
import Synchronization
import Testing

@Suite("MemoryCache: concurrent use")
struct MemoryCacheConcurrencyTests {
    /// Conditional sets racing with increasing versions. The condition runs under the shard's
    /// lock, so it logs every accepted transition in the order they happened: if the check and
    /// the store were not one atomic step, two writers would see the same current version and
    /// the chain would break (and an older version could end up last).
    @Test(arguments: [1, 16])
    func conditionalSetIsAtomic(shardCount: Int) async {
        struct Transition: Sendable {
            var seen: Int
            var stored: Int
        }
        let cache = MemoryCache<String, Int>(configuration: .init(shardCount: shardCount))
        final class Log: Sendable {
            let transitions = Mutex<[String: [Transition]]>([:])
        }
        let log = Log()
        let keys = ["a", "b", "c"]
        let tasks = 8
        let versionsPerTask = 2_000
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for round in 0..<versionsPerTask {
                        let version = round * tasks + task
                        for key in keys {
                            cache.set(key, MemoryCacheItem(value: version), now: .zero, if: { current in
                                let seen = current ?? -1
                                // Some work between the check and the store widens the window
                                // a non-atomic implementation would lose updates in.
                                var spin = seen
                                for step in 0..<200 { spin = spin &* 31 &+ step }
                                guard seen < version, spin != .min else { return false }
                                log.transitions.withLock { $0[key, default: []].append(Transition(seen: seen, stored: version)) }
                                return true
                            })
                        }
                        if round % 64 == 0 { await Task.yield() }
                    }
                }
            }
        }
        let newest = tasks * versionsPerTask - 1
        let transitions = log.transitions.withLock { $0 }
        for key in keys {
            #expect(cache.get(key, now: .zero) == newest)
            let chain = transitions[key] ?? []
            #expect(chain.first?.seen == -1)
            #expect(chain.last?.stored == newest)
            let broken = zip(chain, chain.dropFirst()).filter { previous, next in
                next.seen != previous.stored || next.stored <= previous.stored
            }.count
            #expect(broken == 0, "lost updates on \(key)")
        }
    }

    /// The deterministic version of the race above: a newer writer arrives while an older
    /// one's condition is still deciding. It must wait for the shard's lock, so it cannot slip
    /// in between the older writer's check and store and then be overwritten.
    @Test(.timeLimit(.minutes(1)))
    func conditionalSetHoldsTheShardWhileDeciding() {
        let cache = MemoryCache<String, Int>(configuration: .init(shardCount: 1))
        cache.set("k", MemoryCacheItem(value: 1), now: .zero)
        let newerWriterDone = DispatchSemaphore(value: 0)
        var overtaken = false
        let stored = cache.set("k", MemoryCacheItem(value: 2), now: .zero, if: { current in
            DispatchQueue.global().async {
                cache.set("k", MemoryCacheItem(value: 3), now: .zero, if: { ($0 ?? 0) < 3 })
                newerWriterDone.signal()
            }
            overtaken = newerWriterDone.wait(timeout: .now() + .milliseconds(200)) == .success
            return (current ?? 0) < 2
        })
        if !overtaken { newerWriterDone.wait() }
        #expect(!overtaken)
        #expect(stored)
        #expect(cache.get("k", now: .zero) == 3)
    }

    /// Many tasks doing every kind of operation on few keys; afterwards the bounds hold and the
    /// shards agree with the totals.
    @Test func mixedOperationsKeepTheInvariants() async {
        final class Counters: Sendable {
            let removals = Atomic<Int>(0)
            let gets = Atomic<Int>(0)
        }
        let counters = Counters()
        let cache = MemoryCache<Int, Int>(configuration: .init(maxEntries: 32, maxCost: 100, shardCount: 4)) { _, _, _ in
            counters.removals.add(1, ordering: .relaxed)
        }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var random = MemoryCacheTestRandom(seed: UInt64(task))
                    var clock = CacheInstant.zero
                    for round in 0..<5_000 {
                        let key = Int.random(in: 0..<64, using: &random)
                        clock += .microseconds(Int64.random(in: 0...50, using: &random))
                        switch Int.random(in: 0..<10, using: &random) {
                        case 0..<4:
                            counters.gets.add(1, ordering: .relaxed)
                            _ = cache.get(key, now: clock)
                        case 4..<7:
                            let expiresAt: CacheInstant? = round % 3 == 0 ? clock + .milliseconds(5) : nil
                            cache.set(key, MemoryCacheItem(value: round, cost: Int.random(in: 0...10, using: &random), expiresAt: expiresAt), now: clock)
                        case 7:
                            cache.set(key, MemoryCacheItem(value: round), now: clock, if: { ($0 ?? -1) < round })
                        case 8:
                            cache.update(key, now: clock) { item in
                                item.cost = Int.random(in: 0...10)
                                return round % 5 == 0 ? .remove : .keep
                            }
                        default:
                            if round % 500 == 0 {
                                cache.updateAll(now: clock) { key, _ in key % 7 == 0 ? .remove : .keep }
                            } else {
                                cache.remove(key)
                            }
                        }
                        if round % 128 == 0 { await Task.yield() }
                    }
                }
            }
        }
        let statistics = cache.statistics
        #expect(cache.count <= 32)
        #expect(cache.totalCost <= 100)
        #expect(cache.shardEntryCounts.reduce(0, +) == cache.count)
        #expect(statistics.entryCount == cache.count)
        #expect(statistics.totalCost == cache.totalCost)
        #expect(statistics.hits + statistics.misses == counters.gets.load(ordering: .relaxed))
        let reported = statistics.evictions + statistics.rejections + statistics.expirations
            + statistics.explicitRemovals + statistics.replacements
        #expect(reported == counters.removals.load(ordering: .relaxed))
    }
}
