import Concord

/// A clock whose wall time runs `offset` away from its base clock's, monotonic time unchanged:
/// the test-only `--test-clock-offset`, so the chaos harness can run one node with a skewed
/// clock (its versions and logical expiries shift, its timeouts do not).
struct OffsetWallClock: CacheClock {
    let base: any CacheClock
    let offsetMilliseconds: Int64

    init(base: any CacheClock, offset: Duration) {
        self.base = base
        self.offsetMilliseconds = offset.millisecondsClamped
    }

    func now() -> CacheInstant { base.now() }

    func coarseNow() -> CacheInstant { base.coarseNow() }

    func wallClockMilliseconds() -> Int64 {
        let (value, overflow) = base.wallClockMilliseconds().addingReportingOverflow(offsetMilliseconds)
        return overflow ? (offsetMilliseconds < 0 ? .min : .max) : value
    }

    func sleep(until deadline: CacheInstant) async throws {
        try await base.sleep(until: deadline)
    }
}
