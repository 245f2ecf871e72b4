/// The epoch and the last sequence number of the invalidation log.
public struct BackplaneHead: Sendable, Equatable {
    public var epoch: String
    public var sequence: UInt64
    /// The highest version of a set stored in L2, where the backplane keeps one (Redis, in the
    /// head's `hv`): a node's clock follows it as it follows messages, so a node restarted with
    /// its clock set back does not version its writes before ones already stored.
    public var highestStoredVersion: CacheVersion?

    public init(epoch: String, sequence: UInt64, highestStoredVersion: CacheVersion? = nil) {
        self.epoch = epoch
        self.sequence = sequence
        self.highestStoredVersion = highestStoredVersion
    }
}
