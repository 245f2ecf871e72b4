@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

/// Every number from the wire is untrusted: versions, sequence numbers and expiry fields at the
/// ends of the `Int64` range are ignored or clamped, never trapped on.
@Suite("Untrusted wire numbers")
struct WireNumberTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    @Test func theClockRefusesAVersionFurtherAheadThanMaxDrift() {
        let versions = HybridLogicalClock(node: "n1", clock: clock, maxDrift: .seconds(60))
        let wall = clock.wallClockMilliseconds()
        #expect(!versions.observe(CacheVersion(milliseconds: .max, counter: .max, node: "evil")))
        #expect(!versions.observe(CacheVersion(milliseconds: wall + 60_001, counter: 0, node: "evil")))
        #expect(versions.observe(CacheVersion(milliseconds: wall + 60_000, counter: 7, node: "skewed")))
        #expect(versions.current().milliseconds == wall + 60_000)
        #expect(versions.next() > CacheVersion(milliseconds: wall + 60_000, counter: 7, node: "skewed"))
    }

    @Test func theClockSaturatesAtTheEndOfTheRangeInsteadOfTrapping() {
        // A wall clock at the very end of the range: the observed stamp is within drift, and
        // the next versions must not overflow `milliseconds += 1`.
        let endOfTime = ManualClock(wallMilliseconds: .max)
        let versions = HybridLogicalClock(node: "n1", clock: endOfTime)
        #expect(versions.observe(CacheVersion(milliseconds: .max, counter: .max, node: "x")))
        let first = versions.next()
        let second = versions.next()
        #expect(first.milliseconds == .max && second.milliseconds == .max)
        #expect(second.counter == .max)
    }

    @Test func nodeWithWallClockAtTheStartOfTheRangeStillMakesVersions() {
        let early = ManualClock(wallMilliseconds: .min)
        let versions = HybridLogicalClock(node: "n1", clock: early)
        #expect(versions.observe(CacheVersion(milliseconds: .min, counter: 3, node: "x")))
        #expect(!versions.observe(CacheVersion(milliseconds: .max, counter: 0, node: "x")))
        _ = versions.next()
    }

    func makeNode(_ id: String) throws -> (HybridCache, InMemoryBackplane) {
        let backplane = InMemoryBackplane(store: store)
        let cache = try makeCache(node: id, clock: clock, store: store, backplane: backplane) {
            $0.maxClockDrift = .seconds(60)
            $0.maxKeyBytes = 64
        }
        return (cache, backplane)
    }

    /// A well-formed message with the next sequence number, as anyone who can PUBLISH could send.
    func nextMessage(kind: MutationKind = .remove, key: String, version: CacheVersion) -> [UInt8] {
        let head = store.snapshot
        return BackplaneMessage(epoch: head.epoch, sequence: head.sequence + 1, kind: kind, key: key, version: version, writeID: 42).encoded()
    }

    @Test(arguments: [Int64.max, Int64.min, Int64.max / 2, -1])
    func aMessageWithAnExtremeVersionNeverEndsTheNode(milliseconds: Int64) async throws {
        let (a, _) = try makeNode("a")
        let (b, _) = try makeNode("b")
        try await withRunning([a, b], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually(pollingEvery: .zero) { a.isBackplaneConnected && b.isBackplaneConnected })
            try await a.set("k", "v1")
            #expect(try await b.getResult("k", as: String.self)?.value == "v1")
            let before = b.statistics.backplane
            store.publishRaw(nextMessage(key: "k", version: CacheVersion(milliseconds: milliseconds, counter: .max, node: "evil")))
            #expect(await eventually(pollingEvery: .zero) { b.statistics.backplane.received > before.received })
            #expect(try await b.getResult("k", as: String.self)?.value == "v1")
            if milliseconds > clock.wallClockMilliseconds() + 60_000 {
                #expect(b.statistics.backplane.futureVersions == 1)
                #expect(b.statistics.backplane.ignoredMessages == before.ignoredMessages + 1)
            }
            // Whatever was received, the clock never jumped to a version beyond the drift.
            let next = try await b.set("after", "x")
            #expect(next.milliseconds <= clock.wallClockMilliseconds() + 60_000)
        }
    }

    @Test func aMessageWithAKeyLongerThanMaxKeyBytesIsIgnored() async throws {
        let (a, _) = try makeNode("a")
        let (b, _) = try makeNode("b")
        try await withRunning([a, b], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually(pollingEvery: .zero) { a.isBackplaneConnected && b.isBackplaneConnected })
            try await a.set("k", "v1")
            #expect(try await b.getResult("k", as: String.self)?.value == "v1")
            let long = String(repeating: "x", count: 65)
            store.publishRaw(nextMessage(key: long, version: CacheVersion(milliseconds: clock.wallClockMilliseconds(), counter: 0, node: "evil")))
            #expect(await eventually(pollingEvery: .zero) { b.statistics.backplane.ignoredMessages == 1 })
            #expect(b.statistics.backplane.lastSeq == store.snapshot.sequence)
        }
    }

    @Test(arguments: [Int64.min, Int64.max, 0])
    func anL2EntryWithExtremeVersionAndExpiryIsReadWithoutTrapping(expiry: Int64) async throws {
        let cache = try makeCache(clock: clock, store: store)
        for (key, milliseconds) in [("old", Int64.min), ("zero", 0), ("now", clock.wallClockMilliseconds())] {
            let version = CacheVersion(milliseconds: milliseconds, counter: .max, node: "w")
            let entry = DistributedEntry(version: version, logicalExpiryMilliseconds: expiry, payload: Array("v".utf8))
            _ = try await InMemoryDistributedCache(store: store).apply(
                CacheMutation(kind: .set, key: key, version: version, entry: entry, timeToLive: .seconds(60)), publish: false
            )
            let read = try await cache.getResult(key, as: String.self)
            // A past (or minimum) expiry is a stale entry; a future one is fresh.
            if expiry == .max { #expect(read?.value == "v") }
            _ = try await cache.getOrSetResult(key, as: String.self) { _ in "fresh" }
        }
    }

    @Test func anL2EntryVersionedBeyondTheDriftIsAMissAndNeverMovesTheClock() async throws {
        let cache = try makeCache(clock: clock, store: store)
        let forged = CacheVersion(milliseconds: .max, counter: .max, node: "evil")
        let entry = DistributedEntry(version: forged, logicalExpiryMilliseconds: .max, payload: Array("\"forged\"".utf8))
        _ = try await InMemoryDistributedCache(store: store).apply(
            CacheMutation(kind: .set, key: "k", version: forged, entry: entry, timeToLive: .seconds(60)), publish: false
        )
        #expect(try await cache.getResult("k", as: String.self) == nil)
        #expect(cache.statistics.distributed.futureVersions == 1)
        let version = try await cache.set("other", "x")
        #expect(version.milliseconds == clock.wallClockMilliseconds())
    }
}
