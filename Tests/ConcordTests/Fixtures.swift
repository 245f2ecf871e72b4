import Concord
import Logging
import ConcordTesting
import Synchronization
import Testing

/// A door a test factory waits behind until the test opens it. Waiting ends early when the
/// waiting task is cancelled, as a well-behaved factory's I/O would.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let proceed = state.withLock { state in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if proceed { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

/// Counts calls from concurrent tasks.
final class CallCounter: Sendable {
    private let value = Atomic<Int>(0)
    @discardableResult
    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
    var count: Int { value.load(ordering: .relaxed) }
}

struct TestFailure: Error, Equatable {
    var message = "injected"
}

/// Options with fail-safe on and short, round durations.
func failSafeOptions(duration: Duration = .seconds(10)) -> CacheEntryOptions {
    var configured = CacheEntryOptions(duration: duration)
    configured.isFailSafeEnabled = true
    configured.failSafeMaxDuration = .seconds(3600)
    configured.failSafeThrottleDuration = .seconds(30)
    let options = configured
    return options
}

func makeCache(
    node: String = "n1",
    clock: ManualClock,
    store: InMemoryCacheStore? = nil,
    distributed: (any DistributedCache)? = nil,
    backplane: (any Backplane)? = nil,
    configure: (inout HybridCacheConfiguration) -> Void = { _ in }
) throws -> HybridCache {
    var configuration = HybridCacheConfiguration(cacheName: "test", nodeID: node)
    configure(&configuration)
    let l2 = distributed ?? store.map { InMemoryDistributedCache(store: $0) }
    return try HybridCache(configuration: configuration, distributed: l2, backplane: backplane, clock: clock, logger: quietLogger)
}

/// Runs the caches' `run()` while `body` runs, then cancels them. Waits first until each
/// cache's background loops have armed their timers on the manual clock.
func withRunning<T: Sendable>(
    _ caches: [HybridCache],
    clock: ManualClock,
    sleepersPerCache: Int = 1,
    _ body: @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for cache in caches {
            group.addTask { try await cache.run() }
        }
        let armed = await clock.waitForSleepers(atLeast: caches.count * sleepersPerCache)
        #expect(armed, "background loops did not start")
        let result = try await body()
        group.cancelAll()
        return result
    }
}

/// Tests log only errors, so a failing test's output stays readable.
let quietLogger: Logger = {
    var logger = Logger(label: "concord.test")
    logger.logLevel = .error
    return logger
}()
