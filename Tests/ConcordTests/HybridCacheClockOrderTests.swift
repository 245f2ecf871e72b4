@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

/// Topology: L1 + L2 on the in-memory fake, with node clocks that disagree: versions must follow
/// Redis's order of writes, not any one wall clock.
@Suite("HybridCache, L1 + L2 (in-memory): clocks that disagree")
struct HybridCacheClockOrderTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    /// A node whose wall clock ran 20 s ahead wrote `k`, then restarted with its clock set right
    /// (a new cache with the same node id). Its next write of `k` was made later, so it must win
    /// over what its earlier run stored: that version is in its own name, but it is no later
    /// mutation of this run, and a write left superseded by it would be lost.
    @Test func aNodeRestartedWithItsClockSetBackOverwritesWhatItsEarlierRunStored() async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let earlierRun = try makeCache(node: "n", clock: ahead, store: store)
        let stored = try await earlierRun.set("k", "before the restart")
        let restarted = try makeCache(node: "n", clock: clock, store: store)
        let version = try await restarted.set("k", "after the restart")
        #expect(version > stored)
        #expect(store.storedVersion(of: "k") == version)
        let other = try makeCache(node: "b", clock: clock, store: store)
        #expect(try await other.getResult("k", as: String.self)?.value == "after the restart")
        #expect(try await restarted.getResult("k", as: String.self)?.value == "after the restart")
    }

    /// The restarted node's clock follows its earlier run's versions (here through a read of
    /// another key; in a node, through the first synchronization) between making a write's
    /// version and hearing that the write was superseded by its earlier run's: what the clock
    /// reached must not make that version look like this run's own later write, or the write is
    /// dropped. What tells them apart is the highest version this run has issued.
    @Test func aRestartedNodeRebasesAfterItsEarlierRunEvenWhenItsClockFollowedItMeanwhile() async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let earlierRun = try makeCache(node: "n", clock: ahead, store: store)
        let stored = try await earlierRun.set("k", "before the restart")
        ahead.advance(by: .milliseconds(20))
        try await earlierRun.set("later", "also before the restart")
        let observing = ObservingDistributedCache(InMemoryDistributedCache(store: store))
        let restarted = try makeCache(node: "n", clock: clock, distributed: observing)
        observing.beforeNextApply { _ = try? await restarted.getResult("later", as: String.self) }
        let version = try await restarted.set("k", "after the restart")
        #expect(version > stored)
        #expect(store.storedVersion(of: "k") == version)
        #expect(try await restarted.getResult("k", as: String.self)?.value == "after the restart")
    }

    /// A node whose clock is behind (restarted after its wall clock was set back, or slower than
    /// a writer that has not reached it yet) clears, and removes a tag, after a node 20 s ahead
    /// stored keys. By Redis's order both come after those writes, so they must hide them on
    /// every node and in the clearing node's own L1, though their versions started out older.
    @Test func aClearFromANodeWhoseClockIsBehindHidesWhatWasStoredBeforeIt() async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let fast = try makeCache(node: "fast", clock: ahead, store: store)
        let stored = try await fast.set("k", "before the clear")
        let slow = try makeCache(node: "slow", clock: clock, store: store)
        try await slow.set("own", "in L1 before the clear")
        let clear = try await slow.clear(allowFailSafe: false)
        #expect(clear > stored)
        #expect(try await slow.getResult("k", as: String.self) == nil)
        #expect(try await slow.getResult("own", as: String.self) == nil)

        let tagged = try await fast.set("t", "before the tag removal", tags: ["group"])
        let otherSlow = try makeCache(node: "other-slow", clock: clock, store: store)
        let removal = try await otherSlow.removeByTag("group")
        #expect(removal > tagged)

        let fresh = try makeCache(node: "fresh", clock: clock, store: store)
        #expect(try await fresh.getResult("k", as: String.self) == nil)
        #expect(try await fresh.getResult("own", as: String.self) == nil)
        #expect(try await fresh.getResult("t", as: String.self) == nil)
    }

    /// A node restarted with its clock 20 s behind the sets already stored has heard nothing
    /// yet: its first synchronization reads the highest stored version from the head and its
    /// clock follows it, so even a write of another key (which no rebase would order) is
    /// versioned after them.
    @Test func aNodeFollowsTheHighestStoredVersionWhenItSynchronizes() async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let fast = try makeCache(node: "fast", clock: ahead, store: store)
        let stored = try await fast.set("k", "stored by a clock ahead")
        let restarted = try makeCache(node: "restarted", clock: clock, store: store, backplane: InMemoryBackplane(store: store))
        try await withRunning([restarted], clock: clock) {
            #expect(await eventually(pollingEvery: .zero) { restarted.isBackplaneConnected })
            let other = try await restarted.set("other", "written after the restart")
            #expect(other > stored)
        }
    }

    /// A clock that ran 20 s ahead left its lead on every node that read its write. Node c is
    /// then cut off from L2 while a writes many keys and then `k`; c clears afterwards, and the
    /// clear is queued. When it lands, it must remove `k`: it was made after `k`'s write. With
    /// milliseconds standing still during the lead, c's clear would carry a smaller counter than
    /// a's writes and lose to them.
    @Test func aClearQueuedDuringAClockLeadRemovesWritesMadeBeforeIt() async throws {
        let ahead = ManualClock(wallMilliseconds: clock.wallClockMilliseconds() + 20_000)
        let skewed = try makeCache(node: "skewed", clock: ahead, store: store)
        let writes = WriteFailingDistributedCache(InMemoryDistributedCache(store: store))
        let a = try makeCache(node: "a", clock: clock, store: store)
        let c = try makeCache(node: "c", clock: clock, distributed: writes)
        try await skewed.set("lead", "from a clock ahead")
        #expect(try await a.getResult("lead", as: String.self)?.value == "from a clock ahead")
        #expect(try await c.getResult("lead", as: String.self)?.value == "from a clock ahead")
        try await withRunning([c], clock: clock) {
            writes.failing = true
            clock.advance(by: .milliseconds(10))
            for index in 0..<200 { try await a.set("other-\(index)", "v") }
            let before = try await a.set("k", "before")
            clock.advance(by: .milliseconds(100))
            let clear = try await c.clear(allowFailSafe: false)
            #expect(clear > before)
            #expect(c.pendingWriteCount == 1)
            writes.failing = false
            for _ in 0..<20 where c.pendingWriteCount > 0 {
                clock.advance(by: .seconds(1))
                _ = await eventually(timeout: .milliseconds(200), pollingEvery: .zero) { c.pendingWriteCount == 0 }
            }
            #expect(c.pendingWriteCount == 0)
        }
        let fresh = try makeCache(node: "b", clock: clock, store: store)
        #expect(try await fresh.getResult("k", as: String.self) == nil)
        #expect(try await fresh.getResult("other-0", as: String.self) == nil)
    }
}
