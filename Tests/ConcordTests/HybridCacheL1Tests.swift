import Concord
import ConcordTesting
import Synchronization
import Testing

/// Topology: L1 alone.
@Suite("HybridCache, L1 only")
struct HybridCacheL1Tests {
    let clock = ManualClock()

    @Test func getOrSetCallsTheFactoryOnceThenHitsMemory() async throws {
        let cache = try makeCache(clock: clock)
        let calls = CallCounter()
        let first = try await cache.getOrSetResult("k", as: String.self) { _ in calls.increment(); return "v1" }
        let second = try await cache.getOrSetResult("k", as: String.self) { _ in calls.increment(); return "v2" }
        #expect(first.value == "v1" && first.source == .factory && !first.isStale)
        #expect(second.value == "v1" && second.source == .memory)
        #expect(calls.count == 1)
        #expect(cache.statistics.memory.hits == 1)
    }

    @Test func durationExpiresTheEntry() async throws {
        let cache = try makeCache(clock: clock)
        let options = CacheEntryOptions(duration: .seconds(5))
        try await cache.set("k", "v1", options: options)
        clock.advance(by: .seconds(4))
        #expect(try await cache.getResult("k", as: String.self)?.value == "v1")
        clock.advance(by: .seconds(1))
        #expect(try await cache.getResult("k", as: String.self) == nil)
    }

