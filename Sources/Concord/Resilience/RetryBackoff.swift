/// Capped exponential backoff with full jitter: the n-th delay is uniform in
/// `0...min(cap, base * 2^n)`, which spreads retries of many nodes apart.
package struct RetryBackoff: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration
    /// Consecutive failures so far.
    package private(set) var attempt: Int = 0

    package init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// The upper bound of the next delay.
    package var currentCeiling: Duration {
        let shift = min(attempt, 30)
        let scaled = base * (1 << shift)
        return min(cap, scaled)
    }

    /// The next delay, drawn from `generator`; counts one more failure.
    package mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = currentCeiling.nanosecondsClamped
        attempt += 1
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling, using: &generator))
    }

    /// The next delay, with the system generator.
    package mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// Back to the first step after a success.
    package mutating func reset() { attempt = 0 }
}
