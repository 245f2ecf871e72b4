#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic nanoseconds for timing measurements: one `clock_gettime`, no `Duration` arithmetic
/// in the measured loops.
enum BenchClock {
    @inline(__always)
    static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds / 1_000_000_000))
    }
}

/// How long a measured loop may run: it stops at whichever bound comes first, so no loop can
/// run away on a slow or overloaded machine.
package struct BenchBudget: Sendable, Equatable {
    package var maxCount: Int
    package var maxDuration: Duration

    package init(maxCount: Int, maxDuration: Duration) {
        self.maxCount = maxCount
        self.maxDuration = maxDuration
    }
}
