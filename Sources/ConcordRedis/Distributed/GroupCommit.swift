import Synchronization

/// Group commit of writes that go through one serial step (the L2 write script): while one
/// send is in flight, further writes queue; when it completes, the queued writes go out together
/// as ONE send, bounded by `maxCount` writes and `maxBytes` bytes. Each caller still gets its own
/// outcome, and only once its own write has been answered.
///
/// No task of its own: the caller whose send completes hands the next batch to the first
/// queued caller, which sends it for everyone in it (leader hand-off). So a batch goes out one
/// wake-up after the previous one is answered, and nothing is left waiting when no `run()` is
/// active. A caller alone sends its write at once, without queueing.
final class GroupCommit<Write: Sendable, Outcome: Sendable>: Sendable {
    /// Sends a batch in order and returns one result per write, in the same order.
    typealias Send = @Sendable ([Write]) async -> [Result<Outcome, any Error>]

    let maxCount: Int
    let maxBytes: Int
    private let send: Send
    private let state = Mutex(State())

    private struct Waiter: Sendable {
        let id: UInt64
        let write: Write
        let bytes: Int
        /// Unsafe, not checked: a checked continuation allocates a box per queued write. Each
        /// is resumed exactly once, by whoever takes its waiter out of the queue under the lock.
        let continuation: UnsafeContinuation<Turn, Never>
    }

    /// What a queued caller is woken for.
    private enum Turn: Sendable {
        /// Its write was answered.
        case done(Result<Outcome, any Error>)
        /// It sends the next batch: its own write first, then these.
        case lead([Waiter])
    }

    private struct State: ~Copyable {
        var isSending = false
        var queue: [Waiter] = []
        var nextID: UInt64 = 0
    }

    /// `maxCount` and `maxBytes` bound a batch; a single write larger than `maxBytes` goes alone.
    init(maxCount: Int, maxBytes: Int, send: @escaping Send) {
        self.maxCount = max(1, maxCount)
        self.maxBytes = max(0, maxBytes)
        self.send = send
    }

    /// Writes queued behind the send in flight (for tests and metrics).
    var queuedCount: Int { state.withLock { $0.queue.count } }

    /// Whether a send is in flight.
    var isSending: Bool { state.withLock { $0.isSending } }

    /// Sends `write` (`bytes` long, for the batch bound) alone or in the next batch, and returns
    /// its own outcome. A caller cancelled while still queued leaves the queue and throws
    /// `CancellationError` without its write being sent.
    func submit(_ write: Write, bytes: Int) async throws -> Outcome {
        // nil: nothing is in flight, so this caller sends at once.
        let queueID: UInt64? = state.withLock { state in
            guard state.isSending else {
                state.isSending = true
                return nil
            }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id = queueID else { return try await lead(write, with: []) }
        let turn: Turn = await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let immediate: Turn? = state.withLock { state in
                    if Task.isCancelled { return .done(.failure(CancellationError())) }
                    if !state.isSending {
                        state.isSending = true
                        return .lead([])
                    }
                    state.queue.append(Waiter(id: id, write: write, bytes: bytes, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let removed: Waiter? = state.withLock { state in
                guard let index = state.queue.firstIndex(where: { $0.id == id }) else { return nil }
                return state.queue.remove(at: index)
            }
            removed?.continuation.resume(returning: .done(.failure(CancellationError())))
        }
        switch turn {
        case .done(let result): return try result.get()
        case .lead(let others): return try await lead(write, with: others)
        }
    }

    /// Sends `write` and `others` as one batch, passes the turn on, then answers `others`.
    private func lead(_ write: Write, with others: [Waiter]) async throws -> Outcome {
        if Task.isCancelled, let next = others.first {
            // This caller gave up; its cancellation must not fail writes of callers that did not.
            next.continuation.resume(returning: .lead(Array(others.dropFirst())))
            throw CancellationError()
        }
        // A loop, not `map(\.write)`: in this generic type a key path is instantiated at run
        // time on every call (metadata lookups and demangling, ~5% of a lone RESP SET's CPU).
        var writes: [Write] = []
        writes.reserveCapacity(1 + others.count)
        writes.append(write)
        for other in others { writes.append(other.write) }
        var results = await send(writes)
        if results.count != writes.count {
            // A defect of the sender, reported to every caller rather than trapping.
            let error = RedisError(.protocolError, "a batch of \(writes.count) writes was answered with \(results.count) results")
            results = Array(repeating: .failure(error), count: writes.count)
        }
        // The next batch goes out before this one's callers are woken, to keep the step busy.
        if let (leader, rest) = takeNextBatch() {
            leader.continuation.resume(returning: .lead(rest))
        }
        for (waiter, result) in zip(others, results.dropFirst()) {
            waiter.continuation.resume(returning: .done(result))
        }
        return try results[0].get()
    }

    /// The queued callers of the next batch, oldest first, within the bounds; nil when none is
    /// queued (the step is then idle again).
    private func takeNextBatch() -> (Waiter, [Waiter])? {
        state.withLock { state in
            guard let first = state.queue.first else {
                state.isSending = false
                return nil
            }
            var count = 1
            var bytes = first.bytes
            while count < state.queue.count, count < maxCount {
                let candidate = state.queue[count].bytes
                if bytes + candidate > maxBytes { break }
                bytes += candidate
                count += 1
            }
            let batch = Array(state.queue[1..<count])
            state.queue.removeFirst(count)
            return (first, batch)
        }
    }
}
