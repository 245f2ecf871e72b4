import Tracing

/// The cache's spans, through swift-distributed-tracing. A cache holds one only when its
/// configuration names a tracer or one was bootstrapped before the cache was created; otherwise
/// it holds nil, and an L1 hit pays one check of that nil and no tracing work at all.
///
/// Span names and attributes (README, "Tracing"): `concord.getOrSet` (`concord.hit_level`,
/// `concord.stale`, `concord.coalesced`), `concord.factory`, `concord.l2.read`,
/// `concord.l2.write`, `concord.backplane.publish` and `concord.backplane.apply`, which links
/// to the writer's span through the trace context its message carried.
@usableFromInline
struct CacheTracing: Sendable {
    let tracer: any Tracer
    let cacheName: String
    let nodeID: String

    /// The configured tracer, else the bootstrapped one; nil when that is the no-op tracer.
    static func resolve(_ configuration: HybridCacheConfiguration) -> CacheTracing? {
        let tracer = configuration.tracer ?? InstrumentationSystem.tracer
        if tracer is NoOpTracer { return nil }
        return CacheTracing(tracer: tracer, cacheName: configuration.cacheName, nodeID: configuration.nodeID)
    }

    /// `distributed` behind `TracedDistributedCache`.
    func traced(_ distributed: (any DistributedCache)?) -> (any DistributedCache)? {
        distributed.map { TracedDistributedCache(base: $0, tracing: self) }
    }

    /// `backplane` behind `TracedBackplane`.
    func traced(_ backplane: (any Backplane)?) -> (any Backplane)? {
        backplane.map { TracedBackplane(base: $0, tracing: self) }
    }

    /// The span of the `getOrSet` running in this task, so that joining another caller's flight
    /// can mark it as coalesced without threading the span through the read path.
    @TaskLocal static var operation: (any Span)?

    /// Marks the current `getOrSet` span as coalesced (it waited for another caller's load) or not.
    static func noteFlight(joined: Bool) {
        operation?.attributes["concord.coalesced"] = joined
    }

    /// Runs `body` in a span named `name`, a child of the current span, ended when `body`
    /// returns or throws (the error recorded on it).
    func withSpan<T>(
        _ name: String, kind: SpanKind = .internal, _ body: (any Span) async throws -> T
    ) async rethrows -> T {
        let span = tracer.startSpan(name, context: ServiceContext.current ?? .topLevel, ofKind: kind)
        span.attributes["concord.cache"] = cacheName
        span.attributes["concord.node"] = nodeID
        do {
            let result = try await ServiceContext.withValue(span.context) { try await body(span) }
            span.end()
            return result
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            span.end()
            throw error
        }
    }

    /// `job` for the cache's background task group, run under the context current now: work a
    /// caller hands to the background (a flight, a factory, a queued write) stays in its trace.
    func carryingContext(_ job: @escaping @Sendable () async -> Void) -> @Sendable () async -> Void {
        guard let context = ServiceContext.current else { return job }
        return { await ServiceContext.withValue(context) { await job() } }
    }

    /// `factory` wrapped in a `concord.factory` span.
    func traced<Value: Sendable>(
        _ factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value, key: String
    ) -> @Sendable (FactoryContext<Value>) async throws -> Value {
        { context in
            try await withSpan("concord.factory") { span in
                span.attributes["concord.key"] = key
                span.attributes["concord.has_stale"] = context.staleValue != nil
                let value = try await factory(context)
                span.attributes["concord.not_modified"] = context.isNotModified
                return value
            }
        }
    }

    /// The current span's context as the tracer propagates it, for a backplane message; nil
    /// when there is no span, or the tracer's fields do not fit `BackplaneTraceContext`.
    func injectedContext() -> BackplaneTraceContext? {
        guard let context = ServiceContext.current else { return nil }
        var fields: [String: String] = [:]
        tracer.inject(context, into: &fields, using: TraceFieldInjector())
        return fields.isEmpty ? nil : try? BackplaneTraceContext(fields: fields)
    }

    /// Starts the span of applying a backplane message: a new trace (the message is not part of
    /// any request of this node), linked to the writer's span when the message carries its context.
    func startApply(_ message: BackplaneMessage) -> any Span {
        let span = tracer.startSpan("concord.backplane.apply", context: ServiceContext.topLevel, ofKind: .consumer)
        span.attributes["concord.cache"] = cacheName
        span.attributes["concord.node"] = nodeID
        span.attributes["concord.kind"] = message.kind.description
        span.attributes["concord.key"] = message.key
        span.attributes["concord.source"] = message.source
        span.attributes["concord.seq"] = Int64(truncatingIfNeeded: message.sequence)
        if let fields = message.traceContext?.fields {
            var writer = ServiceContext.topLevel
            tracer.extract(fields, into: &writer, using: TraceFieldExtractor())
            span.addLink(SpanLink(context: writer, attributes: [:]))
        }
        return span
    }
}

/// Writes a tracer's propagation fields into a backplane trace context's dictionary.
struct TraceFieldInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// Reads a tracer's propagation fields from a backplane trace context's dictionary.
struct TraceFieldExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
