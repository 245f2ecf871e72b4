import Synchronization

/// Lets the workload's ordinary mutations run side by side while a clear runs alone: a clear
/// raises every key's version, and a PUT of an older version landing after it would read as a
/// lost clear. Mutations enter shared; a clear waits for those in flight, and new ones wait
/// for the clear. One clear at a time (only one writer clears).
final class MutationGate: Sendable {
    private struct State {
        var shared = 0
        var exclusive = false
        var waitingExclusive: CheckedContinuation<Void, Never>?
        var waitingShared: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func withShared<T>(_ body: () async -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                if state.exclusive || state.waitingExclusive != nil {
                    state.waitingShared.append(continuation)
                    return false
                }
                state.shared += 1
                return true
            }
            if admitted { continuation.resume() }
        }
        let result = await body()
        let clear = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.shared -= 1
            guard state.shared == 0, let waiting = state.waitingExclusive else { return nil }
            state.waitingExclusive = nil
            state.exclusive = true
            return waiting
        }
        clear?.resume()
        return result
    }

    func withExclusive<T>(_ body: () async -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                if state.shared == 0 && !state.exclusive {
                    state.exclusive = true
                    return true
                }
                state.waitingExclusive = continuation
                return false
            }
            if admitted { continuation.resume() }
        }
        let result = await body()
        let released = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.exclusive = false
            let waiting = state.waitingShared
            state.waitingShared = []
            state.shared += waiting.count
            return waiting
        }
        for continuation in released { continuation.resume() }
        return result
    }
}
