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

    /// Entries that could not be decoded (another format, corrupt) and were read as misses.
    var corruptEntries: Int { get }
}

extension DistributedCache {
    public func run(whenReachable: @escaping @Sendable () -> Void) async throws {}
    public var corruptEntries: Int { 0 }
}
