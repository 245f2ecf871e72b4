import Concord
import ConcordTesting
import Testing

/// Fail-safe, factory timeouts, eager refresh and stampede protection (L1, and L1+L2 fake).
@Suite("HybridCache resilience")
struct HybridCacheResilienceTests {
    let clock = ManualClock()

    @Test func failSafeServesTheStaleValueOnFactoryError() async throws {
        let cache = try makeCache(clock: clock)
        let options = failSafeOptions(duration: .seconds(10))
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        let served = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
        #expect(served.value == "v1" && served.isStale)
        #expect(cache.statistics.staleServed >= 1)
    }

    @Test func withoutFailSafeTheErrorIsThrown() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.isFailSafeEnabled = false
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
        }
    }

    @Test func failSafeMaxDurationBoundsTheStaleValue() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.failSafeMaxDuration = .seconds(60)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(61))
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
        }
    }

    @Test func failSafeThrottleStopsHammeringTheFactory() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.failSafeThrottleDuration = .seconds(30)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        let calls = CallCounter()
        for _ in 0..<5 {
            let served = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in calls.increment(); throw TestFailure() }
            #expect(served.value == "v1" && served.isStale)
        }
        #expect(calls.count == 1)
        clock.advance(by: .seconds(31))
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in calls.increment(); throw TestFailure() }
        #expect(calls.count == 2)
    }

    @Test func failSafeMaxCyclesEndsFailSafe() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.failSafeMaxCycles = 2
        configured.failSafeThrottleDuration = .seconds(1)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        for _ in 0..<2 {
            let served = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
            #expect(served.isStale)
            clock.advance(by: .seconds(2))
        }
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
        }
    }

    @Test func hardTimeoutStopsAFactoryThatNeverReturns() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions()
        configured.factoryHardTimeout = .milliseconds(500)
        let options = configured
        try await withRunning([cache], clock: clock) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    await #expect { try await cache.getOrSetResult("k", as: String.self, options: options) { _ in
                        await Gate().wait() // never opened, ignores cancellation
                        return "never"
                    } } throws: { ($0 as? CacheError)?.code == .factoryTimeout }
                }
                #expect(await clock.waitForSleepers(atLeast: 2))
                clock.advance(by: .milliseconds(500))
                try await group.waitForAll()
            }
        }
        #expect(cache.statistics.factory.timeouts == 1)
    }

    @Test func hardTimeoutWithFailSafeServesStale() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.factoryHardTimeout = .milliseconds(500)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        try await withRunning([cache], clock: clock) {
            try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
                group.addTask {
                    try await cache.getOrSetResult("k", as: String.self, options: options) { _ in await Gate().wait(); return "never" }
                }
                #expect(await clock.waitForSleepers(atLeast: 2))
                clock.advance(by: .milliseconds(500))
                let served = try await group.next()
                #expect(served?.value == "v1" && served?.isStale == true)
            }
        }
    }

    @Test func softTimeoutServesStaleAndCompletesInTheBackground() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.factorySoftTimeout = .milliseconds(100)
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        let gate = Gate()
        try await withRunning([cache], clock: clock) {
            try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
                group.addTask {
                    try await cache.getOrSetResult("k", as: String.self, options: options) { _ in await gate.wait(); return "v2" }
                }
                #expect(await clock.waitForSleepers(atLeast: 2))
                clock.advance(by: .milliseconds(100))
                let served = try await group.next()
                #expect(served?.value == "v1" && served?.isStale == true)
            }
            gate.open()
            #expect(await eventually(pollingEvery: .zero) { (try? await cache.getResult("k", as: String.self, options: options))?.value == "v2" })
        }
    }

    @Test func softTimeoutIsIgnoredWithoutAStaleValue() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions()
        configured.factorySoftTimeout = .milliseconds(100)
        let options = configured
        let gate = Gate()
        try await withRunning([cache], clock: clock) {
            try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
                group.addTask {
                    try await cache.getOrSetResult("k", as: String.self, options: options) { _ in await gate.wait(); return "v1" }
                }
                // No stale value: only the caller's wait on the factory exists, no soft timer.
                #expect(await eventually(pollingEvery: .zero) { cache.statistics.factory.calls == 1 })
                clock.advance(by: .seconds(5))
                gate.open()
                let value = try await group.next()
                #expect(value?.value == "v1" && value?.isStale == false)
            }
        }
    }

    @Test func timedOutFactoryWithoutBackgroundCompletionIsDiscarded() async throws {
        let cache = try makeCache(clock: clock)
        var configured = failSafeOptions(duration: .seconds(10))
        configured.factorySoftTimeout = .milliseconds(100)
        configured.allowTimedOutFactoryBackgroundCompletion = false
        let options = configured
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        let gate = Gate()
        let finished = CallCounter()
        try await withRunning([cache], clock: clock) {
            try await withThrowingTaskGroup(of: CacheResult<String>.self) { group in
                group.addTask {
                    try await cache.getOrSetResult("k", as: String.self, options: options) { _ in
                        await gate.wait()
                        finished.increment()
                        return "v2"
                    }
                }
                #expect(await clock.waitForSleepers(atLeast: 2))
                clock.advance(by: .milliseconds(100))
                let next = try await group.next()
                #expect(next?.isStale == true)
            }
            gate.open()
            // The stale value stays: the timed-out factory's result is not stored.
            for _ in 0..<100 { await Task.yield() }
            let value = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "unused" }
            #expect(value.value == "v1" && value.isStale)
        }
    }

    @Test func eagerRefreshReturnsAtOnceAndRefreshesOnce() async throws {
        let cache = try makeCache(clock: clock)
        var configured = CacheEntryOptions(duration: .seconds(10))
        configured.eagerRefreshThreshold = 0.5
        let options = configured
        let calls = CallCounter()
        try await withRunning([cache], clock: clock) {
            _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in calls.increment() }
            clock.advance(by: .seconds(6))
            let gate = Gate()
            for _ in 0..<5 {
                let hit = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in await gate.wait(); return calls.increment() }
                #expect(hit.value == 1 && hit.source == .memory)
            }
            gate.open()
            #expect(await eventually(pollingEvery: .zero) { (try? await cache.getResult("k", as: Int.self))?.value == 2 })
            #expect(calls.count == 2)
        }
    }

    @Test func withoutEagerRefreshNoBackgroundCall() async throws {
        let cache = try makeCache(clock: clock)
        let options = CacheEntryOptions(duration: .seconds(10))
        let calls = CallCounter()
        try await withRunning([cache], clock: clock) {
            _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in calls.increment() }
            clock.advance(by: .seconds(9))
            _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in calls.increment() }
            for _ in 0..<100 { await Task.yield() }
            #expect(calls.count == 1)
        }
    }

    @Test(arguments: [false, true])
    func thousandConcurrentColdCallsMakeOneL2ReadAndOneFactoryCall(running: Bool) async throws {
        let store = InMemoryCacheStore()
        let cache = try makeCache(clock: clock, store: store)
        let calls = CallCounter()
        let gate = Gate()
        let work: @Sendable () async throws -> Void = {
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<1000 {
                    group.addTask {
                        try await cache.getOrSetResult("cold", as: String.self) { _ in
                            calls.increment()
                            await gate.wait()
                            return "value"
                        }.value
                    }
                }
                #expect(await eventually(pollingEvery: .zero) { calls.count == 1 })
                gate.open()
                for try await value in group { #expect(value == "value") }
            }
        }
        if running { try await withRunning([cache], clock: clock, work) } else { try await work() }
        #expect(calls.count == 1)
        #expect(store.snapshot.reads == 1)
    }

    @Test func aCancelledCallerDoesNotCancelTheFlightForOthers() async throws {
        let cache = try makeCache(clock: clock)
        let gate = Gate()
        let calls = CallCounter()
        for running in [true, false] {
            let key = "k-\(running)"
            let work: @Sendable () async throws -> Void = {
                let leader = Task {
                    try await cache.getOrSetResult(key, as: String.self) { _ in
                        calls.increment()
                        await gate.wait()
                        return "v"
                    }
                }
                #expect(await eventually(pollingEvery: .zero) { calls.count >= 1 })
                async let follower = cache.getOrSetResult(key, as: String.self) { _ in
                    calls.increment()
                    return "v"
                }
                for _ in 0..<50 { await Task.yield() }
                leader.cancel()
                gate.open()
                let followerValue = try await follower.value
                #expect(followerValue == "v")
                _ = try? await leader.value
            }
            if running { try await withRunning([cache], clock: clock, work) } else { try await work() }
        }
    }

    @Test func factoryContextSeesStaleValueAndCanAdaptOptions() async throws {
        let cache = try makeCache(clock: clock)
        let options = failSafeOptions(duration: .seconds(10))
        _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { context in
            #expect(context.staleValue == nil)
            context.options.duration = .seconds(100) // adaptive: long-lived value
            return 1
        }
        clock.advance(by: .seconds(50))
        #expect(try await cache.getResult("k", as: Int.self)?.value == 1)
        clock.advance(by: .seconds(51))
        let seen = try await cache.getOrSetResult("k", as: Int.self, options: options) { context in
            #expect(context.staleValue == 1)
            return 2
        }
        #expect(seen.value == 2)
    }

    @Test func notModifiedKeepsTheStaleValueAndRenewsIt() async throws {
        let cache = try makeCache(clock: clock)
        let options = failSafeOptions(duration: .seconds(10))
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        let renewed = try await cache.getOrSetResult("k", as: String.self, options: options) { context in try context.notModified() }
        #expect(renewed.value == "v1" && !renewed.isStale && renewed.source == .factory)
        clock.advance(by: .seconds(9))
        let calls = CallCounter()
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in calls.increment(); return "v2" }
        #expect(calls.count == 0)
        await #expect(throws: CacheError.self) {
            try await cache.getOrSetResult("fresh-key", as: String.self) { context in try context.notModified() }
        }
    }

    @Test func eventsReportHitsMissesAndFailSafe() async throws {
        let cache = try makeCache(clock: clock)
        let events = cache.events()
        let options = failSafeOptions(duration: .seconds(1))
        _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in 1 }
        _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in 1 }
        clock.advance(by: .seconds(2))
        _ = try await cache.getOrSetResult("k", as: Int.self, options: options) { _ in throw TestFailure() }
        var seen: [CacheEvent] = []
        for await event in events {
            seen.append(event)
            if case .failSafeActivated = event { break }
        }
        #expect(seen.contains(.miss(key: "k")))
        #expect(seen.contains(.factoryCalled(key: "k")))
        #expect(seen.contains(.hit(key: "k", source: .memory, stale: false)))
        #expect(seen.contains(.failSafeActivated(key: "k")))
    }
}

