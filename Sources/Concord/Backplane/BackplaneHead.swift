/// The epoch and the last sequence number of the invalidation log.
public struct BackplaneHead: Sendable, Equatable {
    public var epoch: String
    public var sequence: UInt64

    public init(epoch: String, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }
}
