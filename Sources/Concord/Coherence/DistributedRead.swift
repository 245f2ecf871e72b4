/// An entry read from L2 with its state after tombstones and markers are taken into account.
public struct DistributedRead: Sendable, Equatable {
    public var entry: DistributedEntry
    /// An `expire`, a clear or a tag marker newer than the entry makes it stale.
    public var isExpired: Bool

    public init(entry: DistributedEntry, isExpired: Bool) {
        self.entry = entry
        self.isExpired = isExpired
    }
}
