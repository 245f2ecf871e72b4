/// Capped exponential backoff with full jitter: attempt n waits a uniform random time in [0, min(cap, base·2ⁿ)].
///
/// Full jitter spreads the reconnects of many nodes after a shared Redis outage instead of
/// having them retry in lock-step.
package struct Backoff: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration

    package init(base: Duration, cap: Duration) {
        self.base = max(base, .zero)
        self.cap = max(cap, .zero)
    }

    /// The largest delay for the given number of consecutive failures so far (0 = first retry).
    package func upperBound(attempt: Int) -> Duration {
        let baseNanos = base.nanoseconds
        let capNanos = cap.nanoseconds
        guard baseNanos > 0 else { return .zero }
        // Stop doubling once past the cap; this also keeps the shift from overflowing.
        var bound = baseNanos
        var step = 0
        while step < max(attempt, 0), bound < capNanos {
            let (doubled, overflow) = bound.multipliedReportingOverflow(by: 2)
            bound = overflow ? Int64.max : doubled
            step += 1
        }
        return .nanoseconds(min(bound, capNanos))
    }

    package func delay<Random: RandomNumberGenerator>(attempt: Int, using random: inout Random) -> Duration {
        let upper = upperBound(attempt: attempt).nanoseconds
        guard upper > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...upper, using: &random))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at Int64.max.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (total, overflow2) = fromSeconds.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? Int64.max : total
    }
}
