/// Where an L2 reports what happens to it while it runs: non-blocking callbacks into the cache.
public struct DistributedCacheEvents: Sendable {
    /// The store is reachable again: writes queued during the outage can flush.
    public let reachable: @Sendable () -> Void
    /// The store lost data the cache may have relied on, and why: every L1 entry must be expired.
    public let dataLost: @Sendable (_ reason: String) -> Void

    public init(reachable: @escaping @Sendable () -> Void, dataLost: @escaping @Sendable (_ reason: String) -> Void) {
        self.reachable = reachable
        self.dataLost = dataLost
    }
}

extension DistributedCache {
    public func run(whenReachable: @escaping @Sendable () -> Void) async throws {}
    public func run(events: DistributedCacheEvents) async throws {
        try await run(whenReachable: events.reachable)
    }
    public var corruptEntries: Int { 0 }
    public var isUsableWithoutRun: Bool { false }
}
