@_spi(ConcordBackend) import Concord
import ConcordTesting
import Synchronization
import Testing

/// Topology: L1 + L2 on the in-memory fake.
@Suite("HybridCache, L1 + L2 (in-memory)")
struct HybridCacheL1L2Tests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    @Test func aSecondNodeReadsFromL2WithoutCallingTheFactory() async throws {
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await a.set("k", "v1")
        let calls = CallCounter()
        let read = try await b.getOrSetResult("k", as: String.self) { _ in calls.increment(); return "other" }
        #expect(read.value == "v1" && read.source == .distributed)
        #expect(calls.count == 0)
        #expect(b.statistics.distributed.hits == 1)
    }

    @Test func l1HitsKeepTheWritingNodesVersion() async throws {
        // L1 stores a version's node id interned, not as a string of its own: a hit must still
        // report the node that wrote the value, for this node's writes and for others'.
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "node-b-with-an-id-longer-than-fifteen-bytes", clock: clock, store: store)
        let fromA = try await a.set("k", "v1")
        #expect(try await b.getResult("k", as: String.self)?.source == .distributed)
        let hit = try await b.getResult("k", as: String.self)
        #expect(hit?.source == .memory && hit?.version == fromA && hit?.version.node == "a")
        let fromB = try await b.set("own", "v2")
        let ownHit = try await b.getResult("own", as: String.self)
        #expect(ownHit?.source == .memory && ownHit?.version == fromB && fromB.node == b.nodeID)
    }

    @Test func distributedDurationDiffersFromMemoryDuration() async throws {
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        var configured = CacheEntryOptions(duration: .seconds(10))
        configured.distributedDuration = .seconds(100)
        let options = configured
        try await a.set("k", "v1", options: options)
        clock.advance(by: .seconds(20))
        #expect(try await a.getResult("k", as: String.self, options: options)?.source == .distributed)
        #expect(try await b.getResult("k", as: String.self, options: options)?.value == "v1")
        clock.advance(by: .seconds(81))
        #expect(try await b.getResult("k", as: String.self, options: options) == nil)
    }

    @Test func skipDistributedWriteKeepsTheValueLocal() async throws {
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        var configured = CacheEntryOptions()
        configured.skipDistributedWrite = true
        let options = configured
        try await a.set("k", "v1", options: options)
        #expect(try await a.getResult("k", as: String.self)?.value == "v1")
        #expect(try await b.getResult("k", as: String.self) == nil)
    }

    @Test func skipDistributedReadGoesToTheFactory() async throws {
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await a.set("k", "v1")
        var configured = CacheEntryOptions()
        configured.skipDistributedRead = true
        let options = configured
        let read = try await b.getOrSetResult("k", as: String.self, options: options) { _ in "from-factory" }
        #expect(read.value == "from-factory" && read.source == .factory)
    }

    @Test func l2ErrorsNeverFailACallTheFactoryCanServe() async throws {
        let chaos = ChaosDistributedCache(wrapping: InMemoryDistributedCache(store: store), settings: ChaosSettings(failureProbability: 1))
        let cache = try makeCache(clock: clock, distributed: chaos)
        let value = try await cache.getOrSetResult("k", as: String.self) { _ in "v" }
        #expect(value.value == "v" && value.source == .factory)
        #expect(cache.statistics.distributed.errors >= 2)
        // Without run() nothing would flush a queued fill, so it is given up rather than queued.
        #expect(cache.pendingWriteCount == 0)
    }

    @Test func distributedHardTimeoutAbandonsASlowL2() async throws {
        let slow = ChaosDistributedCache(wrapping: InMemoryDistributedCache(store: store), settings: ChaosSettings(delay: .seconds(60)), clock: clock)
        let cache = try makeCache(clock: clock, distributed: slow)
        var configured = CacheEntryOptions()
        configured.distributedHardTimeout = .milliseconds(200)
        configured.skipDistributedWrite = true
        let options = configured
        try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
            group.addTask { try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v" } }
            // Two sleepers: the chaos delay and the timeout.
            #expect(await clock.waitForSleepers(atLeast: 2))
            clock.advance(by: .milliseconds(200))
            let value = try await group.next()
            #expect(value?.source == .factory)
        }
        #expect(cache.statistics.distributed.errors == 1)
    }

    @Test func distributedSoftTimeoutServesStaleWhenL2IsSlow() async throws {
        let inner = InMemoryDistributedCache(store: store)
        let slow = ChaosDistributedCache(wrapping: inner, clock: clock)
        let cache = try makeCache(clock: clock, distributed: slow)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.distributedSoftTimeout = .milliseconds(100)
        configured.factoryHardTimeout = .milliseconds(100)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        slow.update { $0.delay = .seconds(60) }
        let calls = CallCounter()
        try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
            group.addTask {
                try await cache.getOrSetResult("k", as: String.self, options: options) { _ in
                    calls.increment()
                    await Gate().wait()
                    return "v2"
                }
            }
            // The slow L2 read and its soft timeout.
            #expect(await clock.waitForSleepers(atLeast: 2))
            clock.advance(by: .milliseconds(100))
            // L2 abandoned: the factory runs under its hard timeout.
            #expect(await eventually(pollingEvery: .zero) { calls.count == 1 })
            #expect(await clock.waitForSleepers(atLeast: 1))
            clock.advance(by: .milliseconds(100))
            let value = try await group.next()
            #expect(value?.value == "v1" && value?.isStale == true)
        }
    }

    @Test func backgroundDistributedWritesReturnBeforeL2() async throws {
        let slow = ChaosDistributedCache(wrapping: InMemoryDistributedCache(store: store), settings: ChaosSettings(delay: .seconds(5)), clock: clock)
        let cache = try makeCache(clock: clock, distributed: slow)
        var configured = CacheEntryOptions()
        configured.allowBackgroundDistributedOperations = true
        let options = configured
        try await withRunning([cache], clock: clock) {
            try await cache.set("k", "v", options: options)
            #expect(try await cache.getResult("k", as: String.self, options: { var o = options; o.skipDistributedRead = true; return o }())?.value == "v")
            #expect(store.storedVersion(of: "k") == nil)
            #expect(await clock.waitForSleepers(atLeast: 2))
            clock.advance(by: .seconds(5))
            #expect(await eventually(pollingEvery: .zero) { store.storedVersion(of: "k") != nil })
        }
    }

    @Test func failedWritesAreRecoveredAfterTheOutage() async throws {
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await withRunning([a], clock: clock) {
            store.setAvailable(false)
            try await a.set("k", "during-outage")
            #expect(a.pendingWriteCount == 1)
            store.setAvailable(true)
            // The flush loop retries on its backoff timer.
            for _ in 0..<20 where a.pendingWriteCount > 0 {
                clock.advance(by: .seconds(2))
                _ = await eventually(timeout: .milliseconds(200), pollingEvery: .zero) { a.pendingWriteCount == 0 }
            }
            #expect(a.pendingWriteCount == 0)
            #expect(try await b.getResult("k", as: String.self)?.value == "during-outage")
            #expect(a.statistics.autoRecovery.flushed == 1)
        }
    }

    /// A node's own tag removal or clear that L2 does not have yet (queued in an outage) hides
    /// the older copies L2 still holds: serving them would undo what the node acknowledged.
    @Test func l2CopiesOlderThanTheNodesOwnQueuedTagRemovalOrClearAreMisses() async throws {
        // a's writes fail (and stay queued: a runs, but its flush keeps failing) while its reads
        // see the store as it is.
        let writes = WriteFailingDistributedCache(InMemoryDistributedCache(store: store))
        let a = try makeCache(node: "a", clock: clock, distributed: writes)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await b.set("tagged", "v1", tags: ["group"])
        try await b.set("untagged", "v1")
        try await withRunning([a], clock: clock) {
            clock.advance(by: .seconds(1))
            writes.failing = true
            try await a.removeByTag("group")
            #expect(a.pendingWriteCount == 1)
            #expect(try await a.getResult("tagged", as: String.self) == nil)
            let calls = CallCounter()
            let loaded = try await a.getOrSetResult("tagged", as: String.self) { _ in calls.increment(); return "from-origin" }
            #expect(loaded.value == "from-origin" && calls.count == 1)
            // The tag's removal says nothing about other entries.
            #expect(try await a.getResult("untagged", as: String.self)?.value == "v1")

            clock.advance(by: .seconds(1))
            try await a.clear()
            #expect(try await a.getResult("untagged", as: String.self) == nil)
            // Another node, with nothing queued, still reads L2 as it is.
            #expect(try await b.getResult("untagged", as: String.self)?.value == "v1")
        }
    }

    /// An L2 read that returns an old copy after this node's own remove (or clear) has landed in
    /// L2 must not bring the copy back: the read is a miss and nothing is installed in L1.
    @Test(arguments: ["remove", "clear", "removeTag"])
    func anL2ReadOverlappingTheNodesOwnMutationDoesNotUndoIt(mutation: String) async throws {
        let held = HeldReadDistributedCache(InMemoryDistributedCache(store: store))
        let a = try makeCache(node: "a", clock: clock, distributed: held)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await b.set("k", "old", tags: ["group"])
        clock.advance(by: .seconds(1))
        held.holdNextRead()
        async let read = a.getResult("k", as: String.self)
        await held.waitUntilAReadIsHeld()
        switch mutation {
        case "remove": try await a.remove("k")
        case "clear": try await a.clear(allowFailSafe: false)
        default: try await a.removeByTag("group")
        }
        #expect(a.pendingWriteCount == 0, "the mutation must have landed in L2 before the held read returns")
        held.release()
        #expect(try await read == nil)
        #expect(try await a.getResult("k", as: String.self) == nil)
    }

    /// A writer whose clock ran 20 s ahead stored a value; another node, which never heard of
    /// it, then writes, removes or invalidates the key. Redis ran that mutation last, so it
    /// must win: it is applied again after the stored version instead of being dropped.
    @Test(arguments: ["set", "remove", "expire"])
    func aMutationMadeAfterAWriteFromAClockThatRanAheadWins(mutation: String) async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let skewed = try makeCache(node: "skewed", clock: ahead, store: store)
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        #expect(try await a.getResult("k", as: String.self) == nil)
        let stored = try await skewed.set("k", "from the future")
        let version: CacheVersion
        switch mutation {
        case "set": version = try await a.set("k", "now")
        case "remove": version = try await a.remove("k")
        default: version = try await a.expire("k")
        }
        #expect(version > stored)
        #expect(store.storedVersion(of: "k") == (mutation == "expire" ? stored : version))
        let expected: String? = mutation == "set" ? "now" : nil
        #expect(try await a.getResult("k", as: String.self)?.value == expected)
        #expect(try await b.getResult("k", as: String.self)?.value == expected)
        #expect(a.statistics.distributed.rebasedWrites == 1)
    }

    /// A write queued while L2 was unreachable lands after another node's clear or removal of
    /// its tag, which is newer: it is superseded, and its writer stops serving it from L1.
    /// (Stored and only hidden when read, it stayed fresh in its writer's L1 until it expired
    /// there, when the writer had not heard the clear: after an epoch change, say.)
    @Test(arguments: ["clear", "removeTag"])
    func aQueuedWriteFlushedAfterANewerClearIsNotServedByItsWriter(hiding: String) async throws {
        let writes = WriteFailingDistributedCache(InMemoryDistributedCache(store: store))
        let a = try makeCache(node: "a", clock: clock, distributed: writes)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await withRunning([a], clock: clock) {
            writes.failing = true
            let queued = try await a.set("k", "queued", tags: ["group"])
            #expect(a.pendingWriteCount == 1)
            clock.advance(by: .milliseconds(10))
            let hider = hiding == "clear" ? try await b.clear(allowFailSafe: false) : try await b.removeByTag("group")
            #expect(hider > queued)
            writes.failing = false
            for _ in 0..<20 where a.pendingWriteCount > 0 {
                clock.advance(by: .seconds(1))
                _ = await eventually(timeout: .milliseconds(200), pollingEvery: .zero) { a.pendingWriteCount == 0 }
            }
            #expect(a.pendingWriteCount == 0)
        }
        #expect(try await a.getResult("k", as: String.self) == nil)
        #expect(try await b.getResult("k", as: String.self) == nil)
    }

    @Test func aFullPendingQueueRefusesNewWritesAndKeepsTheQueuedOnes() async throws {
        let cache = try makeCache(clock: clock, store: store) { $0.pendingWriteCapacity = 3 }
        try await withRunning([cache], clock: clock) {
            store.setAvailable(false)
            for index in 0..<3 { try await cache.set("k\(index)", index) }
            for index in 3..<5 {
                await #expect { try await cache.set("k\(index)", index) } throws: { ($0 as? CacheError)?.code == .writeQueueFull }
                // Refused whole: not even L1 has it.
                #expect(try await cache.getResult("k\(index)", as: Int.self) == nil)
            }
            await #expect { try await cache.remove("k0") } throws: { ($0 as? CacheError)?.code == .writeQueueFull }
            #expect(try await cache.getResult("k0", as: Int.self)?.value == 0)
            // An invalidation is refused too, and changes nothing: an acknowledged one that never
            // reached L2 would be one the other nodes never see.
            await #expect { try await cache.expire("k1") } throws: { ($0 as? CacheError)?.code == .writeQueueFull }
            #expect(try await cache.getResult("k1", as: Int.self)?.isStale == false)
            let stats = cache.statistics.autoRecovery
            #expect(stats.depth == 3)
            #expect(stats.refused == 4)
            #expect(stats.overflowed == 0)
        }
    }

    @Test func writesAndInvalidationsPushOutQueuedOriginFillsButNeverTheOtherWay() async throws {
        let cache = try makeCache(clock: clock, store: store) { $0.pendingWriteCapacity = 2 }
        try await withRunning([cache], clock: clock) {
            store.setAvailable(false)
            _ = try await cache.getOrSetResult("f1", as: Int.self) { _ in 1 }
            _ = try await cache.getOrSetResult("f2", as: Int.self) { _ in 2 }
            #expect(cache.statistics.autoRecovery.depth == 2)
            try await cache.set("w1", 1)
            try await cache.expire("m1")
            var stats = cache.statistics.autoRecovery
            #expect(stats.depth == 2)
            #expect(stats.overflowed == 2)
            // A fill finds no room and gives way; it is still served from L1.
            _ = try await cache.getOrSetResult("f3", as: Int.self) { _ in 3 }
            stats = cache.statistics.autoRecovery
            #expect(stats.depth == 2)
            #expect(stats.overflowed == 3)
            #expect(stats.refused == 0)
            #expect(try await cache.getResult("f3", as: Int.self)?.value == 3)
        }
    }

    @Test func thePendingQueueIsBoundedInBytes() async throws {
        let cache = try makeCache(clock: clock, store: store) { $0.pendingWriteMaxBytes = 10_000 }
        try await withRunning([cache], clock: clock) {
            store.setAvailable(false)
            let value = [UInt8](repeating: 7, count: 4_000)
            try await cache.set("a", value)
            try await cache.set("b", value)
            await #expect { try await cache.set("c", value) } throws: { ($0 as? CacheError)?.code == .writeQueueFull }
            // Small writes still fit in what is left.
            try await cache.set("d", [UInt8](repeating: 7, count: 100))
            let stats = cache.statistics.autoRecovery
            #expect(stats.depth == 3)
            #expect(stats.bytes <= 10_000)
            #expect(stats.refused == 1)
        }
    }

    @Test func pendingQueueKeepsOnlyTheNewestVersionPerKey() async throws {
        let cache = try makeCache(clock: clock, store: store)
        try await withRunning([cache], clock: clock) {
            store.setAvailable(false)
            for index in 0..<5 { try await cache.set("same", index) }
            #expect(cache.pendingWriteCount == 1)
            #expect(cache.statistics.autoRecovery.overflowed == 0)
        }
    }

    @Test func corruptAndFutureFormatEnvelopesReadAsMisses() async throws {
        let cache = try makeCache(clock: clock, store: store)
        let version = CacheVersion(milliseconds: 1, counter: 0, node: "x")
        var future = DistributedEntry(version: version, logicalExpiryMilliseconds: .max, payload: Array("v".utf8)).encoded()
        future[4] = 99
        store.storeRaw(key: "future", version: version, bytes: future)
        store.storeRaw(key: "garbage", version: version, bytes: [1, 2, 3])
        let truncated = Array(DistributedEntry(version: version, logicalExpiryMilliseconds: .max, payload: Array("value".utf8)).encoded().dropLast(2))
        store.storeRaw(key: "truncated", version: version, bytes: truncated)
        for key in ["future", "garbage", "truncated"] {
            #expect(try await cache.getResult(key, as: String.self) == nil)
            let loaded = try await cache.getOrSetResult(key, as: String.self) { _ in "fresh" }
            #expect(loaded.value == "fresh")
        }
        #expect(cache.statistics.distributed.corruptEntries >= 3)
    }

    @Test func serializerFailureIsTypedAndLeavesTheCacheUnchanged() async throws {
        struct Unencodable: Codable, Sendable {
            func encode(to encoder: any Encoder) throws { throw TestFailure() }
            init() {}
            init(from decoder: any Decoder) throws {}
        }
        let cache = try makeCache(clock: clock, store: store)
        await #expect { try await cache.set("k", Unencodable()) } throws: { ($0 as? CacheError)?.code == .serializationFailed }
        #expect(cache.statistics.memory.entries == 0)
        #expect(store.storedVersion(of: "k") == nil)
    }

    @Test func codableValuesRoundTripThroughL2() async throws {
        struct Product: Codable, Sendable, Equatable {
            var id: Int
            var name: String
        }
        let a = try makeCache(node: "a", clock: clock, store: store)
        let b = try makeCache(node: "b", clock: clock, store: store)
        try await a.set("p", Product(id: 1, name: "lamp"), tags: ["products"])
        #expect(try await b.getResult("p", as: Product.self)?.value == Product(id: 1, name: "lamp"))
        // Another node reads the same L2 bytes raw: the JSON document.
        let c = try makeCache(node: "c", clock: clock, store: store)
        #expect(try await c.getResult("p", as: [UInt8].self)?.value == Array(#"{"id":1,"name":"lamp"}"#.utf8))
    }
}
