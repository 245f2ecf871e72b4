import Concord

/// The waits the Sentinel and Cluster topologies share, polled through `Retry.until`: until a
/// check finds no problem left, or until a lookup finds what it looks for.
enum TopologyWait {
    /// Polls `problem` every `interval` until it returns nil; throws `RedisServerError` naming
    /// `what` and the last problem seen once `timeout` has passed.
    static func untilNoProblem(
        _ what: String, timeout: Duration, every interval: Duration = .milliseconds(100), _ problem: () async -> String?
    ) async throws {
        var last = "not checked"
        let solved = await Retry.until(backoff: .fixed(interval), limit: .duration(timeout)) {
            guard let found = await problem() else { return true }
            last = found
            return false
        }
        try Task.checkCancellation()
        guard solved else { throw RedisServerError("\(what) within \(timeout): \(last)") }
    }

    /// Polls `lookup` every `interval` until it finds a value; throws `RedisServerError(failure)`
    /// once `timeout` has passed.
    static func value<Value>(
        timeout: Duration, every interval: Duration = .milliseconds(50), orFail failure: @autoclosure () -> String,
        _ lookup: () async -> Value?
    ) async throws -> Value {
        var found: Value?
        _ = await Retry.until(backoff: .fixed(interval), limit: .duration(timeout)) {
            found = await lookup()
            return found != nil
        }
        try Task.checkCancellation()
        guard let found else { throw RedisServerError(failure()) }
        return found
    }
}
