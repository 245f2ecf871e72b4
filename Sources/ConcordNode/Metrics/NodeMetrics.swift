import Prometheus

/// The node's own metrics, registered straight on its Prometheus registry rather than through
/// the global swift-metrics system: tests run many nodes in one process, each with its own
/// registry, and the global system can be bootstrapped only once.
final class NodeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let ready: Gauge
    /// A GET of a key answered 200 from L1, made once: the hit path records into these without
    /// looking them up in the registry (a lock and a search of the label sets per request).
    private let cacheHitRequests: Counter
    private let cacheHitDuration: DurationHistogram
    /// Of those, the ones `MemoryHitHandler` answered on the event loop, without the router.
    private let directHits: Counter
    /// `GET /health` answered 200, made once for the same reason.
    private let healthRequests: Counter
    private let healthDuration: DurationHistogram

    /// Wide buckets: an L1 hit takes microseconds, an origin load under a timeout seconds.
    private static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5),
    ]

    /// The route template of the cache routes, as the router names it in `endpointPath`.
    static let cacheRoute = "/v1/cache/**"

    init(registry: PrometheusCollectorRegistry, node: String) {
        self.registry = registry
        ready = registry.makeGauge(
            descriptor: .init(metricName: "concord_node_ready", unitName: "", helpText: "1 while /ready answers 200"),
            labels: [("node", node)]
        )
        cacheHitRequests = Self.requests(registry, method: "GET", route: Self.cacheRoute, status: 200)
        cacheHitDuration = Self.duration(registry, method: "GET", route: Self.cacheRoute)
        healthRequests = Self.requests(registry, method: "GET", route: "/health", status: 200)
        healthDuration = Self.duration(registry, method: "GET", route: "/health")
        directHits = registry.makeCounter(descriptor: .init(
            metricName: "concord_http_direct_hits", unitName: "total",
            helpText: "GETs answered from L1 on the event loop, without the router (also counted in concord_http_requests_total)"))
    }

    /// Counts one answered request and its duration. `route` is the route's template, never the
    /// raw path, so keys do not become label values.
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        Self.requests(registry, method: method, route: route, status: status).increment()
        Self.duration(registry, method: method, route: route).record(duration)
    }

    /// `recordRequest` for a GET of the cache route answered 200 on the event loop.
    func recordDirectHit(duration: Duration) {
        directHits.increment()
        cacheHitRequests.increment()
        cacheHitDuration.record(duration)
    }

    /// `recordRequest` for a `GET /health` answered on the event loop.
    func recordDirectHealth(duration: Duration) {
        healthRequests.increment()
        healthDuration.record(duration)
    }

    private static func requests(_ registry: PrometheusCollectorRegistry, method: String, route: String, status: Int) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "concord_http_requests", unitName: "total", helpText: "HTTP requests answered by the node"),
            labels: [("method", method), ("route", route), ("status", String(status))]
        )
    }

    private static func duration(_ registry: PrometheusCollectorRegistry, method: String, route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "concord_http_request_duration", unitName: "seconds", helpText: "Time to answer an HTTP request"),
            labels: [("method", method), ("route", route)],
            buckets: durationBuckets
        )
    }

    func recordReadiness(_ isReady: Bool) {
        ready.set(to: isReady ? 1.0 : 0.0)
    }

    /// The Prometheus text exposition of everything in the registry.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
