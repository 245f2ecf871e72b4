import NIOCore

extension EventLoopFuture where Value: Sendable {
    /// This future's result, or `ChaosError.timeout` once `timeout` has passed, whichever comes
    /// first, so nothing in the harness can wait on a wedged socket forever.
    func deadline(_ timeout: TimeAmount, _ message: @autoclosure () -> String) -> EventLoopFuture<Value> {
        let promise = eventLoop.makePromise(of: Value.self)
        let settled = SettledFlag()
        let message = message()
        let timer = eventLoop.scheduleTask(in: timeout) {
            guard settled.settle() else { return }
            promise.fail(ChaosError(.timeout, message))
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
