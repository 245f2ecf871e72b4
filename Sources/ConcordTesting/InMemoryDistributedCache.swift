@_spi(ConcordBackend) import Concord
import Synchronization

/// An L2 on an `InMemoryCacheStore`.
public final class InMemoryDistributedCache: DistributedCache {
    public let store: InMemoryCacheStore
    private let corrupt = Atomic<Int>(0)

    public init(store: InMemoryCacheStore) { self.store = store }

    public var corruptEntries: Int { corrupt.load(ordering: .relaxed) }

    /// In process: usable before and without `run()`.
    public var isUsableWithoutRun: Bool { true }

    public func read(_ key: String) async throws -> DistributedRead? {
        do {
            return try store.read(key)
        } catch let error as CacheError where error.code == .invalidMessage {
            // A corrupt envelope reads as a miss and is counted, as the Redis implementation does.
            corrupt.add(1, ordering: .relaxed)
            return nil
        }
    }

    public func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        try store.apply(mutation, store: true, publish: publish)
    }
}
