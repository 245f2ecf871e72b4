/// A point on a monotonic timeline, in nanoseconds from an arbitrary origin.
public struct CacheInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = CacheInstant(nanoseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        CacheInstant(nanoseconds: lhs.nanoseconds &+ rhs.nanosecondsClamped)
    }

    public static func - (lhs: Self, rhs: Duration) -> Self {
        CacheInstant(nanoseconds: lhs.nanoseconds &- rhs.nanosecondsClamped)
    }

    public static func - (lhs: Self, rhs: Self) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    public var description: String { "CacheInstant(\(nanoseconds)ns)" }
}

extension Duration {
    /// This duration in nanoseconds, clamped to the range of `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (secondsNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = secondsNanos.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// This duration in whole milliseconds, clamped to the range of `Int64`.
    public var millisecondsClamped: Int64 { nanosecondsClamped / 1_000_000 }
}
