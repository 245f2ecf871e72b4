/// A point on the cache's timeline, in nanoseconds from an arbitrary origin.
///
/// The memory cache never reads a clock: every operation is handed the current instant, so
/// expiry is deterministic in tests and one clock read can serve several cache calls. The
/// arithmetic saturates instead of trapping, because "never" is often written as a huge
/// duration and an overflow must not crash a server.
public struct CacheInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// The origin of the timeline.
    public static let zero = CacheInstant(nanoseconds: 0)

    /// An instant later than any a clock will produce; useful as "no deadline".
    public static let distantFuture = CacheInstant(nanoseconds: .max)

    public static func < (lhs: CacheInstant, rhs: CacheInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    public static func + (lhs: CacheInstant, rhs: Duration) -> CacheInstant {
        CacheInstant(nanoseconds: saturatingSum(lhs.nanoseconds, nanoseconds(of: rhs)))
    }

    public static func - (lhs: CacheInstant, rhs: Duration) -> CacheInstant {
        CacheInstant(nanoseconds: saturatingDifference(lhs.nanoseconds, nanoseconds(of: rhs)))
    }

    public static func += (lhs: inout CacheInstant, rhs: Duration) {
        lhs = lhs + rhs
    }

    public static func -= (lhs: inout CacheInstant, rhs: Duration) {
        lhs = lhs - rhs
    }

    /// The duration from `rhs` to `lhs` (negative when `lhs` is earlier).
    public static func - (lhs: CacheInstant, rhs: CacheInstant) -> Duration {
        .nanoseconds(saturatingDifference(lhs.nanoseconds, rhs.nanoseconds))
    }
}

// So that a `Clock` whose `Instant` is `CacheInstant` can be written on top (a manual clock
// for tests, a monotonic one for production).
extension CacheInstant: InstantProtocol {
    public func advanced(by duration: Duration) -> CacheInstant {
        self + duration
    }

    public func duration(to other: CacheInstant) -> Duration {
        other - self
    }
}

extension CacheInstant: CustomStringConvertible {
    public var description: String {
        "CacheInstant(\(nanoseconds)ns)"
    }
}

// Arithmetic shared by the memory cache. Static members rather than extensions on `Int64` and
// `Duration`, so they cannot collide with helpers other files of the module may add.
extension CacheInstant {
    /// `duration` in whole nanoseconds, clamped to the `Int64` range (sub-nanosecond parts
    /// are truncated toward zero).
    @inlinable
    static func nanoseconds(of duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow {
            return seconds < 0 ? .min : .max
        }
        return saturatingSum(scaled, attoseconds / 1_000_000_000)
    }

    @inlinable
    static func saturatingSum(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (sum, overflow) = lhs.addingReportingOverflow(rhs)
        if overflow {
            return rhs > 0 ? .max : .min
        }
        return sum
    }

    @inlinable
    static func saturatingDifference(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (difference, overflow) = lhs.subtractingReportingOverflow(rhs)
        if overflow {
            return rhs < 0 ? .max : .min
        }
        return difference
    }
}
