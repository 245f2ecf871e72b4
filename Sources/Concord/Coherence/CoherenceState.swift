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
