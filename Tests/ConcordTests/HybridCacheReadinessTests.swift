@_spi(ConcordBackend) import Concord
import ConcordTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// An L2 that, like Redis, only `run()` connects: it refuses calls until the test connects it,
/// and reports `reachable` to the running cache then.
final class ConnectingDistributedCache: DistributedCache {
    let inner: InMemoryDistributedCache
    private let connected = Atomic<Bool>(false)
    private let events = Mutex<DistributedCacheEvents?>(nil)

    init(store: InMemoryCacheStore) { inner = InMemoryDistributedCache(store: store) }

    /// Whether the cache is running this L2 (so a `connect()` is heard).
    var isRunning: Bool { events.withLock { $0 != nil } }

    func connect() {
        connected.store(true, ordering: .relaxed)
        events.withLock { $0 }?.reachable()
    }

    func read(_ key: String) async throws -> DistributedRead? {
        guard connected.load(ordering: .relaxed) else { throw CacheError(.distributedFailed, "not connected") }
        return try await inner.read(key)
    }

    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        guard connected.load(ordering: .relaxed) else { throw CacheError(.distributedFailed, "not connected") }
        return try await inner.apply(mutation, publish: publish)
    }

    func run(events sink: DistributedCacheEvents) async throws {
        events.withLock { $0 = sink }
        let (wait, keepAlive) = AsyncStream<Void>.makeStream()
        await withTaskCancellationHandler {
            for await _ in wait {}
        } onCancel: {
            keepAlive.finish()
        }
        events.withLock { $0 = nil }
    }
}

/// Finding 1 and 2 of the library issue: one honest lifecycle (no acknowledged write is lost
/// without `run()`), `ready(timeout:)`, and no warning for the cache's own start and shutdown.
@Suite("HybridCache readiness and lifecycle")
struct HybridCacheReadinessTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    @Test func withoutRunAnL2ThatNeedsRunRefusesEveryCallAndWritesNothing() async throws {
        let l2 = ConnectingDistributedCache(store: store)
        let cache = try makeCache(clock: clock, distributed: l2)
        let calls = CallCounter()
        await #expect { try await cache.set("k", "v") } throws: { ($0 as? CacheError)?.code == .notRunning }
        await #expect { try await cache.remove("k") } throws: { ($0 as? CacheError)?.code == .notRunning }
        await #expect { try await cache.getResult("k", as: String.self) } throws: { ($0 as? CacheError)?.code == .notRunning }
        await #expect {
            try await cache.getOrSet("k") { calls.increment(); return "loaded" }
        } throws: { ($0 as? CacheError)?.code == .notRunning }
        #expect(calls.count == 0)
        #expect(store.storedVersion(of: "k") == nil)
        #expect(cache.pendingWriteCount == 0)
        #expect(cache.statistics.distributed.errors == 0)
        #expect(cache.statistics.memory.entries == 0)
    }

    @Test func aFailedWriteWithoutRunFailsTheCallAndIsNotServedLocally() async throws {
        // The in-memory L2 is usable without run(), but nothing would retry a failed write.
        let cache = try makeCache(clock: clock, store: store)
        store.setAvailable(false)
        await #expect { try await cache.set("k", "v") } throws: { error in
            (error as? CacheError)?.code == .distributedFailed
        }
        #expect(cache.pendingWriteCount == 0)
        var localOnly = CacheEntryOptions()
        localOnly.skipDistributedRead = true
        #expect(try await cache.getResult("k", as: String.self, options: localOnly) == nil)
        store.setAvailable(true)
        try await cache.set("k", "v")
        #expect(store.storedVersion(of: "k") != nil)
    }

    @Test func readyWaitsForRunAndTheFirstConnectionThenCallsSucceed() async throws {
        let l2 = ConnectingDistributedCache(store: store)
        let cache = try makeCache(clock: clock, distributed: l2)
        #expect(!cache.isReady)
        let returned = CallCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await cache.ready(timeout: .seconds(60))
                returned.increment()
            }
            group.addTask { try await cache.run() }
            try #require(await eventually(timeout: .seconds(60), pollingEvery: .zero) { l2.isRunning })
            #expect(returned.count == 0, "ready returned before L2 connected")
            #expect(!cache.isReady)
            l2.connect()
            try #require(await eventually(timeout: .seconds(60), pollingEvery: .zero) { returned.count == 1 })
            #expect(cache.isReady)
            try await cache.set("k", "v")
            #expect(store.storedVersion(of: "k") != nil)
            #expect(cache.statistics.distributed.errors == 0)
            group.cancelAll()
        }
    }

    @Test func readyThrowsATypedErrorNamingWhatIsMissingOnTimeout() async throws {
        let l2 = ConnectingDistributedCache(store: store)
        let cache = try makeCache(clock: clock, distributed: l2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await cache.run() }
            let waiting = Task {
                do {
                    try await cache.ready(timeout: .seconds(5))
                    return "returned"
                } catch let error as CacheError {
                    return "\(error.code): \(error.message)"
                }
            }
            // The metrics loop and ready's deadline.
            #expect(await clock.waitForSleepers(atLeast: 2))
            clock.advance(by: .seconds(5))
            let outcome = try await waiting.value
            #expect(outcome.hasPrefix("notReady"), "\(outcome)")
            #expect(outcome.contains("L2 has not connected"), "\(outcome)")
            group.cancelAll()
        }
    }

    @Test func afterRunFinishesCallsAndReadyReportNotRunning() async throws {
        let l2 = ConnectingDistributedCache(store: store)
        let cache = try makeCache(clock: clock, distributed: l2)
        let group = ServiceGroup(configuration: .init(services: [cache], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try #require(await eventually(timeout: .seconds(60), pollingEvery: .zero) { l2.isRunning })
            l2.connect()
            try await cache.ready(timeout: .seconds(60))
            try await cache.set("k", "v")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await #expect { try await cache.set("k", "w") } throws: { ($0 as? CacheError)?.code == .notRunning }
        await #expect { try await cache.ready(timeout: .seconds(1)) } throws: { ($0 as? CacheError)?.code == .notRunning }
    }

    @Test func startAndGracefulShutdownLogNoWarningEvenWithL1FilledBeforeTheFirstSynchronization() async throws {
        let recorder = RecordingLogHandler.Recorder()
        let backplane = InMemoryBackplane(store: store)
        let cache = try HybridCache(
            configuration: HybridCacheConfiguration(cacheName: "test", nodeID: "n1"),
            distributed: InMemoryDistributedCache(store: store), backplane: backplane, clock: clock,
            logger: recorder.logger(level: .debug)
        )
        // The in-memory L2 is usable before run(): this fills L1 before the first synchronization.
        try await cache.set("k", "v")
        let group = ServiceGroup(configuration: .init(services: [cache], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await cache.ready(timeout: .seconds(60))
            #expect(cache.statistics.backplane.fullExpiries == 1)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let records = recorder.all
        #expect(records.contains { $0.message == "expired the whole L1" && $0.level == .info })
        #expect(records.contains { $0.message == "cache stopped" })
        #expect(recorder.records(atLeast: .warning).isEmpty, "\(recorder.records(atLeast: .warning))")
    }
}