@Suite("HybridCache, absent values")
struct HybridCacheAbsentValueTests {
    let clock = ManualClock()

    @Test func aFactoryThatSaysNotFoundIsNeitherAnErrorNorServedStale() async throws {
        let cache = try makeCache(clock: clock)
        let options = failSafeOptions(duration: .seconds(10))
        _ = try await cache.getOrSetResult("k", as: String.self, options: options) { _ in "v1" }
        clock.advance(by: .seconds(11))
        await #expect { try await cache.getOrSetResult("k", as: String.self, options: options) { _ in
            throw CacheError(.notFound, "row deleted")
        } } throws: { ($0 as? CacheError)?.code == .notFound }
        #expect(cache.statistics.factory.errors == 0)
        #expect(cache.statistics.staleServed == 0)
        // The stale copy is gone: a failing source now has nothing to fall back on.
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSetResult("k", as: String.self, options: options) { _ in throw TestFailure() }
        }
    }

    @Test func statisticsEncodeANullEpochBeforeTheFirstSynchronization() throws {
        let cache = try makeCache(clock: clock)
        let json = String(decoding: try JSONCacheSerializer().serialize(cache.statistics), as: UTF8.self)
        #expect(json.contains(#""epoch":null"#))
    }

    @Test func nonPositiveMemoryBoundsAreRejected() {
        var configuration = HybridCacheConfiguration()
        configuration.memory.maxEntries = 0
        #expect(throws: CacheError.self) { try HybridCache(configuration: configuration) }
    }
}
