/// How many concurrent L2 writes one script call may carry (group commit, see
/// `RedisDistributedCache`): at most `mutations` mutations and `bytes` bytes of entries and
/// messages. A single mutation larger than `bytes` still goes, alone. `mutations: 1` turns
/// batching off: every write is its own script call, as before group commit.
public struct WriteBatchLimit: Sendable, Hashable {
    public var mutations: Int
    public var bytes: Int

    /// 64 mutations keep one script call near a millisecond of Redis time; 1 MiB keeps a batch
    /// of large values from holding Redis much longer than its largest value alone would.
    public init(mutations: Int = 64, bytes: Int = 1 << 20) {
        self.mutations = max(1, mutations)
        self.bytes = max(0, bytes)
    }
}
