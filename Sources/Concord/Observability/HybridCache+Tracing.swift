import Tracing

extension HybridCache {
    /// `getOrSetResult` in a `concord.getOrSet` span, for a cache that traces: the span carries
    /// the key, where the value came from (`concord.hit_level`: memory, distributed or factory),
    /// whether it was stale, and whether the call waited for another caller's load.
    @usableFromInline
    func tracedGetOrSetResult<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type,
        options: CacheEntryOptions?,
        tags: [String],
        tracing: CacheTracing,
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> CacheResult<Value> {
        try await tracing.withSpan("concord.getOrSet") { span in
            span.attributes["concord.key"] = key
            span.attributes["concord.coalesced"] = false
            let result = try await CacheTracing.$operation.withValue(span) {
                try await getOrSetResultWithoutTracingCheck(key, as: type, options: options, tags: tags, factory: factory)
            }
            span.attributes["concord.hit_level"] = result.source.rawValue
            span.attributes["concord.stale"] = result.isStale
            return result
        }
    }

    /// `getOrSetResult`'s body after the tracing check: `getOrSetResult` calls it when the cache
    /// does not trace, and `tracedGetOrSetResult` inside its span. `concord bench --suite l1`
    /// calls it directly to measure what the check costs an L1 hit, in the same run.
    @inlinable
    package func getOrSetResultWithoutTracingCheck<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil,
        tags: [String] = [],
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> CacheResult<Value> {
        switch try readMemory(key, skipsMemory: options?.assignedSkipMemoryRead, eagerRefresh: true) {
        case .hit(let hit):
            return try hit.result(key: key, as: type)
        case let read:
            return try await getOrSetBeyondMemory(key, as: type, options: options, tags: tags, factory: factory, read: read)
        }
    }
}
