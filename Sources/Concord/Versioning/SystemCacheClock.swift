#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real clock: `CLOCK_MONOTONIC` and `CLOCK_REALTIME`, and `CLOCK_MONOTONIC_COARSE` for
/// `coarseNow()`.
///
/// The coarse clock is the monotonic clock as of the kernel's last tick: a vDSO read of a few
/// nanoseconds where `CLOCK_MONOTONIC` costs 20–30 on a virtual machine without a usable TSC,
/// and never ahead of `now()`. An L1 hit that reads it sees deadlines up to one tick late (an
/// entry is served up to one tick past its freshness or expiry, a hit's idle restart is
/// recorded up to one tick early). The tick (`coarseResolution`) is 1–10 ms on Linux; when the
/// coarse clock is missing or coarser than `maxCoarseResolution`, `coarseNow()` is `now()`.
public struct SystemCacheClock: CacheClock {
    /// The coarsest coarse clock `coarseNow()` will use.
    public static let maxCoarseResolution: Duration = .milliseconds(10)

    /// What `coarseNow()` may lag `now()` by: the coarse clock's resolution when it is used,
    /// zero when `coarseNow()` reads the precise clock.
    public let coarseResolution: Duration

    /// `allowsCoarseReads: false` makes `coarseNow()` precise, for deadlines so short that a
    /// tick matters.
    public init(allowsCoarseReads: Bool = true) {
        coarseResolution = allowsCoarseReads ? Self.usableCoarseResolution() ?? .zero : .zero
    }

    @inline(__always)
    public func now() -> CacheInstant {
        Self.read(CLOCK_MONOTONIC)
    }

    @inline(__always)
    public func coarseNow() -> CacheInstant {
        #if os(Linux)
        if coarseResolution != .zero { return Self.read(CLOCK_MONOTONIC_COARSE) }
        #endif
        return now()
    }

    @inline(__always)
    private static func read(_ clock: clockid_t) -> CacheInstant {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return CacheInstant(nanoseconds: Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec))
    }

    /// The coarse clock's resolution if it exists and is fine enough to use, else nil.
    private static func usableCoarseResolution() -> Duration? {
        #if os(Linux)
        var spec = timespec()
        guard clock_getres(CLOCK_MONOTONIC_COARSE, &spec) == 0 else { return nil }
        let resolution = Duration.seconds(Int64(spec.tv_sec)) + .nanoseconds(Int64(spec.tv_nsec))
        guard resolution > .zero, resolution <= maxCoarseResolution else { return nil }
        return resolution
        #else
        return nil
        #endif
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
