import Concord
import Synchronization

/// A clock that moves only when a test says so. Sleepers wake when `advance` passes their
/// deadline, so tests of timeouts and expiry never sleep for real.
public final class ManualClock: CacheClock {
    private struct Sleeper {
        var deadline: CacheInstant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: CacheInstant
        var wallMilliseconds: Int64
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// A clock at monotonic zero plus one day, and at the given wall time.
    public init(wallMilliseconds: Int64 = 1_800_000_000_000) {
        state = Mutex(State(now: CacheInstant(nanoseconds: 86_400_000_000_000), wallMilliseconds: wallMilliseconds))
    }

    public func now() -> CacheInstant { state.withLock { $0.now } }

    public func wallClockMilliseconds() -> Int64 { state.withLock { $0.wallMilliseconds } }

    public func sleep(until deadline: CacheInstant) async throws {
        let id: UInt64 = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves both clocks forward and wakes every sleeper whose deadline has passed.
    public func advance(by duration: Duration) {
        let due: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.now = state.now + duration
            state.wallMilliseconds += duration.millisecondsClamped
            let dueIDs = state.sleepers.filter { $0.value.deadline <= state.now }.map(\.key)
            return dueIDs.compactMap { state.sleepers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }

    /// Moves only the wall clock, as a node with a skewed clock would see it.
    public func skewWallClock(by milliseconds: Int64) {
        state.withLock { $0.wallMilliseconds += milliseconds }
    }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Waits (by yielding, not by sleeping) until at least `count` tasks sleep on this clock,
    /// so a test can advance time knowing the timer it targets is armed. Gives up after
    /// `limit` of real time and returns false.
    @discardableResult
    public func waitForSleepers(atLeast count: Int, limit: Duration = .seconds(60)) async -> Bool {
        let realClock = ContinuousClock()
        let deadline = realClock.now + limit
        while sleeperCount < count {
            if realClock.now >= deadline { return false }
            await Task.yield()
        }
        return true
    }
}
