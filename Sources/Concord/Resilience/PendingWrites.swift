import Synchronization

/// L2 writes waiting to be applied: background writes, and writes made while Redis was
/// unreachable (auto-recovery). Keeps the newest version per key, bounded in entries and bytes.
///
/// A write reserves its room before anything of it is applied, and holds it while it is tried
/// against L2: so when the queue is full the write is refused whole (`writeQueueFull`), and a
/// write already acknowledged is never pushed out to make room. Expiry markers and origin fills
/// are droppable: they take room only if there is some, and give theirs up to a write.
final class PendingWrites: Sendable {
    /// Room held for one mutation between its admission and its outcome.
    struct Reservation: Sendable {
        let bytes: Int
        /// False for a droppable mutation admitted without room.
        let isHeld: Bool
        let isDroppable: Bool
    }

    private struct State {
        var queue: PendingWriteQueue
        var queued = 0
        var flushed = 0
        var superseded = 0
        var refused = 0
        var dropped = 0
        /// Set while the queue is full, so that a full episode logs one warning, not one per key.
        var isFull = false
    }

    /// Counters since start, and the queue's size now.
    struct Counters: Sendable, Equatable {
        var queued: Int
        var flushed: Int
        var refused: Int
        var dropped: Int
        var depth: Int
        var bytes: Int
    }

    let capacity: Int
    let maxBytes: Int
    private let state: Mutex<State>
    private let wakeUp: AsyncStream<Void>.Continuation
    /// Signals that new work arrived; drained by the flush loop.
    let signals: AsyncStream<Void>

    init(capacity: Int, maxBytes: Int) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        self.state = Mutex(State(queue: PendingWriteQueue(capacity: capacity, maxBytes: maxBytes)))
        (signals, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// What admitting a mutation did.
    enum Admission: Sendable {
        /// Room is held (or, for a droppable mutation, maybe not); `droppedToMakeRoom` are the
        /// droppable mutations given up for it. `startsFullEpisode`: the first drop or refusal
        /// since the queue last had room, worth one warning.
        case admitted(Reservation, droppedToMakeRoom: [CacheMutation], startsFullEpisode: Bool)
        /// No room: the write must be refused before anything of it is applied.
        case refused(startsFullEpisode: Bool)
    }

    /// Reserves room for `mutation` before it is applied; see `Admission`.
    func admit(_ mutation: CacheMutation, isDroppable: Bool) -> Admission {
        let bytes = PendingWriteQueue.weight(of: mutation)
        return state.withLock { state in
            if isDroppable {
                let held = state.queue.reserveIfRoom(bytes: bytes)
                return .admitted(Reservation(bytes: bytes, isHeld: held, isDroppable: true), droppedToMakeRoom: [], startsFullEpisode: false)
            }
            guard let dropped = state.queue.reserve(bytes: bytes) else {
                state.refused += 1
                let first = !state.isFull
                state.isFull = true
                return .refused(startsFullEpisode: first)
            }
            state.dropped += dropped.count
            let first = !dropped.isEmpty && !state.isFull
            if !dropped.isEmpty { state.isFull = true }
            return .admitted(Reservation(bytes: bytes, isHeld: true, isDroppable: false), droppedToMakeRoom: dropped, startsFullEpisode: first)
        }
    }

    /// The mutation reached L2: its room is free again.
    func release(_ reservation: Reservation) {
        guard reservation.isHeld else { return }
        state.withLock { state in
            state.queue.release(bytes: reservation.bytes)
            noteRoom(&state)
        }
    }

    /// What queueing a mutation did.
    enum Outcome: Sendable, Equatable {
        case queued
        case superseded
        /// A droppable mutation found no room (counted); `startsFullEpisode` as for `Admission`.
        case dropped(startsFullEpisode: Bool)
    }

    /// Queues a mutation that L2 has not taken (yet), in the room its reservation held.
    @discardableResult
    func enqueue(_ mutation: CacheMutation, target: WriteTarget, reservation: Reservation) -> Outcome {
        let outcome: Outcome = state.withLock { state in
            if reservation.isHeld { state.queue.release(bytes: reservation.bytes) }
            let item = PendingWriteQueue.Item(mutation: mutation, target: target, bytes: reservation.bytes, isDroppable: reservation.isDroppable)
            switch state.queue.insert(item, reserved: reservation.isHeld) {
            case .queued:
                state.queued += 1
                return .queued
            case .superseded:
                state.superseded += 1
                return .superseded
            case .dropped:
                state.dropped += 1
                let first = !state.isFull
                state.isFull = true
                return .dropped(startsFullEpisode: first)
            }
        }
        if outcome == .queued { wakeUp.yield() }
        return outcome
    }

    /// Up to `limit` pending writes, writes before droppable ones, each oldest first (they stay
    /// queued until `markDone`).
    func batch(limit: Int) -> [(mutation: CacheMutation, target: WriteTarget)] {
        state.withLock { state in state.queue.batch(limit: limit).map { ($0.mutation, $0.target) } }
    }

    /// Removes a write once applied, unless a newer one replaced it meanwhile.
    func markDone(_ mutation: CacheMutation) {
        state.withLock { state in
            if state.queue.remove(ifVersion: mutation.version, slot: mutation.pendingSlot) {
                state.flushed += 1
                noteRoom(&state)
            }
        }
    }

    /// A full episode ends once half the room is free again.
    private func noteRoom(_ state: inout State) {
        if state.isFull, state.queue.count + state.queue.reservedEntries <= capacity / 2,
           state.queue.bytes + state.queue.reservedBytes <= maxBytes / 2 {
            state.isFull = false
        }
    }

    /// The version of the write still waiting for `key`, if any: L2 does not have it yet, so
    /// this node's copy is newer than whatever L2 answers.
    func pendingVersion(forKey key: String) -> CacheVersion? {
        state.withLock { $0.queue.version(ofSlot: "k:" + key) }
    }

    var count: Int { state.withLock { $0.queue.count } }

    var isEmpty: Bool { count == 0 }

    var counters: Counters {
        state.withLock { state in
            Counters(queued: state.queued, flushed: state.flushed, refused: state.refused, dropped: state.dropped,
                     depth: state.queue.count, bytes: state.queue.bytes)
        }
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
