import Tracing

/// The cache's spans, through swift-distributed-tracing: nil inside when no tracer was given or
/// bootstrapped, and then every call is one branch on a stored value, so an untraced L1 hit
/// does no tracing work at all.
struct CacheTracer: Sendable {
    /// The tracer spans go to; nil when tracing is off.
    let tracer: (any Tracer)?
    let cacheName: String

    /// `tracer`, else the bootstrapped one; off when that is swift-distributed-tracing's no-op tracer.
    init(_ tracer: (any Tracer)?, cacheName: String) {
        let chosen = tracer ?? InstrumentationSystem.tracer
        self.tracer = chosen is NoOpTracer ? nil : chosen
        self.cacheName = cacheName
    }

    var isEnabled: Bool { tracer != nil }

    /// Runs `body` in a span named `name` (the current span's child), which ends when `body`
    /// returns or throws; without a tracer, just runs `body`.
    func withSpan<T>(
        _ name: String,
        kind: SpanKind = .internal,
        links: [SpanLink] = [],
        _ body: (SpanHandle) async throws -> T
    ) async rethrows -> T {
        guard let tracer else { return try await body(SpanHandle(span: nil)) }
        let span = tracer.startSpan(name, context: ServiceContext.current ?? .topLevel, ofKind: kind)
        for link in links { span.addLink(link) }
        span.attributes["concord.cache"] = cacheName
        do {
            let result = try await ServiceContext.withValue(span.context) {
                try await body(SpanHandle(span: span))
            }
            span.end()
            return result
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            span.end()
            throw error
        }
    }

    /// A span for work that already happened in one step (an L1 hit): started and ended at once.
    func record(_ name: String, _ attributes: (inout SpanAttributes) -> Void) {
        guard let tracer else { return }
        let span = tracer.startSpan(name, context: ServiceContext.current ?? .topLevel, ofKind: .internal)
        span.attributes["concord.cache"] = cacheName
        span.updateAttributes(attributes)
        span.end()
    }

    /// The current span's context, to carry in a backplane message; nil without a tracer or span.
    var currentContext: ServiceContext? {
        guard tracer != nil else { return nil }
        return ServiceContext.current
    }
}

/// The span of a traced operation, or nothing when tracing is off: attributes set on it cost
/// nothing then.
struct SpanHandle {
    let span: (any Span)?

    func set(_ key: String, _ value: some SpanAttributeConvertible) {
        span?.attributes[key] = value.toSpanAttribute()
    }

    func set(_ key: String, _ value: String) {
        span?.attributes[key] = value
    }
}
