import ConcordNode
import Logging
import OTel
import ServiceLifecycle

/// `concord node --otel-endpoint`: bootstraps swift-otel's tracer for the process, exporting
/// over OTLP/HTTP (protobuf), and gives the service that batches and sends its spans. Without an
/// endpoint nothing is bootstrapped, so the caches hold no tracer and an L1 hit pays nothing.
enum NodeTraceExport {
    /// `OTEL_*` variables whose say the node's own settings have: the endpoint and protocol (only
    /// OTLP/HTTP is built in), the service name, the sampler, and which signals are on. The others
    /// (headers, timeouts, compression, certificates, batching, resource attributes) still apply.
    static let variablesDecidedByTheNode: Set<String> = [
        "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_PROPAGATORS",
        "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ]

    /// Bootstraps the tracer when the configuration names a collector, and returns the export
    /// service to run with the node; nil (and nothing bootstrapped) without one. Throws when
    /// swift-otel refuses its settings (a certificate file named in `OTEL_*` that is missing).
    static func bootstrap(_ configuration: NodeConfiguration, environment: [String: String], logger: Logger) throws -> (any Service)? {
        guard let tracesURL = configuration.otelTracesURL else { return nil }
        guard let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: configuration.otelSampleRatio) else {
            throw CommandFailure("--otel-sample-ratio \(configuration.otelSampleRatio) is not from 0 to 1")
        }
        var otel = OTel.Configuration.default
        otel.serviceName = configuration.otelServiceName
        otel.resourceAttributes["service.instance.id"] = configuration.nodeID
        otel.diagnosticLogger = .custom(logger)
        otel.diagnosticLogLevel = diagnosticLevel(for: configuration.logLevel)
        otel.propagators = [.traceContext]
        // Metrics go to /metrics (Prometheus) and logs to stderr, as without tracing.
        otel.metrics.enabled = false
        otel.logs.enabled = false
        otel.traces.exporter = .otlp
        otel.traces.sampler = sampler
        otel.traces.otlpExporter.endpoint = tracesURL
        otel.traces.otlpExporter.protocol = .httpProtobuf
        let service = try OTel.bootstrap(
            configuration: otel,
            environment: environment.filter { !variablesDecidedByTheNode.contains($0.key) }
        )
        logger.info("tracing: exporting spans over OTLP/HTTP", metadata: [
            "concord.otel.url": .string(tracesURL),
            "concord.otel.service": .string(configuration.otelServiceName),
            "concord.otel.sampler": .string("parent-based, ratio \(configuration.otelSampleRatio) for traces started here"),
        ])
        return TraceExportService(base: service, logger: logger)
    }

    /// swift-otel's own messages (export failures among them) at the node's level, in
    /// swift-otel's coarser scale.
    static func diagnosticLevel(for level: Logger.Level) -> OTel.Configuration.LogLevel {
        switch level {
        case .trace: .trace
        case .debug: .debug
        case .info, .notice: .info
        case .warning: .warning
        case .error, .critical: .error
        }
    }
}
