import Prometheus

/// The node's own metrics, registered straight on its Prometheus registry rather than through
/// the global swift-metrics system: tests run many nodes in one process, each with its own
/// registry, and the global system can be bootstrapped only once.
final class NodeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let ready: Gauge

    /// Wide buckets: an L1 hit takes microseconds, an origin load under a timeout seconds.
    private static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5),
    ]

    init(registry: PrometheusCollectorRegistry, node: String) {
        self.registry = registry
        ready = registry.makeGauge(
            descriptor: .init(metricName: "concord_node_ready", unitName: "", helpText: "1 while /ready answers 200"),
            labels: [("node", node)]
        )
    }

    /// Counts one answered request and its duration. `route` is the route's template, never the
    /// raw path, so keys do not become label values.
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(metricName: "concord_http_requests", unitName: "total", helpText: "HTTP requests answered by the node"),
            labels: [("method", method), ("route", route), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "concord_http_request_duration", unitName: "seconds", helpText: "Time to answer an HTTP request"),
            labels: [("method", method), ("route", route)],
            buckets: Self.durationBuckets
        ).record(duration)
    }

    func recordReadiness(_ isReady: Bool) {
        ready.set(to: isReady ? 1.0 : 0.0)
    }

    /// The Prometheus text exposition of everything in the registry.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
