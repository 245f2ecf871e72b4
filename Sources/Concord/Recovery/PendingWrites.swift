import Synchronization

/// L2 writes waiting to be applied: background writes, and writes made while Redis was
/// unreachable (auto-recovery). Keeps the newest version per key, bounded in entries and bytes.
///
/// A write reserves its room before anything of it is applied, and holds it while it is tried
/// against L2: so when the queue is full the write is refused whole (`writeQueueFull`), and a
/// write already acknowledged is never pushed out to make room. Origin fills
/// are droppable: they take room only if there is some, and give theirs up to a write.
final class PendingWrites: Sendable {
    /// Room held for one mutation between its admission and its outcome.
    struct Reservation: Sendable {
        let bytes: Int
        /// False for a droppable mutation admitted without room.
        let isHeld: Bool
        let isDroppable: Bool
        /// The mutation's queue slot and version, unconfirmed until `release` or `enqueue`.
        let slot: String
        let version: CacheVersion
    }

    /// Mutations admitted and being tried against L2, not queued yet: per slot, how many and
    /// the newest version. A read must not take L2's older copy over them either.
    private struct Attempts {
        var count = 0
        var newest: CacheVersion
    }

    private struct State {
        var queue: PendingWriteQueue
        var attempts: [String: Attempts] = [:]
        var recent = RecentMutations()
        var queued = 0
        var flushed = 0
        var superseded = 0
        var refused = 0
        var dropped = 0
        /// Set while the queue is full, so that a full episode logs one warning, not one per key.
        var isFull = false
        /// The newest clear this node has applied: a keyed mutation or tag removal older than it
        /// that fails to land later is superseded, not queued.
        var newestClear: CacheVersion?
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
        let slot = mutation.pendingSlot
        return state.withLock { state in
            if isDroppable {
                let held = state.queue.reserveIfRoom(bytes: bytes)
                Self.beginAttempt(slot: slot, version: mutation.version, in: &state)
                return .admitted(
                    Reservation(bytes: bytes, isHeld: held, isDroppable: true, slot: slot, version: mutation.version),
                    droppedToMakeRoom: [], startsFullEpisode: false
                )
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
            Self.beginAttempt(slot: slot, version: mutation.version, in: &state)
            return .admitted(
                Reservation(bytes: bytes, isHeld: true, isDroppable: false, slot: slot, version: mutation.version),
                droppedToMakeRoom: dropped, startsFullEpisode: first
            )
        }
    }

    private static func beginAttempt(slot: String, version: CacheVersion, in state: inout State) {
        state.recent.append(slot: slot, version: version)
        if var attempts = state.attempts[slot] {
            attempts.count += 1
            if attempts.newest < version { attempts.newest = version }
            state.attempts[slot] = attempts
        } else {
            state.attempts[slot] = Attempts(count: 1, newest: version)
        }
    }

    private static func endAttempt(_ reservation: Reservation, in state: inout State) {
        guard var attempts = state.attempts[reservation.slot] else { return }
        attempts.count -= 1
        state.attempts[reservation.slot] = attempts.count > 0 ? attempts : nil
    }

