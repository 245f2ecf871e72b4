import NIOCore

extension EventLoopFuture where Value: Sendable {
    /// This future's result, or `error` once `timeout` has passed, whichever comes first, so
    /// nothing waits on a wedged socket forever. `package` because the chaos harness bounds its
    /// proxy shutdown the same way; it is no part of the public API.
    package func deadline(_ timeout: TimeAmount, _ error: @autoclosure () -> any Error) -> EventLoopFuture<Value> {
        let promise = eventLoop.makePromise(of: Value.self)
        let settled = SettledFlag()
        let error = error()
        let timer = eventLoop.scheduleTask(in: timeout) {
            guard settled.settle() else { return }
            promise.fail(error)
        }
        whenComplete { result in
            timer.cancel()
            guard settled.settle() else { return }
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}

/// A once-only switch; both users run on the same event loop, the class only carries it
/// between their closures.
private final class SettledFlag: @unchecked Sendable {
    private var done = false

    func settle() -> Bool {
        if done { return false }
        done = true
        return true
    }
}
