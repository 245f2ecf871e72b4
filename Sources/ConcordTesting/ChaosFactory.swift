import Concord
import Synchronization

/// Wraps a factory and makes it throw or stall.
public struct ChaosFactory<Value: Sendable>: Sendable {
    private let settings: ChaosSettings
    private let clock: any CacheClock
    private let body: @Sendable () async throws -> Value

    public init(settings: ChaosSettings, clock: any CacheClock = SystemCacheClock(), _ body: @escaping @Sendable () async throws -> Value) {
        self.settings = settings
        self.clock = clock
        self.body = body
    }

    public func callAsFunction() async throws -> Value {
        if settings.delay > .zero { try await clock.sleep(for: settings.delay) }
        if settings.failureProbability > 0, Double.random(in: 0..<1) < settings.failureProbability {
            throw CacheError(.factoryFailed, "chaos: injected factory failure")
        }
        return try await body()
    }
}
