@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

/// Topology: L1 + L2 + backplane on the in-memory bus, several nodes in one process.
@Suite("HybridCache coherence, in-memory bus")
struct HybridCacheCoherenceTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    struct Node {
        let cache: HybridCache
        let backplane: InMemoryBackplane
    }

    func makeNode(_ id: String, configure: (inout HybridCacheConfiguration) -> Void = { _ in }) throws -> Node {
        let backplane = InMemoryBackplane(store: store)
        let cache = try makeCache(node: id, clock: clock, store: store, backplane: backplane, configure: configure)
        return Node(cache: cache, backplane: backplane)
    }

    /// Runs nodes until `body` ends; waits until each is synchronized with the bus.
    func withNodes<T: Sendable>(_ nodes: [Node], _ body: @Sendable () async throws -> T) async throws -> T {
        try await withRunning(nodes.map(\.cache), clock: clock, sleepersPerCache: 2) {
            #expect(await eventually(pollingEvery: .zero) { nodes.allSatisfy { $0.cache.isBackplaneConnected } })
            return try await body()
        }
    }

    func value(_ node: Node, _ key: String, options: CacheEntryOptions? = nil) async throws -> String? {
        try await node.cache.getResult(key, as: String.self, options: options)?.value
    }

    /// Whether every node reads `expected` for `key` (nil: absent).
    func reads(_ nodes: [Node], _ key: String, _ expected: String?) async -> Bool {
        for node in nodes {
            guard let read = try? await value(node, key), read == expected else {
                if expected == nil, (try? await value(node, key)) == nil { continue }
                return false
            }
        }
        return true
    }

    @Test func aSetOnOneNodeExpiresTheOthersCopies() async throws {
        let a = try makeNode("a"), b = try makeNode("b"), c = try makeNode("c")
        try await withNodes([a, b, c]) {
            try await a.cache.set("k", "v1")
            #expect(try await value(b, "k") == "v1")
            #expect(try await value(c, "k") == "v1")
            try await b.cache.set("k", "v2")
            #expect(await eventually(pollingEvery: .zero) { await reads([a, c], "k", "v2") })
            #expect(a.cache.statistics.backplane.received >= 2)
        }
    }

    @Test func removeTagRemovalAndClearPropagate() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("plain", "p")
            try await a.cache.set("tagged1", "t1", tags: ["group"])
            try await a.cache.set("tagged2", "t2", tags: ["group", "other"])
            for key in ["plain", "tagged1", "tagged2"] { #expect(try await value(b, key) != nil) }
            try await a.cache.remove("plain")
            #expect(await eventually(pollingEvery: .zero) { (try? await value(b, "plain")) == nil })
            try await a.cache.removeByTag("group")
            #expect(await eventually(pollingEvery: .zero) { await reads([b], "tagged1", nil) })
            #expect(await reads([b], "tagged2", nil))
            // L2 honours the tag marker too: a third node does not load the removed entries.
            let c = try makeCache(node: "c", clock: clock, store: store)
            #expect(try await c.getResult("tagged1", as: String.self) == nil)
            try await a.cache.set("x", "1")
            try await a.cache.set("y", "2")
            #expect(try await value(b, "x") == "1")
            try await a.cache.clear(allowFailSafe: false)
            #expect(await eventually(pollingEvery: .zero) { await reads([b], "x", nil) })
            #expect(await reads([b], "y", nil))
            #expect(try await value(a, "y") == nil)
        }
    }

    @Test func expireKeepsTheValueForFailSafeOnOtherNodes() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        let options = failSafeOptions()
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1", options: options)
            #expect(try await value(b, "k", options: options) == "v1")
            try await a.cache.expire("k", options: options)
            #expect(await eventually(pollingEvery: .zero) { (try? await value(b, "k", options: options)) == nil })
            let served = try await b.cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
            #expect(served.value == "v1" && served.isStale)
        }
    }

    @Test func aNodeThatWasDisconnectedReplaysWhatItMissed() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            for index in 0..<5 { try await a.cache.set("k\(index)", "old\(index)") }
            for index in 0..<5 { #expect(try await value(b, "k\(index)") == "old\(index)") }
            b.backplane.disconnect()
            #expect(await eventually(pollingEvery: .zero) { !b.cache.isBackplaneConnected })
            for index in 0..<5 { try await a.cache.set("k\(index)", "new\(index)") }
            b.backplane.reconnect()
            #expect(await eventually(pollingEvery: .zero) { b.cache.isBackplaneConnected })
            for index in 0..<5 { #expect(try await value(b, "k\(index)") == "new\(index)") }
            #expect(b.cache.statistics.backplane.replays >= 1)
            #expect(b.cache.statistics.backplane.fullExpiries == 0)
        }
    }

    @Test func aGapIsFilledFromTheLog() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("lost", "v1")
            #expect(try await value(b, "lost") == "v1")
            b.backplane.dropNextMessages(1)
            try await a.cache.set("lost", "v2")   // never reaches b
            try await a.cache.set("other", "x")   // reveals the gap
            #expect(await eventually(pollingEvery: .zero) { b.cache.statistics.backplane.gapsDetected == 1 })
            // The gap is counted before its replay is applied: wait for the replay, not the count.
            #expect(try await eventually(pollingEvery: .zero) { try await value(b, "lost") == "v2" })
        }
    }

    @Test func aLogTrimmedPastTheNodeExpiresItsWholeL1() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            try await a.cache.set("unrelated", "u")
            #expect(try await value(b, "k") == "v1")
            #expect(try await value(b, "unrelated") == "u")
            b.backplane.disconnect()
            #expect(await eventually(pollingEvery: .zero) { !b.cache.isBackplaneConnected })
            try await a.cache.set("k", "v2")
            try await a.cache.set("filler", "f")
            store.trimLog(keepingLast: 1)
            b.backplane.reconnect()
            #expect(await eventually(pollingEvery: .zero) { b.cache.isBackplaneConnected })
            #expect(b.cache.statistics.backplane.fullExpiries == 1)
            #expect(try await value(b, "k") == "v2")
        }
    }

    @Test func anEpochChangeExpiresEveryNodesL1() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "pre-flush")
            #expect(try await value(b, "k") == "pre-flush")
            store.flushAll()
            // The next message carries the new epoch; the heartbeat would find it too.
            try await a.cache.set("other", "post-flush")
            #expect(await eventually(pollingEvery: .zero) { b.cache.statistics.backplane.fullExpiries >= 1 })
            #expect(try await value(b, "k") == nil)
        }
    }

    @Test func theHeartbeatCatchesASilentlyDeadSubscription() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            #expect(try await value(b, "k") == "v1")
            b.backplane.dropNextMessages(1)
            try await a.cache.set("k", "v2") // lost, and nothing follows to reveal a gap
            #expect(try await value(b, "k") == "v1")
            clock.advance(by: .seconds(1)) // one heartbeat
            #expect(await eventually(pollingEvery: .zero) { (try? await value(b, "k")) == "v2" })
        }
    }

    @Test func garbageTruncatedAndFutureMessagesAreIgnoredAndCounted() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            #expect(try await value(b, "k") == "v1")
            let head = store.snapshot
            let evil = CacheVersion(milliseconds: .max / 2, counter: 0, node: "evil")
            let aheadOfLog = BackplaneMessage(epoch: head.epoch, sequence: head.sequence + 1000, kind: .remove, key: "k", version: evil).encoded()
            let wrongEpoch = BackplaneMessage(epoch: "forged", sequence: head.sequence + 1, kind: .clearRemove, key: "", version: evil).encoded()
            var future = aheadOfLog
            future[4] = BackplaneMessage.formatVersion + 1
            store.publishRaw([0xFF, 0x00, 0x13])
            store.publishRaw(Array(aheadOfLog.prefix(aheadOfLog.count - 3)))
            store.publishRaw(future)
            store.publishRaw([])
            // Well-formed, but claiming a sequence the log never assigned, or another epoch:
            // checked against the head and ignored, never applied.
            store.publishRaw(aheadOfLog)
            store.publishRaw(wrongEpoch)
            #expect(await eventually(pollingEvery: .zero) { b.cache.statistics.backplane.ignoredMessages == 6 })
            #expect(try await value(b, "k") == "v1")
            #expect(b.cache.statistics.backplane.fullExpiries == 0)
        }
    }

    @Test func concurrentWritersConvergeToTheHighestVersion() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for round in 0..<50 {
                    group.addTask { try await a.cache.set("contended", "a\(round)") }
                    group.addTask { try await b.cache.set("contended", "b\(round)") }
                }
                try await group.waitForAll()
            }
            let winner = try #require(store.storedVersion(of: "contended"))
            #expect(await eventually(pollingEvery: .zero) {
                let fromA = try? await a.cache.getResult("contended", as: String.self)
                let fromB = try? await b.cache.getResult("contended", as: String.self)
                let versionA = fromA?.version
                let versionB = fromB?.version
                return versionA == winner && versionB == winner
            })
        }
    }

    @Test func aStaleQueuedWriteDoesNotOverwriteANewerOne() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            store.setAvailable(false)
            try await a.cache.set("k", "old-from-a")   // queued on a
            #expect(a.cache.pendingWriteCount == 1)
            store.setAvailable(true)
            clock.skewWallClock(by: 10)
            try await b.cache.set("k", "new-from-b")   // newer version, lands first
            for _ in 0..<20 where a.cache.pendingWriteCount > 0 {
                clock.advance(by: .seconds(2))
                _ = await eventually(timeout: .milliseconds(200), pollingEvery: .zero) { a.cache.pendingWriteCount == 0 }
            }
            #expect(a.cache.pendingWriteCount == 0)
            #expect(await eventually(pollingEvery: .zero) { (try? await value(a, "k")) == "new-from-b" })
            #expect(try await value(b, "k") == "new-from-b")
        }
    }

    @Test func versionsOrderWritesDespiteASlowWallClock() async throws {
        let fastClock = ManualClock(wallMilliseconds: 1_800_000_005_000)
        let backplane = InMemoryBackplane(store: store)
        let fast = try makeCache(node: "fast", clock: fastClock, store: store, backplane: backplane)
        let slow = try makeNode("slow")
        // The slow node's wall clock is 5 s behind; after seeing the fast node's write,
        // its own next write must still order after it.
        try await withRunning([fast], clock: fastClock, sleepersPerCache: 2) {
            try await withNodes([slow]) {
                #expect(await eventually(pollingEvery: .zero) { fast.isBackplaneConnected })
                let first = try await fast.set("k", "from-fast")
                #expect(await eventually(pollingEvery: .zero) { (try? await slow.cache.getResult("k", as: String.self))?.value == "from-fast" })
                let second = try await slow.cache.set("k", "from-slow")
                #expect(second > first)
                #expect(await eventually(pollingEvery: .zero) { (try? await fast.getResult("k", as: String.self))?.value == "from-slow" })
            }
        }
    }

    @Test func aFillThatRacedAnInvalidationIsNotInstalled() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            let gate = Gate()
            let loaded = CallCounter()
            // b loads "k" from its origin, slowly: the origin answers with the old value.
            async let load = b.cache.getOrSetResult("k", as: String.self, options: { var o = CacheEntryOptions(); o.skipDistributedRead = true; return o }()) { _ in
                loaded.increment()
                await gate.wait()
                return "old-from-origin"
            }
            #expect(await eventually(pollingEvery: .zero) { loaded.count == 1 })
            // Meanwhile a writes v2; b receives the invalidation while its load is in flight.
            try await a.cache.set("k", "v2")
            #expect(await eventually(pollingEvery: .zero) { b.cache.statistics.backplane.received >= 2 })
            gate.open()
            let returned = try await load
            #expect(returned.value == "old-from-origin")
            // The old value was not installed over the newer write: b reads v2.
            #expect(try await value(b, "k") == "v2")
        }
    }

    @Test func aFailedSynchronizationIsRetriedBeforeTheNextHeartbeat() async throws {
        let a = try makeNode("a") { $0.heartbeatInterval = .seconds(10) }
        let b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            #expect(await eventually(pollingEvery: .zero) { (try? await value(b, "k")) == "v1" })
            // a misses a write, then resubscribes while Redis does not answer yet: its first
            // synchronization fails.
            a.backplane.disconnect()
            #expect(await eventually(pollingEvery: .zero) { !a.cache.isBackplaneConnected })
            try await b.cache.set("k", "v2")
            let sleepersBefore = clock.sleeperCount
            store.setAvailable(false)
            a.backplane.reconnect()
            // The early retry arms a timer of at most retryBackoffBase (100 ms), far short of the
            // 10 s heartbeat.
            #expect(await clock.waitForSleepers(atLeast: sleepersBefore + 1))
            #expect(!a.cache.isBackplaneConnected)
            store.setAvailable(true)
            clock.advance(by: .milliseconds(100))
            #expect(await eventually(pollingEvery: .zero) { a.cache.isBackplaneConnected })
            #expect(await eventually(pollingEvery: .zero) { (try? await value(a, "k")) == "v2" })
        }
    }

    @Test func cutOffLongerThanMaxDisconnectedStalenessAsksTheFactoryFirst() async throws {
        let a = try makeNode("a") { $0.maxDisconnectedStaleness = .seconds(5) }
        let options = failSafeOptions(duration: .seconds(300))
        try await withNodes([a]) {
            _ = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
            a.backplane.disconnect()
            store.setAvailable(false)
            #expect(await eventually(pollingEvery: .zero) { !a.cache.isBackplaneConnected })
            // Within the bound, L1 still serves.
            clock.advance(by: .seconds(4))
            let within = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in "unused" }
            #expect(within.value == "v1" && within.source == .memory && !within.isStale)
            clock.advance(by: .seconds(2))
            let calls = CallCounter()
            let fresh = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in calls.increment(); return "v2-from-origin" }
            #expect(calls.count == 1 && fresh.value == "v2-from-origin")
            // And when the origin fails too, the value is served flagged stale.
            let other = try await a.cache.getOrSetResult("k2", as: String.self, options: options) { _ in "k2" }
            _ = other
            clock.advance(by: .seconds(301))
            let stale = try await a.cache.getOrSetResult("k2", as: String.self, options: options) { _ in throw TestFailure() }
            #expect(stale.isStale)
            store.setAvailable(true)
        }
    }

    @Test func aLinkThatGoesDeafCountsTowardTheBoundFromTheLastHeadTheNodeHad() async throws {
        let a = try makeNode("a") { $0.maxDisconnectedStaleness = .seconds(5) }
        let options = failSafeOptions(duration: .seconds(300))
        try await withNodes([a]) {
            _ = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
            // Deaf: no disconnect event, only head checks that fail, noticed at a heartbeat.
            store.setAvailable(false)
            clock.advance(by: .seconds(3))
            #expect(await eventually(pollingEvery: .zero) { !a.cache.isBackplaneConnected })
            // 5.5 s after the last head the node had, though only 2.5 s after it noticed.
            clock.advance(by: .milliseconds(2_500))
            let calls = CallCounter()
            let read = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in calls.increment(); return "v2" }
            #expect(calls.count == 1 && read.value == "v2" && read.source == .factory)
            store.setAvailable(true)
        }
    }

    @Test func skipBackplaneNotificationsLeavesOtherNodesAlone() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await a.cache.set("k", "v1")
            #expect(try await value(b, "k") == "v1")
            let sequenceBefore = store.snapshot.sequence
            var configured = CacheEntryOptions()
            configured.skipBackplaneNotifications = true
            let options = configured
            try await a.cache.set("k", "v2", options: options)
            #expect(store.snapshot.sequence == sequenceBefore)
            #expect(try await value(b, "k") == "v1")
        }
    }

    @Test func aFullExpirySparesTheNodesOwnUnflushedWrite() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        try await withNodes([a, b]) {
            try await b.cache.set("k", "old")
            #expect(try await value(a, "k") == "old")
            store.setAvailable(false)
            try await a.cache.set("k", "mine")   // queued: only a's L1 has it
            #expect(a.cache.pendingWriteCount == 1)
            store.setAvailable(true)
            store.flushAll()                      // Redis lost its data: every node expires L1
            clock.advance(by: .seconds(1))        // the heartbeat sees the new epoch
            #expect(await eventually(pollingEvery: .zero) { a.cache.statistics.backplane.fullExpiries >= 1 })
            // Read-your-writes: a still serves its own write, not an older or missing L2 value.
            #expect(try await value(a, "k") == "mine")
        }
    }

    /// An origin fill waiting for L2 is a copy of the origin, not a write only this node holds:
    /// a full expiry expires it like any other entry (a clear this node missed may be newer).
    @Test func aFullExpiryExpiresTheNodesOwnUnflushedOriginFill() async throws {
        let a = try makeNode("a")
        try await withNodes([a]) {
            store.setAvailable(false)
            try await a.cache.set("k", "mine")
            _ = try await a.cache.getOrSetResult("f", as: String.self) { _ in "filled" }
            #expect(a.cache.pendingWriteCount == 2)
            store.setAvailable(true)
            store.flushAll()
            clock.advance(by: .seconds(1))
            #expect(await eventually(pollingEvery: .zero) { a.cache.statistics.backplane.fullExpiries >= 1 })
            var memoryOnly = CacheEntryOptions()
            memoryOnly.skipDistributedRead = true
            #expect(try await value(a, "k", options: memoryOnly) == "mine")
            #expect(try await value(a, "f", options: memoryOnly) == nil)
        }
    }

    @Test func anL2AnswerOlderThanTheNodesOwnCopyIsNotServed() async throws {
        let a = try makeNode("a"), b = try makeNode("b")
        let options = failSafeOptions()
        try await withNodes([a, b]) {
            try await b.cache.set("k", "v1", options: options)
            // a sees v1 first, so its own write below orders after it.
            #expect(try await value(a, "k", options: options) == "v1")
            store.setAvailable(false)
            try await a.cache.set("k", "v2-queued", options: options)
            store.setAvailable(true)
            // a's copy is expired locally (say, a full expiry or cut-off) while L2 still has v1.
            try await a.cache.expire("k", options: { var o = options; o.skipDistributedWrite = true; o.skipBackplaneNotifications = true; return o }())
            let read = try await a.cache.getOrSetResult("k", as: String.self, options: options) { _ in "from-origin" }
            #expect(read.value != "v1", "served \(read.source) \(read.version)")
        }
    }

    @Test func queuedWritesFlushAfterTheFirstL2SuccessWithoutWaitingOutTheBackoff() async throws {
        let a = try makeNode("a")
        try await withNodes([a]) {
            store.setAvailable(false)
            try await a.cache.set("k", "queued")
            // The clock never advances, so the flush loop's backoff never ends by itself.
            #expect(await clock.waitForSleepers(atLeast: 3))
            store.setAvailable(true)
            // The backplane stays as it was; a read that reaches L2 is what says Redis is back.
            _ = try await a.cache.getResult("other", as: String.self)
            #expect(await eventually(pollingEvery: .zero) { a.cache.pendingWriteCount == 0 })
            #expect(store.storedVersion(of: "k") != nil)
        }
    }

    @Test func queuedWritesFlushWhenTheBackplaneIsBackWithoutWaitingOutTheBackoff() async throws {
        let a = try makeNode("a")
        try await withNodes([a]) {
            store.setAvailable(false)
            try await a.cache.set("k", "queued")
            // Metrics, heartbeat, and now the flush loop's backoff: none of them will fire,
            // because this test never advances the clock.
            #expect(await clock.waitForSleepers(atLeast: 3))
            a.backplane.disconnect()
            store.setAvailable(true)
            a.backplane.reconnect()
            #expect(await eventually(pollingEvery: .zero) { a.cache.pendingWriteCount == 0 })
            #expect(store.storedVersion(of: "k") != nil)
        }
    }
}
