/// The shared second level (L2), implemented on Redis by `RedisDistributedCache` and in memory
/// by `ConcordTesting`.
public protocol DistributedCache: Sendable {
    /// Reads an entry, with tombstones and markers applied. Nil when absent or removed.
    /// An entry that cannot be decoded reads as nil and is counted, never thrown.
    func read(_ key: String) async throws -> DistributedRead?

    /// Applies a versioned mutation atomically: the newer version wins, and when `publish` is
    /// true the mutation is appended to the invalidation log and published in the same step.
    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome

    /// Background work (connections, reconnection). The cache runs it inside its own `run()`.
    /// `whenReachable` is called each time the store becomes reachable (connected again), so
    /// writes queued during an outage flush at once instead of waiting out their backoff.
    func run(whenReachable: @escaping @Sendable () -> Void) async throws

    /// Background work, reporting to `events`: reachability as in `run(whenReachable:)`, and data
    /// loss in the store (a Memcached server flushed or restarted), which the cache treats like a
    /// Redis epoch change. The default runs `run(whenReachable:)` and never reports data loss.
    func run(events: DistributedCacheEvents) async throws

    /// Entries that could not be decoded (another format, corrupt) and were read as misses.
    var corruptEntries: Int { get }

    /// Whether the cache may use this L2 while its `run()` is not active. False by default: an
    /// L2 whose connections `run(events:)` drives (Redis, Memcached) fails every call until
    /// then, so the cache throws `notRunning` rather than acknowledge a write that would be lost.
    var isUsableWithoutRun: Bool { get }
}
