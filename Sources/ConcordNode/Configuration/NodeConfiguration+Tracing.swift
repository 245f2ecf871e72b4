import Foundation

extension NodeConfiguration {
    /// Where the node POSTs its spans: `otelEndpoint` with `/v1/traces` appended (the OTLP/HTTP
    /// path for traces), or as it is when it already ends in `/v1/traces`; nil without an endpoint.
    public var otelTracesURL: String? {
        otelEndpoint.flatMap { try? Self.otlpTracesURL(collector: $0) }
    }

    /// The traces URL of the OTLP/HTTP collector at `collector`, a base URL such as
    /// `http://otel-collector:4318` (what `OTEL_EXPORTER_OTLP_ENDPOINT` holds). Only `http` and
    /// `https` with a host are accepted: gRPC is not built in, and credentials belong in
    /// `OTEL_EXPORTER_OTLP_HEADERS`, not in a URL that reaches the log.
    public static func otlpTracesURL(collector: String) throws(NodeConfigurationError) -> String {
        func failure(_ message: String) -> NodeConfigurationError {
            // A URL with credentials is not echoed: they would reach the log.
            NodeConfigurationError(.invalidURL, option: NodeOption.otelEndpoint.name, source: .combination, value: collector.contains("@") ? nil : collector, message: message)
        }
        let text = collector.trimmingASCIIWhitespace()
        guard text.contains("://"), let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw failure("expected http(s)://host[:port][/path], e.g. http://127.0.0.1:4318")
        }
        guard scheme == "http" || scheme == "https" else {
            throw failure("the scheme must be http or https (OTLP/HTTP; gRPC is not built in), not '\(scheme)'")
        }
        guard let host = components.host, !host.isEmpty else { throw failure("names no host") }
        guard components.user == nil, components.password == nil else {
            throw failure("must not hold credentials; give them as headers in OTEL_EXPORTER_OTLP_HEADERS")
        }
        guard components.query == nil, components.fragment == nil else { throw failure("must not have a query or a fragment") }
        if let port = components.port, !(1...65_535).contains(port) { throw failure("has port \(port), outside 1…65535") }
        let base = text.hasSuffix("/") ? String(text.dropLast()) : text
        return base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
    }
}