    @Test func memoryDurationOverridesDuration() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions(duration: .seconds(60))
        configured.memoryDuration = .seconds(2)
        let options = configured
        try await cache.set("k", "v1", options: options)
        clock.advance(by: .seconds(3))
        #expect(try await cache.getResult("k", as: String.self) == nil)
    }

    @Test func idleTimeoutDropsAnUnreadEntryAndSlidesOnReads() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions(duration: .seconds(60))
        configured.memoryIdleTimeout = .seconds(5)
        let options = configured
        try await cache.set("read", "v", options: options)
        try await cache.set("unread", "v", options: options)
        for _ in 0..<3 {
            clock.advance(by: .seconds(4))
            #expect(try await cache.getResult("read", as: String.self) != nil)
        }
        #expect(try await cache.getResult("unread", as: String.self) == nil)
    }

    @Test func jitterSpreadsExpiry() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions(duration: .seconds(10))
        configured.jitterMaxDuration = .seconds(100)
        let options = configured
        for index in 0..<50 { try await cache.set("k\(index)", index, options: options) }
        clock.advance(by: .seconds(11))
        var alive = 0
        for index in 0..<50 where try await cache.getResult("k\(index)", as: Int.self) != nil { alive += 1 }
        // Without jitter every entry would be gone; with up to 100 s of jitter nearly all live.
        #expect(alive > 25)
    }

    @Test func sizeCountsAgainstMaxCost() async throws {
        let cache = try makeCache(clock: clock) { $0.memory.maxCost = 10 }
        var configured = CacheEntryOptions()
        configured.size = 4
        let options = configured
        for index in 0..<5 { try await cache.set("k\(index)", index, options: options) }
        #expect(cache.statistics.memory.entries <= 2)
    }

    @Test func maxEntriesBoundsL1() async throws {
        let cache = try makeCache(clock: clock) { $0.memory.maxEntries = 16; $0.memory.shardCount = 1 }
        for index in 0..<100 { try await cache.set("k\(index)", index) }
        #expect(cache.statistics.memory.entries <= 16)
        #expect(cache.statistics.memory.evictions >= 84)
    }

    @Test func removeAndExpire() async throws {
        let cache = try makeCache(clock: clock)
        let options = failSafeOptions()
        try await cache.set("a", "1", options: options)
        try await cache.set("b", "2", options: options)
        try await cache.remove("a")
        try await cache.expire("b")
        #expect(try await cache.getResult("a", as: String.self, options: options) == nil)
        // Expired: not fresh, but fail-safe can still serve it when the factory fails.
        let served = try await cache.getOrSetResult("b", as: String.self, options: options) { _ in throw TestFailure() }
        #expect(served.value == "2" && served.isStale)
    }

    @Test func expireWithoutFailSafeMakesTheFactoryRun() async throws {
        let cache = try makeCache(clock: clock)
        try await cache.set("b", "2")
        try await cache.expire("b")
        let value = try await cache.getOrSetResult("b", as: String.self) { _ in "3" }
        #expect(value.value == "3" && value.source == .factory)
    }

    @Test func getReturnsTheValueOrNil() async throws {
        let cache = try makeCache(clock: clock)
        #expect(try await cache.get("missing", as: Int.self) == nil)
        try await cache.set("present", 7)
        let present: Int? = try await cache.get("present")
        #expect(present == 7)
    }

    @Test func typeMismatchIsATypedError() async throws {
        let cache = try makeCache(clock: clock)
        try await cache.set("k", 7)
        await #expect { try await cache.getResult("k", as: String.self) } throws: { error in
            (error as? CacheError)?.code == .typeMismatch
        }
    }

    @Test func hitsServeTheStoredTypeAndCastToOthersAsBefore() async throws {
        let cache = try makeCache(clock: clock)
        let version = try await cache.set("k", 7)
        let exact = try await cache.getResult("k", as: Int.self)
        #expect(exact?.value == 7 && exact?.source == .memory && exact?.version == version)
        // Not the stored type itself, but a cast that `as?` makes: the general cast still runs.
        let wrapped = try await cache.getResult("k", as: Int?.self)
        #expect(wrapped?.value == 7 && wrapped?.version == version)
        try await cache.set("list", ["a", "b"])
        #expect(try await cache.getOrSetResult("list", as: [String].self) { _ in [] }.value == ["a", "b"])
    }

    @Test func hitsReadTheCoarseClockAndServeUntilItPassesTheDeadline() async throws {
        // The coarse reading lags by 2 ms: a hit sees the deadline that much late, and the
        // slow paths, which read `now()`, do not.
        let lagging = LaggingClock(base: clock, lag: .milliseconds(2))
        var configuration = HybridCacheConfiguration(cacheName: "test", nodeID: "n1")
        configuration.defaultEntryOptions.duration = .seconds(5)
        let cache = try HybridCache(configuration: configuration, clock: lagging, logger: quietLogger)
        try await cache.set("k", "v")
        clock.advance(by: .seconds(5) + .milliseconds(1))
        #expect(try await cache.getResult("k", as: String.self)?.value == "v")
        clock.advance(by: .milliseconds(1))
        #expect(try await cache.getResult("k", as: String.self) == nil)
        #expect(lagging.coarseReads > 0)
    }

    @Test func skipMemoryWriteAndRead() async throws {
        let cache = try makeCache(clock: clock)
        var skipWrite = CacheEntryOptions()
        skipWrite.skipMemoryWrite = true
        try await cache.set("k", "v", options: skipWrite)
        #expect(try await cache.getResult("k", as: String.self) == nil)
        try await cache.set("k2", "v")
        var skipRead = CacheEntryOptions()
        skipRead.skipMemoryRead = true
        #expect(try await cache.getResult("k2", as: String.self, options: skipRead) == nil)
        let calls = CallCounter()
        _ = try await cache.getOrSetResult("k2", as: String.self, options: skipRead) { _ in calls.increment(); return "fresh" }
        #expect(calls.count == 1)
    }

    @Test func badKeysAreTypedErrorsAndStoreNothing() async throws {
        let cache = try makeCache(clock: clock) { $0.maxKeyBytes = 8 }
        await #expect { try await cache.set("", "v") } throws: { ($0 as? CacheError)?.code == .invalidKey }
        await #expect { try await cache.set("123456789", "v") } throws: { ($0 as? CacheError)?.code == .keyTooLong }
        await #expect { try await cache.getOrSetResult("", as: String.self) { _ in "v" } } throws: { ($0 as? CacheError)?.code == .invalidKey }
        await #expect { try await cache.remove("123456789") } throws: { ($0 as? CacheError)?.code == .keyTooLong }
        #expect(cache.statistics.memory.entries == 0)
    }

    @Test func oversizedValueIsRejectedAndStoresNothing() async throws {
        let cache = try makeCache(clock: clock) { $0.maxValueBytes = 16 }
        await #expect { try await cache.set("k", [UInt8](repeating: 1, count: 17)) } throws: { ($0 as? CacheError)?.code == .valueTooLarge }
        #expect(try await cache.getResult("k", as: [UInt8].self) == nil)
        try await cache.set("k", [UInt8](repeating: 1, count: 16))
        #expect(try await cache.getResult("k", as: [UInt8].self)?.value.count == 16)
    }

    @Test func invalidOptionsAreRejected() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions()
        configured.eagerRefreshThreshold = 1.5
        let options = configured
        await #expect { try await cache.set("k", 1, options: options) } throws: { ($0 as? CacheError)?.code == .invalidConfiguration }
        var configuration = HybridCacheConfiguration()
        configuration.nodeID = "bad node id"
        #expect(throws: CacheError.self) { try HybridCache(configuration: configuration) }
    }

    @Test func factoryErrorWithoutFailSafeIsThrown() async throws {
        let cache = try makeCache(clock: clock)
        // The factory's own error, as itself: the caller matches its own type, not CacheError.
        await #expect(throws: TestFailure(message: "origin down")) {
            try await cache.getOrSet("k", as: String.self) { throw TestFailure(message: "origin down") }
        }
        await #expect(throws: TestFailure(message: "with context")) {
            try await cache.getOrSetResult("k2", as: String.self) { _ in throw TestFailure(message: "with context") }
        }
        #expect(cache.statistics.factory.errors == 2)
        // The cache's own failures stay CacheError.
        await #expect { try await cache.getOrSet("", as: String.self) { "v" } } throws: { ($0 as? CacheError)?.code == .invalidKey }
    }

    @Test func getOrSetReturnsTheValueWhateverTheFactorysShape() async throws {
        let cache = try makeCache(clock: clock)
        let plain: String = try await cache.getOrSet("a") { "plain" }
        let withContext: String = try await cache.getOrSet("b") { context in context.staleValue ?? "with-context" }
        #expect(plain == "plain" && withContext == "with-context")
        let result = try await cache.getOrSetResult("a", as: String.self) { _ in "unused" }
        #expect(result.value == "plain" && result.source == .memory)
    }

    @Test func perCallOptionsStartFromTheCachesDefaults() async throws {
        let cache = try makeCache(clock: clock) { configuration in
            configuration.defaultEntryOptions.isFailSafeEnabled = true
            configuration.defaultEntryOptions.failSafeThrottleDuration = .seconds(30)
            configuration.defaultEntryOptions.factorySoftTimeout = .milliseconds(100)
        }
        // Only the duration is set here: fail-safe and the soft timeout stay as configured.
        let fiveSeconds = CacheEntryOptions(duration: .seconds(5))
        _ = try await cache.getOrSet("k", options: fiveSeconds) { "v1" }
        clock.advance(by: .seconds(6))
        let served = try await cache.getOrSetResult("k", as: String.self, options: fiveSeconds) { _ in throw TestFailure() }
        #expect(served.value == "v1" && served.isStale, "fail-safe was dropped by per-call options")
        let applied = fiveSeconds.applied(over: cache.configuration.defaultEntryOptions)
        #expect(applied.duration == .seconds(5))
        #expect(applied.isFailSafeEnabled)
        #expect(applied.factorySoftTimeout == .milliseconds(100))
        // A field set explicitly wins, even when set to its built-in value.
        var off = CacheEntryOptions()
        off.isFailSafeEnabled = false
        #expect(off.applied(over: cache.configuration.defaultEntryOptions).isFailSafeEnabled == false)
    }

    @Test func cacheWorksWithoutRun() async throws {
        let cache = try HybridCache()
        let value = try await cache.getOrSet("plain") { "works" }
        #expect(value == "works")
    }
}

/// A manual clock whose `coarseNow()` lags `now()` by a fixed amount, as a coarse system clock
/// may, and which counts the coarse reads.
final class LaggingClock: CacheClock {
    let base: ManualClock
    let lag: Duration
    private let reads = Atomic<Int>(0)

    init(base: ManualClock, lag: Duration) {
        self.base = base
        self.lag = lag
    }

    var coarseReads: Int { reads.load(ordering: .relaxed) }

    func now() -> CacheInstant { base.now() }

    func coarseNow() -> CacheInstant {
        reads.add(1, ordering: .relaxed)
        return base.now() - lag
    }

    func wallClockMilliseconds() -> Int64 { base.wallClockMilliseconds() }

    func sleep(until deadline: CacheInstant) async throws { try await base.sleep(until: deadline) }
}
