import Synchronization

/// Hands work to the task group inside `HybridCache.run()`, so background factories, eager
/// refreshes and writes are structured children of the cache's service task.
final class BackgroundRunner: Sendable {
    typealias Job = @Sendable () async -> Void

    private struct State {
        var continuation: AsyncStream<Job>.Continuation?
    }

    private let state = Mutex(State())

    init() {}

    /// Whether `run()` is active and accepts work.
    var isRunning: Bool { state.withLock { $0.continuation != nil } }

    /// Queues a job; false when `run()` is not active (the caller then does the work inline or skips it).
    func submit(_ job: @escaping Job) -> Bool {
        guard let continuation = state.withLock({ $0.continuation }) else { return false }
        if case .enqueued = continuation.yield(job) { return true }
        return false
    }

    /// Opens the job stream; returns nil if one is already open (run() called twice).
    func open() -> AsyncStream<Job>? {
        state.withLock { state in
            guard state.continuation == nil else { return nil }
            let (stream, continuation) = AsyncStream<Job>.makeStream()
            state.continuation = continuation
            return stream
        }
    }

    /// Stops accepting work; the open stream ends after the queued jobs.
    func close() {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.finish()
    }
}
