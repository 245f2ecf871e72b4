/// Capped exponential backoff with full jitter: after n consecutive failures the next delay is
/// uniform in `0...min(cap, base * 2^n)`, which spreads the retries of many nodes apart after a
/// shared outage instead of having them retry in lock-step. The one backoff of the package:
/// reconnection, component supervision, pending-write flushes, coherence resynchronization and
/// the launchers all use it. `fixed` gives a constant delay, for polling a condition.
package struct RetryBackoff: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration
    /// Whether delays are drawn from `0...ceiling` (true) or are the ceiling itself.
    package var isJittered: Bool
    /// Consecutive failures so far.
    package private(set) var attempt: Int = 0

    package init(base: Duration, cap: Duration) {
        self.base = max(base, .zero)
        self.cap = max(cap, .zero)
        self.isJittered = true
    }

    /// The same delay after every failure, without jitter.
    package static func fixed(_ delay: Duration) -> RetryBackoff {
        var backoff = RetryBackoff(base: delay, cap: delay)
        backoff.isJittered = false
        return backoff
    }

    /// The largest delay after `attempt` consecutive failures (0 = the first retry).
    package func upperBound(attempt: Int) -> Duration {
        let baseNanos = base.nanosecondsClamped
        let capNanos = cap.nanosecondsClamped
        guard baseNanos > 0 else { return .zero }
        // Stop doubling once past the cap; this also keeps the doubling from overflowing.
        var bound = baseNanos
        var step = 0
        while step < max(attempt, 0), bound < capNanos {
            let (doubled, overflow) = bound.multipliedReportingOverflow(by: 2)
            bound = overflow ? Int64.max : doubled
            step += 1
        }
        return .nanoseconds(min(bound, capNanos))
    }

    /// The delay after `attempt` consecutive failures, drawn from `random`; no state changes.
    package func delay(attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let upper = upperBound(attempt: attempt).nanosecondsClamped
        guard upper > 0 else { return .zero }
        guard isJittered else { return .nanoseconds(upper) }
        return .nanoseconds(Int64.random(in: 0...upper, using: &random))
    }

    /// The upper bound of the next delay.
    package var currentCeiling: Duration { upperBound(attempt: attempt) }

    /// The next delay, drawn from `generator`; counts one more failure.
    package mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        let delay = delay(attempt: attempt, using: &generator)
        attempt += 1
        return delay
    }

    /// The next delay, with the system generator.
    package mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// Back to the first step after a success.
    package mutating func reset() { attempt = 0 }
}
