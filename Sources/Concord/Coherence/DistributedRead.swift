/// An entry read from L2 with its state after tombstones and markers are taken into account.
public struct DistributedRead: Sendable, Equatable {
    public var entry: DistributedEntry
    /// An `expire`, a clear or a tag marker newer than the entry makes it stale.
    public var isExpired: Bool
    /// The invalidation log's head as the store held it when the entry was read, where the store
    /// keeps the log beside its entries (Redis); nil otherwise. A head below a position this
    /// node had already applied means the store went back (a snapshot restore, a replica
    /// promoted while behind) before the node's next synchronization could tell.
    public var logHead: BackplaneHead?

    public init(entry: DistributedEntry, isExpired: Bool, logHead: BackplaneHead? = nil) {
        self.entry = entry
        self.isExpired = isExpired
        self.logHead = logHead
    }
}
