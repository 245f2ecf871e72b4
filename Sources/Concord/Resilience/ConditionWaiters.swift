import Synchronization

/// Tasks waiting for a condition on the cache's state (ready, for one) to hold. Whoever changes
/// that state calls `wakeAll()`; each waiter then checks its condition again. A waiter is
/// registered before it checks, so a change between the check and the wait is never missed.
final class ConditionWaiters: Sendable {
    private struct State {
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Returns once `condition` holds, or when the task is cancelled.
    func wait(until condition: @Sendable () -> Bool) async {
        while !condition(), !Task.isCancelled {
            await waitForChange(unless: condition)
        }
    }

    /// Wakes every waiter to check its condition again.
    func wakeAll() {
        let woken = state.withLock { state in
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    private func waitForChange(unless condition: @Sendable () -> Bool) async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                state.withLock { $0.waiters[id] = continuation }
                if condition() || Task.isCancelled {
                    let mine = state.withLock { $0.waiters.removeValue(forKey: id) }
                    mine?.resume()
                }
            }
        } onCancel: {
            let mine = state.withLock { $0.waiters.removeValue(forKey: id) }
            mine?.resume()
        }
    }
}
