/// The one retry helper: runs an operation until it succeeds, sleeping a `RetryBackoff` delay
/// between failures. Every retrying loop of the package goes through it (component
/// supervision, the launchers, script loading, polling helpers), so attempts, delays,
/// cancellation and the final error behave the same everywhere.
package enum Retry {
    /// When to stop retrying.
    package struct Limit: Sendable {
        /// At most this many attempts (nil: no limit).
        package var attempts: Int?
        /// No new attempt starts once this much time has passed since the first (nil: no limit).
        package var duration: Duration?

        package init(attempts: Int? = nil, duration: Duration? = nil) {
            self.attempts = attempts
            self.duration = duration
        }

        /// Until success or cancellation.
        package static var unlimited: Limit { Limit() }
        package static func attempts(_ count: Int) -> Limit { Limit(attempts: count) }
        package static func duration(_ duration: Duration) -> Limit { Limit(duration: duration) }
    }

    /// Calls `operation(attempt)` (attempt counts from 0) until it returns. After a failure that
    /// `isRetryable` accepts, `onFailure` sees it with the delay about to be slept, then `sleep`
    /// waits that delay. Throws the last error once `limit` is reached (the time limit is checked
    /// after each sleep), an error that is not retryable at once, and `CancellationError` when
    /// the task is cancelled. `sleep` and `now` (monotonic time since any origin) are the
    /// caller's clock, so tests with a manual clock drive the retries.
    package static func run<Value>(
        backoff: RetryBackoff,
        limit: Limit = .unlimited,
        sleep: (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        now: (() -> Duration)? = nil,
        isRetryable: (any Error) -> Bool = { _ in true },
        onFailure: (_ error: any Error, _ attempt: Int, _ delay: Duration) -> Void = { _, _, _ in },
        _ operation: (_ attempt: Int) async throws -> Value
    ) async throws -> Value {
        let origin = ContinuousClock.now
        let now = now ?? { ContinuousClock.now - origin }
        var backoff = backoff
        let start = now()
        var attempt = 0
        while true {
            try Task.checkCancellation()
            do {
                return try await operation(attempt)
            } catch {
                if error is CancellationError || !isRetryable(error) { throw error }
                if let attempts = limit.attempts, attempt + 1 >= attempts { throw error }
                let delay = backoff.nextDelay()
                onFailure(error, attempt, delay)
                try await sleep(delay)
                if let duration = limit.duration, now() - start >= duration { throw error }
                attempt += 1
            }
        }
    }

    /// Polls `condition` until it holds, with the backoff's delays in between; false if `limit`
    /// is reached first, the task is cancelled or `condition` throws (an error is an answer,
    /// not a reason to ask again).
    package static func until(
        backoff: RetryBackoff = .fixed(.milliseconds(10)),
        limit: Limit,
        sleep: (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        now: (() -> Duration)? = nil,
        _ condition: () async throws -> Bool
    ) async -> Bool {
        struct NotYet: Error {}
        do {
            try await run(backoff: backoff, limit: limit, sleep: sleep, now: now, isRetryable: { $0 is NotYet }) { _ in
                guard try await condition() else { throw NotYet() }
            }
            return true
        } catch {
            return false
        }
    }
}
