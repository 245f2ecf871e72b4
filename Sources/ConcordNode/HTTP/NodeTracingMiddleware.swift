import HTTPTypes
import Hummingbird
import Tracing

/// A server span per API request through Hummingbird's `TracingMiddleware` (its parent taken
/// from a W3C `traceparent` header by the bootstrapped instrument), answered with that span's
/// own context in a `traceresponse` header (W3C Trace Context level 2), so a caller can find
/// the node's side of its trace. Probes and scrapes (`/health`, `/ready`, `/metrics`) are not
/// traced: an orchestrator polling them would fill the trace store with one-span traces.
struct NodeTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    static var traceResponseHeader: HTTPField.Name { HTTPField.Name("traceresponse")! }
    static var untracedPaths: Set<String> { ["/health", "/ready", "/metrics"] }

    private let tracing = TracingMiddleware<Context>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.untracedPaths.contains(request.uri.path) { return try await next(request, context) }
        return try await tracing.handle(request, context: context) { request, context in
            var response = try await next(request, context)
            if let value = Self.traceResponse(for: ServiceContext.current) {
                response.headers[Self.traceResponseHeader] = value
            }
            return response
        }
    }

    /// The `traceparent` the bootstrapped instrument writes for `context`, which is the
    /// `traceresponse` value: same syntax, naming the server's span.
    static func traceResponse(for context: ServiceContext?) -> String? {
        guard let context else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"]
    }
}

/// Writes propagated fields into a dictionary.
private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
