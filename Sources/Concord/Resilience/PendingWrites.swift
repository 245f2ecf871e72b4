import Synchronization

/// L2 writes waiting to be applied: background writes, and writes made while Redis was
/// unreachable (auto-recovery). Keeps the newest version per key; bounded, and when full drops
/// the oldest pending write and counts it.
final class PendingWrites: Sendable {
    private struct Pending {
        var mutation: CacheMutation
        var target: WriteTarget
        var order: UInt64
    }

    private struct State {
        var bySlot: [String: Pending] = [:]
        var nextOrder: UInt64 = 0
        var queued = 0
        var flushed = 0
        var overflowed = 0
        var superseded = 0
    }

    let capacity: Int
    private let state = Mutex(State())
    private let wakeUp: AsyncStream<Void>.Continuation
    /// Signals that new work arrived; drained by the flush loop.
    let signals: AsyncStream<Void>

    init(capacity: Int) {
        self.capacity = capacity
        (signals, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a mutation. Returns the mutation dropped to make room, if any.
    @discardableResult
    func enqueue(_ mutation: CacheMutation, target: WriteTarget) -> CacheMutation? {
        let dropped: CacheMutation? = state.withLock { state in
            let slot = mutation.pendingSlot
            if let existing = state.bySlot[slot] {
                // Only the newest version per key matters: an older queued write is superseded.
                guard existing.mutation.version < mutation.version else {
                    state.superseded += 1
                    return nil
                }
                state.superseded += 1
                state.bySlot[slot] = Pending(mutation: mutation, target: target, order: state.nextOrder)
                state.nextOrder += 1
                return nil
            }
            var dropped: CacheMutation?
            if state.bySlot.count >= capacity,
               let oldest = state.bySlot.min(by: { $0.value.order < $1.value.order }) {
                state.bySlot[oldest.key] = nil
                state.overflowed += 1
                dropped = oldest.value.mutation
            }
            state.bySlot[slot] = Pending(mutation: mutation, target: target, order: state.nextOrder)
            state.nextOrder += 1
            state.queued += 1
            return dropped
        }
        wakeUp.yield()
        return dropped
    }

    /// Up to `limit` pending writes, oldest first (they stay queued until `markDone`).
    func batch(limit: Int) -> [(mutation: CacheMutation, target: WriteTarget)] {
        state.withLock { state in
            state.bySlot.values.sorted { $0.order < $1.order }.prefix(limit).map { ($0.mutation, $0.target) }
        }
    }

    /// Removes a write once applied, unless a newer one replaced it meanwhile.
    func markDone(_ mutation: CacheMutation) {
        state.withLock { state in
            let slot = mutation.pendingSlot
            if let existing = state.bySlot[slot], existing.mutation.version == mutation.version {
                state.bySlot[slot] = nil
                state.flushed += 1
            }
        }
    }

    /// The version of the write still waiting for `key`, if any: L2 does not have it yet, so
    /// this node's copy is newer than whatever L2 answers.
    func pendingVersion(forKey key: String) -> CacheVersion? {
        state.withLock { $0.bySlot["k:" + key]?.mutation.version }
    }

    var count: Int { state.withLock { $0.bySlot.count } }

    var isEmpty: Bool { count == 0 }

    /// Counters since start: queued, flushed, overflowed.
    var counters: (queued: Int, flushed: Int, overflowed: Int, depth: Int) {
        state.withLock { ($0.queued, $0.flushed, $0.overflowed, $0.bySlot.count) }
    }

    func finish() { wakeUp.finish() }

    private let retryNow = Mutex(Promise<Void>())

    /// Waits until `retry()` is called or the task is cancelled: lets a flush loop sleeping out
    /// its backoff try again as soon as Redis is known to be back.
    func waitForRetry() async throws {
        let signal = retryNow.withLock { $0 }
        try await signal.wait()
    }

    /// Wakes a flush loop waiting in `waitForRetry()`.
    func retry() {
        let fired = retryNow.withLock { current in
            defer { current = Promise<Void>() }
            return current
        }
        fired.complete(.success(()))
    }
}

/// Where a mutation goes: L2 (announcing it or not), or the backplane alone when there is no L2.
enum WriteTarget: Sendable, Equatable {
    case distributed(publish: Bool)
    case backplaneOnly
}
