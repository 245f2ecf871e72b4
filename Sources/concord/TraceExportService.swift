import Logging
import ServiceLifecycle

/// The trace exporter as one of the node's services: if it ever stops with an error, that is
/// logged and the node keeps serving (its spans are then dropped), rather than taking the node
/// down with it. A collector that cannot be reached is not such an error: each failed batch is
/// logged as a warning by swift-otel and exporting goes on.
struct TraceExportService: Service {
    let base: any Service
    let logger: Logger

    func run() async throws {
        do {
            try await base.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.error("tracing: the span exporter stopped; serving goes on without exporting spans", metadata: ["error": "\(error)"])
        }
    }
}
