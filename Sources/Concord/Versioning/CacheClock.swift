#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The source of time for a cache: a monotonic instant for expiry and a wall clock for versions.
///
/// Injected so that tests control time instead of sleeping.
public protocol CacheClock: Sendable {
    /// Monotonic time, for expiry, timeouts and backoff.
    func now() -> CacheInstant
    /// `now()`, or a cheaper reading of the same timeline that may lag it by a small bound and
    /// never runs ahead of it. The L1 hit path reads this, since a precise read can cost more
    /// than the rest of a hit. The default is `now()`, so a clock that does not implement it
    /// (a test's manual clock) keeps the hit path exact.
    func coarseNow() -> CacheInstant
    /// Milliseconds since the Unix epoch, for the physical part of hybrid logical clock versions
    /// and for the logical expiry stored in L2, which other nodes read.
    func wallClockMilliseconds() -> Int64
    /// Suspends until `deadline` or until the task is cancelled (then throws `CancellationError`).
    func sleep(until deadline: CacheInstant) async throws
}

extension CacheClock {
    public func coarseNow() -> CacheInstant {
        now()
    }

    /// Suspends for `duration`.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now() + duration)
    }
}
