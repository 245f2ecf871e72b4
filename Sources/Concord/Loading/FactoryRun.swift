import Synchronization

/// A factory call that the caller may stop waiting for (a timeout) while it goes on in the
/// background, or may cancel when background completion is not allowed.
final class FactoryRun<Value: Sendable>: Sendable {
    enum Finish: Equatable { case delivered, abandonedForBackground, discarded }

    private enum State { case running, abandoned(background: Bool), finished }

    let promise = Promise<Result<Value, any Error>>()
    private let cancelSignal = Promise<Void>()
    private let state = Mutex(State.running)

    init() {}

    /// Runs the factory work until it ends or `abandon` cancels it.
    func runCancellable(_ work: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await work() }
            group.addTask { try? await self.cancelSignal.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Records the factory's result; says what to do with it.
    func finish(_ result: Result<Value, any Error>) -> Finish {
        let outcome: Finish = state.withLock { state in
            switch state {
            case .running:
                state = .finished
                return .delivered
            case .abandoned(let background):
                state = .finished
                return background ? .abandonedForBackground : .discarded
            case .finished:
                return .discarded
            }
        }
        promise.complete(.success(result))
        cancelSignal.complete(.success(()))
        return outcome
    }

    /// The caller stops waiting. True if the factory was still running (then it completes in
    /// the background when allowed, or is cancelled); false if it had already finished.
    func abandon(allowBackgroundCompletion: Bool) -> Bool {
        let abandoned: Bool = state.withLock { state in
            guard case .running = state else { return false }
            state = .abandoned(background: allowBackgroundCompletion)
            return true
        }
        if abandoned, !allowBackgroundCompletion { cancelSignal.complete(.success(())) }
        return abandoned
    }
}
