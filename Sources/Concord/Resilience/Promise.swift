import Synchronization

/// A one-shot result that many tasks can wait for. A waiter that is cancelled stops waiting
/// and gets `CancellationError`; the others, and whoever completes the promise, are unaffected.
final class Promise<Value: Sendable>: Sendable {
    private enum State {
        case pending(waiters: [UInt64: CheckedContinuation<Result<Value, any Error>, Never>], nextID: UInt64)
        case done(Result<Value, any Error>)
    }

    private let state = Mutex<State>(.pending(waiters: [:], nextID: 0))

    init() {}

    /// Completes the promise; false if it was already complete.
    @discardableResult
    func complete(_ result: Result<Value, any Error>) -> Bool {
        let waiters: [CheckedContinuation<Result<Value, any Error>, Never>]? = state.withLock { state in
            guard case .pending(let waiters, _) = state else { return nil }
            state = .done(result)
            return Array(waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: result) }
        return true
    }

    /// The result, if complete.
    var result: Result<Value, any Error>? {
        state.withLock { state in
            if case .done(let result) = state { return result }
            return nil
        }
    }

    /// Waits for the result. Throws the promise's error, or `CancellationError` if the waiting
    /// task is cancelled.
    func wait() async throws -> Value {
        if let result { return try result.get() }
        let id: UInt64 = state.withLock { state in
            guard case .pending(let waiters, let nextID) = state else { return 0 }
            state = .pending(waiters: waiters, nextID: nextID + 1)
            return nextID
        }
        let result: Result<Value, any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: Result<Value, any Error>? = state.withLock { state in
                    switch state {
                    case .done(let result):
                        return result
                    case .pending(var waiters, let nextID):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[id] = continuation
                        state = .pending(waiters: waiters, nextID: nextID)
                        return nil
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation: CheckedContinuation<Result<Value, any Error>, Never>? = state.withLock { state in
                guard case .pending(var waiters, let nextID) = state else { return nil }
                let continuation = waiters.removeValue(forKey: id)
                state = .pending(waiters: waiters, nextID: nextID)
                return continuation
            }
            continuation?.resume(returning: .failure(CancellationError()))
        }
        return try result.get()
    }
}

/// The outcome of racing an operation against a deadline.
enum DeadlineOutcome<Value: Sendable>: Sendable {
    case value(Value)
    case timedOut
}

/// Runs `operation` until `deadline`. The operation is cancelled at the deadline, so it must
/// honour cancellation; waits on a `Promise` do. With no deadline it simply runs.
func withDeadline<Value: Sendable>(
    _ deadline: CacheInstant?,
    clock: any CacheClock,
    _ operation: @escaping @Sendable () async throws -> Value
) async throws -> DeadlineOutcome<Value> {
    guard let deadline else { return .value(try await operation()) }
    if clock.now() >= deadline { return .timedOut }
    return try await withThrowingTaskGroup(of: DeadlineOutcome<Value>.self) { group in
        group.addTask { .value(try await operation()) }
        group.addTask {
            try await clock.sleep(until: deadline)
            return .timedOut
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { return .timedOut }
        return first
    }
}
