import Concord
import ConcordTesting
import ServiceLifecycle
import Testing

/// The cache as a Service: graceful shutdown, and limits of the coherence receiver.
@Suite("HybridCache lifecycle")
struct HybridCacheLifecycleTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    /// Queues one write that cannot be applied yet, then shuts the cache down gracefully
    /// once the store is back; returns whether the write reached the store.
    func shutdownFlushes(drainTimeout: Duration) async throws -> Bool {
        let cache = try makeCache(clock: clock, store: store) { $0.shutdownDrainTimeout = drainTimeout }
        let group = ServiceGroup(configuration: .init(services: [cache], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await clock.waitForSleepers(atLeast: 1))
            store.setAvailable(false)
            try await cache.set("k", "queued")
            // The flush loop failed and now waits on its backoff timer, which this test never fires.
            #expect(await clock.waitForSleepers(atLeast: 2))
            store.setAvailable(true)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return store.storedVersion(of: "k") != nil
    }

    @Test func gracefulShutdownFlushesPendingWrites() async throws {
        #expect(try await shutdownFlushes(drainTimeout: .seconds(5)))
    }

    @Test func aZeroDrainTimeoutSkipsTheFlush() async throws {
        #expect(try await shutdownFlushes(drainTimeout: .zero) == false)
    }

    @Test func runTwiceIsAnError() async throws {
        let cache = try makeCache(clock: clock)
        _ = try await withRunning([cache], clock: clock) {
            await #expect(throws: CacheError.self) { try await cache.run() }
        }
    }

    @Test func aGapLongerThanMaxReplayLengthExpiresL1InsteadOfReplaying() async throws {
        let backplaneA = InMemoryBackplane(store: store)
        let backplaneB = InMemoryBackplane(store: store)
        let a = try makeCache(node: "a", clock: clock, store: store, backplane: backplaneA)
        let b = try makeCache(node: "b", clock: clock, store: store, backplane: backplaneB) { $0.maxReplayLength = 3 }
        try await withRunning([a, b], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually(pollingEvery: .zero) { a.isBackplaneConnected && b.isBackplaneConnected })
            try await a.set("k", "v1")
            #expect(try await b.getResult("k", as: String.self)?.value == "v1")
            backplaneB.disconnect()
            #expect(await eventually(pollingEvery: .zero) { !b.isBackplaneConnected })
            for index in 0..<5 { try await a.set("k", "v\(index + 2)") }
            backplaneB.reconnect()
            #expect(await eventually(pollingEvery: .zero) { b.isBackplaneConnected })
            #expect(b.statistics.backplane.fullExpiries == 1)
            #expect(b.statistics.backplane.replays == 0)
            #expect(try await b.getResult("k", as: String.self)?.value == "v6")
        }
    }
}