    /// The mutation reached L2: its room is free again.
    func release(_ reservation: Reservation) {
        state.withLock { state in
            Self.endAttempt(reservation, in: &state)
            state.recent.append(slot: reservation.slot, version: reservation.version)
            guard reservation.isHeld else { return }
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
            Self.endAttempt(reservation, in: &state)
            if reservation.isHeld { state.queue.release(bytes: reservation.bytes) }
            if mutation.kind != .clearRemove, mutation.kind != .clearExpire, let clear = state.newestClear, mutation.version < clear {
                state.superseded += 1
                return .superseded
            }
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
    /// A live mutation landed under a later version than it was admitted with (a rebase):
    /// reads that began before must see that version too.
    func recordLanding(slot: String, version: CacheVersion) {
        state.withLock { $0.recent.append(slot: slot, version: version) }
    }

    func markDone(_ mutation: CacheMutation) {
        state.withLock { state in
            // A read that began before this landed may hold L2's older copy: it must still see it.
            state.recent.append(slot: mutation.pendingSlot, version: mutation.version)
            if state.queue.remove(ifVersion: mutation.version, slot: mutation.pendingSlot) {
                state.flushed += 1
                noteRoom(&state)
            }
        }
    }

    /// A clear or tag removal at `version`, this node's or heard from another, supersedes the
    /// queued mutations older than it that it covers (every one for a clear; the sets carrying
    /// the tag for a tag removal): they are dropped, as L2 supersedes them while its marker
    /// lasts. Kept, one could outlive the marker: when Redis loses it (eviction, a restart; a new
    /// epoch), an older write or fill flushed after that would land fresh in the new epoch, with
    /// nothing left to hide it. Returns how many were dropped.
    @discardableResult
    func dropQueued(supersededBy kind: MutationKind, key: String, version: CacheVersion) -> Int {
        state.withLock { state in
            let removed: Int
            switch kind {
            case .clearRemove, .clearExpire:
                if state.newestClear.map({ $0 < version }) ?? true { state.newestClear = version }
                removed = state.queue.removeAll { $0.kind != .clearRemove && $0.kind != .clearExpire && $0.version < version }
            case .removeTag:
                removed = state.queue.removeAll { $0.kind == .set && $0.version < version && ($0.entry?.tags.contains(key) ?? false) }
            case .set, .remove, .expire:
                removed = 0
            }
            state.superseded += removed
            if removed > 0 { noteRoom(&state) }
            return removed
        }
    }

    /// A full episode ends once half the room is free again.
    private func noteRoom(_ state: inout State) {
        if state.isFull, state.queue.count + state.queue.reservedEntries <= capacity / 2,
           state.queue.bytes + state.queue.reservedBytes <= maxBytes / 2 {
            state.isFull = false
        }
    }

    /// The newest mutation of this node that L2 may not have yet and that concerns an entry of
    /// `key` carrying `tags`: a write, remove or expire of the key, a removal of one of the tags,
    /// or a clear; queued, or admitted and still being tried. An L2 copy older than it is older
    /// than what this node itself did.
    /// The version of this node's client write of `key` still queued for L2, if any (origin
    /// fills left out: they are copies of the origin, not writes only this node holds).
    func queuedWriteVersion(forKey key: String) -> CacheVersion? {
        state.withLock { $0.queue.writeVersion(ofSlot: "k:" + key) }
    }

    /// Marks the start of an L2 read, for `hasOwnMutation(newerThan:…since:)`.
    func readMark() -> UInt64 {
        state.withLock { $0.recent.generation }
    }

    /// Whether this node made a mutation newer than `version` that concerns an entry of `key`
    /// carrying `tags` (a write, remove or expire of the key, a removal of one of the tags, or a
    /// clear) and that an L2 read started at `mark` may not reflect: one still queued or being
    /// tried, or one admitted or landed since the mark (it may have landed after the read). An L2
    /// copy for which this holds is older than what the node itself did.
    func hasOwnMutation(newerThan version: CacheVersion, key: String, tags: [String], since mark: UInt64) -> Bool {
        state.withLock { state in
            if state.recent.generation == mark, state.attempts.isEmpty, state.queue.count == 0 { return false }
            func concerns(_ slot: String) -> Bool {
                slot == "c:" || slot == "k:" + key || (slot.hasPrefix("t:") && tags.contains { "t:" + $0 == slot })
            }
            func isNewer(_ slot: String) -> Bool {
                for candidate in [state.queue.version(ofSlot: slot), state.attempts[slot]?.newest] {
                    if let candidate, candidate > version { return true }
                }
                return false
            }
            if isNewer("k:" + key) || isNewer("c:") || tags.contains(where: { isNewer("t:" + $0) }) { return true }
            switch state.recent.since(mark) {
            case .some(let admitted):
                return admitted.contains { concerns($0.slot) && $0.version > version }
            case .none:
                // More mutations than the window remembers since the read began: assume one.
                return true
            }
        }
    }

    /// Whether this node made any mutation newer than `version` that an L2 write started at
    /// `mark` may have missed: one still queued or being tried, or one admitted or landed since
    /// the mark. What a clear or tag removal asks, as it concerns every key.
    func hasOwnMutation(newerThan version: CacheVersion, since mark: UInt64) -> Bool {
        state.withLock { state in
            if state.recent.generation == mark, state.attempts.isEmpty, state.queue.count == 0 { return false }
            if state.attempts.values.contains(where: { $0.newest > version }) { return true }
            if state.queue.hasVersion(newerThan: version) { return true }
            guard let admitted = state.recent.since(mark) else { return true }
            return admitted.contains { $0.version > version }
        }
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
