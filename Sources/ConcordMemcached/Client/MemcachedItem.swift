/// A value read from memcached with the CAS token that a later compare-and-set must quote.
public struct MemcachedItem: Sendable, Equatable {
    public var value: [UInt8]
    /// The item's compare-and-set token.
    public var cas: UInt64
    /// The item's client flags.
    public var flags: UInt32

    public init(value: [UInt8], cas: UInt64, flags: UInt32 = 0) {
        self.value = value
        self.cas = cas
        self.flags = flags
    }
}
