/// A snapshot of a cache's counters, the shape of the node's `GET /v1/stats`.
public struct HybridCacheStatistics: Sendable, Equatable, Codable {
    /// L1 counters.
    public struct Memory: Sendable, Equatable, Codable {
        public var entries = 0
        public var hits = 0
        public var misses = 0
        public var evictions = 0
    }

    /// L2 counters.
    public struct Distributed: Sendable, Equatable, Codable {
        public var hits = 0
        public var misses = 0
        public var errors = 0
        public var corruptEntries = 0
        /// Entries whose version was more than `maxClockDrift` ahead, read as misses.
        public var futureVersions = 0
        /// Writes Redis refused because it was full (`maxmemory` under `noeviction`); they stay
        /// queued and are retried, and each refusal is logged.
        public var outOfMemoryErrors = 0
        /// Writes made now that found a newer version stored by a writer whose clock ran ahead,
        /// and were applied again after it (see `HybridCache.sendLive`).
        public var rebasedWrites = 0
        /// Entries read while Redis held a log head below what this node had applied (it went
        /// back, and the node had not synchronized since): read as expired, never as fresh.
        public var rolledBackReads = 0
    }

    /// Factory counters.
    public struct Factory: Sendable, Equatable, Codable {
        public var calls = 0
        public var errors = 0
        public var timeouts = 0
    }

    /// Backplane counters.
    public struct BackplaneCounters: Sendable, Equatable, Codable {
        public var connected = false
        public var epoch: String?
        public var lastSeq: UInt64 = 0
        public var published = 0
        public var received = 0
        public var gapsDetected = 0
        public var replays = 0
        public var fullExpiries = 0
        public var ignoredMessages = 0
        /// Messages and log entries without a valid signature while a backplane key is set (also
        /// counted in `ignoredMessages`).
        public var unauthenticatedMessages = 0
        /// Messages whose version was more than `maxClockDrift` ahead (also in `ignoredMessages`).
        public var futureVersions = 0
        /// Times the queue from the subscriber to the coherence loop was full and the node
        /// resynchronized from the head instead.
        public var queueOverflows = 0
        /// Times the log at this node's position was not the history it applied (a restore from
        /// an older snapshot, a replica promoted while behind, reused sequence numbers).
        public var rollbacksDetected = 0
        /// Another live process sends messages with this node's id (a copied configuration).
        public var duplicateNodeID = false

        private enum CodingKeys: String, CodingKey {
            case connected, epoch, lastSeq, published, received, gapsDetected, replays, fullExpiries, ignoredMessages
            case unauthenticatedMessages, futureVersions, queueOverflows, rollbacksDetected, duplicateNodeID
        }

        public init() {}

        // Encoded by hand so `epoch` is `null` before the first synchronization rather than absent.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(connected, forKey: .connected)
            try container.encode(epoch, forKey: .epoch)
            try container.encode(lastSeq, forKey: .lastSeq)
            try container.encode(published, forKey: .published)
            try container.encode(received, forKey: .received)
            try container.encode(gapsDetected, forKey: .gapsDetected)
            try container.encode(replays, forKey: .replays)
            try container.encode(fullExpiries, forKey: .fullExpiries)
            try container.encode(ignoredMessages, forKey: .ignoredMessages)
            try container.encode(unauthenticatedMessages, forKey: .unauthenticatedMessages)
            try container.encode(futureVersions, forKey: .futureVersions)
            try container.encode(queueOverflows, forKey: .queueOverflows)
            try container.encode(rollbacksDetected, forKey: .rollbacksDetected)
            try container.encode(duplicateNodeID, forKey: .duplicateNodeID)
        }
    }

    /// Pending-write counters.
    public struct AutoRecovery: Sendable, Equatable, Codable {
        public var queued = 0
        public var flushed = 0
        /// Expiry markers and origin fills dropped because the queue was full. A client's
        /// write is never dropped: it is refused instead (`refused`).
        public var overflowed = 0
        /// Writes refused with `writeQueueFull`, before anything of them was applied.
        public var refused = 0
        public var depth = 0
        /// Payload and key bytes of the queued writes.
        public var bytes = 0
    }

    public var node = ""
    public var cacheName = ""
    public var memory = Memory()
    public var distributed = Distributed()
    public var factory = Factory()
    public var staleServed = 0
    public var backplane = BackplaneCounters()
    public var autoRecovery = AutoRecovery()

    public init() {}
}
