import Concord
import Synchronization

/// Wraps a real L2 and makes it throw or stall, as FusionCache's chaos components do.
public final class ChaosDistributedCache: DistributedCache {
    private let inner: any DistributedCache
    private let clock: any CacheClock
    private let settings: Mutex<ChaosSettings>

    public init(wrapping inner: any DistributedCache, settings: ChaosSettings = ChaosSettings(), clock: any CacheClock = SystemCacheClock()) {
        self.inner = inner
        self.clock = clock
        self.settings = Mutex(settings)
    }

    /// Changes the misbehaviour at run time.
    public func update(_ body: (inout ChaosSettings) -> Void) { settings.withLock { body(&$0) } }

    private func disturb(_ operation: String) async throws {
        let current = settings.withLock { $0 }
        if current.delay > .zero { try await clock.sleep(for: current.delay) }
        if current.failureProbability > 0, Double.random(in: 0..<1) < current.failureProbability {
            throw CacheError(.distributedFailed, "chaos: injected failure in \(operation)")
        }
    }

    public func read(_ key: String) async throws -> DistributedRead? {
        try await disturb("read")
        return try await inner.read(key)
    }

    public func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        try await disturb("apply")
        return try await inner.apply(mutation, publish: publish)
    }

    public func run(whenReachable: @escaping @Sendable () -> Void) async throws {
        try await inner.run(whenReachable: whenReachable)
    }

    public func run(events: DistributedCacheEvents) async throws {
        try await inner.run(events: events)
    }

    public var isUsableWithoutRun: Bool { inner.isUsableWithoutRun }
}
