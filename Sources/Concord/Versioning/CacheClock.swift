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
    /// Milliseconds since the Unix epoch, for the physical part of hybrid logical clock versions
    /// and for the logical expiry stored in L2, which other nodes read.
    func wallClockMilliseconds() -> Int64
    /// Suspends until `deadline` or until the task is cancelled (then throws `CancellationError`).
    func sleep(until deadline: CacheInstant) async throws
}

extension CacheClock {
    /// Suspends for `duration`.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now() + duration)
    }
}

/// The real clock: `CLOCK_MONOTONIC` and `CLOCK_REALTIME`.
public struct SystemCacheClock: CacheClock {
    public init() {}

    @inline(__always)
    public func now() -> CacheInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return CacheInstant(nanoseconds: Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec))
    }

    public func wallClockMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) &* 1000 &+ Int64(spec.tv_nsec) / 1_000_000
    }

    public func sleep(until deadline: CacheInstant) async throws {
        let remaining = deadline - now()
        if remaining > .zero {
            try await Task.sleep(for: remaining)
        } else {
            try Task.checkCancellation()
        }
    }
}
