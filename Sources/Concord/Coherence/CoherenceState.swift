/// The receiving side of the coherence protocol: where this node is in the invalidation log.
struct CoherenceState: Sendable {
    /// The Redis dataset the sequence belongs to; nil before the first synchronization.
    var epoch: String?
    /// The last sequence number applied.
    var lastSequence: UInt64 = 0
    /// The write id of the entry at `lastSequence`, when the node knows it: on every
    /// synchronization the log's entry there must be this write, or history went back.
    var lastWriteID: UInt64?
    /// Write ids of recently applied sequence numbers.
    var applied = AppliedWrites()
    /// Subscribed and replayed up to the head.
    var isSynchronized = false
    /// The newest version among the messages applied: after a rollback, every entry Redis
    /// still holds is at most this new (see `expireCopiesOlderThanTheRollback`).
    var newestApplied: CacheVersion?
    /// The node found that Redis went back and has not yet expired the copies that predate it
    /// (`expireCopiesOlderThanTheRollback`): its position has already moved to the new head, so
    /// until then an L2 read counts as expired on this flag alone.
    var isExpiringRollback = false

    /// Where the node stands, for judging an L2 read started now (`ReadFence.isStoreBehind`).
    /// A copy of three fields, not of the state: a read holds it across a round trip, and a
    /// held copy of `applied` would make the loop's next `advance` copy the whole table.
    var readFence: ReadFence {
        ReadFence(epoch: epoch, lastSequence: lastSequence, isExpiringRollback: isExpiringRollback)
    }

    /// The node's position when an L2 read started.
    struct ReadFence: Sendable {
        var epoch: String?
        var lastSequence: UInt64
        var isExpiringRollback: Bool

        /// Whether a read that saw `head` may return a copy older than what the node had
        /// applied when it started: Redis held a head of this epoch below that position (it
        /// went back since), or the node was still expiring a rollback it found.
        func isStoreBehind(_ head: BackplaneHead?) -> Bool {
            if isExpiringRollback { return true }
            guard let head, let epoch, head.epoch == epoch else { return false }
            return head.sequence < lastSequence
        }
    }

    /// Moves to `sequence` without having applied it (a new epoch, a full expiry): the write
    /// there is unknown until the next synchronization reads it.
    mutating func jump(to sequence: UInt64, epoch: String? = nil) {
        if let epoch { self.epoch = epoch }
        lastSequence = sequence
        lastWriteID = nil
        applied.removeAll()
    }

    /// Records an applied message.
    mutating func advance(to sequence: UInt64, writeID: UInt64, version: CacheVersion) {
        if newestApplied.map({ $0 < version }) ?? true { newestApplied = version }
        lastSequence = sequence
        lastWriteID = writeID
        applied.record(writeID, at: sequence)
    }
}
