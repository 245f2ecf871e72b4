import Tracing

/// An L2 whose reads and writes are spans (`concord.l2.read`, `concord.l2.write`), and whose
/// published mutations carry the writing span's trace context. The cache puts it in front of
/// its L2 only when it traces, so an untraced cache calls its L2 directly.
struct TracedDistributedCache: DistributedCache {
    let base: any DistributedCache
    let tracing: CacheTracing

    func read(_ key: String) async throws -> DistributedRead? {
        try await tracing.withSpan("concord.l2.read", kind: .client) { span in
            span.attributes["concord.key"] = key
            let read = try await base.read(key)
            span.attributes["concord.found"] = read != nil
            return read
        }
    }

    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        try await tracing.withSpan("concord.l2.write", kind: publish ? .producer : .client) { span in
            span.attributes["concord.kind"] = mutation.kind.description
            span.attributes["concord.key"] = mutation.key
            span.attributes["concord.publish"] = publish
            var mutation = mutation
            if publish { mutation.traceContext = tracing.injectedContext() }
            let outcome = try await base.apply(mutation, publish: publish)
            if case .superseded = outcome { span.attributes["concord.superseded"] = true }
            return outcome
        }
    }

    func run(whenReachable: @escaping @Sendable () -> Void) async throws {
        try await base.run(whenReachable: whenReachable)
    }

    func run(events: DistributedCacheEvents) async throws {
        try await base.run(events: events)
    }

    var corruptEntries: Int { base.corruptEntries }
    var isUsableWithoutRun: Bool { base.isUsableWithoutRun }
}
