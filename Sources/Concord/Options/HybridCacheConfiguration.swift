import Tracing

/// Cache-wide configuration. Every field has a default so `HybridCacheConfiguration()` works.
public struct HybridCacheConfiguration: Sendable {
    /// Where the cache's spans go: nil for the tracer bootstrapped with `InstrumentationSystem`
    /// when the cache is created; with neither (or the no-op tracer) the cache does no tracing
    /// work at all. Read once, when the cache is created.
    public var tracer: (any Tracer)?
    /// Names the cache; the Redis namespace is `concord:{cacheName}`.
    public var cacheName: String = "default"
    /// This node's id, used in versions and to recognise its own backplane messages.
    /// Defaults to a random id.
    public var nodeID: String = HybridCacheConfiguration.randomNodeID()
    /// Options used when a call passes none.
    public var defaultEntryOptions = CacheEntryOptions()
    /// L1 bounds.
    public var memory = MemoryCacheConfiguration()
    /// L1's bound in bytes. When set, every L1 entry costs its key and payload bytes plus
    /// `HybridCache.memoryEntryOverheadBytes` (the payload of a value that is neither bytes nor
    /// a string is its `size` option), and this replaces `memory.maxCost`. Nil: each entry
    /// costs its `size` option against `memory.maxCost`.
    public var memoryMaxBytes: Int?
    /// The longest key accepted, in UTF-8 bytes.
    public var maxKeyBytes: Int = 1024
    /// The largest serialized value accepted, in bytes.
    public var maxValueBytes: Int = 8 * 1024 * 1024
    /// Pending L2 writes (background writes and writes waiting for Redis to come back) kept,
    /// newest version per key. Past it, the oldest pending write is dropped and counted.
    public var pendingWriteCapacity: Int = 10_000
    /// The most payload bytes the pending L2 writes may hold together.
    public var pendingWriteMaxBytes: Int = 64 * 1024 * 1024
    /// Backoff between retries of pending L2 writes.
    public var retryBackoffBase: Duration = .milliseconds(100)
    /// The longest backoff between retries of pending L2 writes.
    public var retryBackoffCap: Duration = .seconds(2)
    /// Cut off from the backplane for longer than this, a node serves its L1 values only as
    /// fail-safe values and asks the factory first.
    public var maxDisconnectedStaleness: Duration = .seconds(5)
    /// How often the node compares the backplane's sequence with the last one it applied,
    /// to catch a subscription that died silently.
    public var heartbeatInterval: Duration = .seconds(1)
    /// How long L2 keeps tombstones of removed keys and the markers of tag removals and clears.
    /// It bounds how late a queued older write can arrive and still be fenced off.
    public var markerTimeToLive: Duration = .seconds(86_400)
    /// On graceful shutdown, pending L2 writes are flushed for at most this long.
    public var shutdownDrainTimeout: Duration = .seconds(5)
    /// The longest gap in the invalidation log that is replayed; a longer one expires all of L1.
    public var maxReplayLength: Int = 100_000
    /// A factory's value is versioned this long before the load started, so a write made on
    /// another node while the factory ran orders after it even within the same millisecond or
    /// under this much clock skew. Larger values make fills lose more often to writes (a miss),
    /// never the other way round.
    public var factoryVersionMargin: Duration = .milliseconds(2)
    /// How many events the `events()` stream buffers per subscriber before dropping the oldest.
    public var eventBufferSize: Int = 1024
    /// How far ahead of this node's wall clock a version from the wire (a backplane message, a
    /// log entry, an L2 entry) may be. A message further ahead is ignored and counted, and the
    /// node's clock never moves to such a version. Clocks kept by NTP differ by milliseconds; a
    /// minute leaves room for a badly synchronized host without letting a forged version push
    /// every later write of the cluster into the future.
    public var maxClockDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift
    /// Backplane messages the coherence loop may have waiting; past it, the queue is dropped,
    /// counted, and the node resynchronizes from the head (so a flood of messages costs memory
    /// up to this bound and one replay, not an unbounded queue).
    public var coherenceQueueCapacity: Int = 10_000

    /// The default `maxClockDrift`: one minute.
    public static let defaultMaxClockDrift: Duration = .seconds(60)

    public init() {}

    /// Configuration for a named cache on a named node.
    public init(cacheName: String, nodeID: String? = nil) {
        self.cacheName = cacheName
        if let nodeID { self.nodeID = nodeID }
    }

    /// Checks ranges; throws `CacheError(.invalidConfiguration)` naming the field.
    public func validate() throws {
        guard !cacheName.isEmpty, cacheName.utf8.count <= 128,
              !cacheName.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7B || $0 == 0x7D })
        else {
            throw CacheError(.invalidConfiguration, "cacheName must be 1–128 bytes without spaces or braces, got '\(cacheName)'")
        }
        guard CacheVersion.isValidNode(nodeID) else {
            throw CacheError(.invalidConfiguration, "nodeID must be 1–64 characters of [A-Za-z0-9._-], got '\(nodeID)'")
        }
        guard memory.maxEntries > 0, memory.maxCost > 0, memory.shardCount > 0 else {
            throw CacheError(.invalidConfiguration, "memory.maxEntries, memory.maxCost and memory.shardCount must be positive")
        }
        guard maxKeyBytes > 0 else { throw CacheError(.invalidConfiguration, "maxKeyBytes must be positive") }
        guard maxValueBytes > 0 else { throw CacheError(.invalidConfiguration, "maxValueBytes must be positive") }
        if let memoryMaxBytes, memoryMaxBytes <= 0 { throw CacheError(.invalidConfiguration, "memoryMaxBytes must be positive") }
        guard pendingWriteMaxBytes > 0 else { throw CacheError(.invalidConfiguration, "pendingWriteMaxBytes must be positive") }
        guard pendingWriteCapacity > 0 else { throw CacheError(.invalidConfiguration, "pendingWriteCapacity must be positive") }
        guard retryBackoffBase > .zero, retryBackoffCap >= retryBackoffBase else {
            throw CacheError(.invalidConfiguration, "retry backoff needs 0 < base <= cap")
        }
        guard maxDisconnectedStaleness > .zero else {
            throw CacheError(.invalidConfiguration, "maxDisconnectedStaleness must be positive")
        }
        guard markerTimeToLive >= .seconds(1) else { throw CacheError(.invalidConfiguration, "markerTimeToLive must be at least 1s") }
        guard shutdownDrainTimeout >= .zero else { throw CacheError(.invalidConfiguration, "shutdownDrainTimeout must not be negative") }
        guard maxReplayLength > 0 else { throw CacheError(.invalidConfiguration, "maxReplayLength must be positive") }
        guard factoryVersionMargin >= .zero else { throw CacheError(.invalidConfiguration, "factoryVersionMargin must not be negative") }
        guard maxClockDrift > .zero else { throw CacheError(.invalidConfiguration, "maxClockDrift must be positive") }
        guard coherenceQueueCapacity > 0 else { throw CacheError(.invalidConfiguration, "coherenceQueueCapacity must be positive") }
        guard heartbeatInterval > .zero else { throw CacheError(.invalidConfiguration, "heartbeatInterval must be positive") }
        try defaultEntryOptions.validate()
    }

    /// A random node id such as `node-3f9a1c2e`.
    public static func randomNodeID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = UInt32.random(in: .min ... .max, using: &generator)
        let hex = String(value, radix: 16)
        return "node-" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}
