import HTTPTypes
import Hummingbird

/// Counts and times every answered request, by method, route template and status. It sits
/// outside `ErrorBodyMiddleware`, so errors are counted with the status the client saw.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: NodeMetrics

    /// Other method names are arbitrary client text; they are counted as `other` so they cannot
    /// grow the label set without bound.
    private static var standardMethods: Set<HTTPRequest.Method> { [.get, .head, .put, .post, .delete, .patch, .options] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, start: start)
            return response
        } catch {
            let status = NodeAPIError.from(error, request: request).status.code
            record(request, context, status: status, start: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, start: ContinuousClock.Instant) {
        metrics.recordRequest(
            method: Self.standardMethods.contains(request.method) ? request.method.rawValue : "other",
            route: context.endpointPath ?? "unmatched",
            status: status,
            duration: ContinuousClock.now - start
        )
    }
}
