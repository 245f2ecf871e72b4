import AsyncHTTPClient
import Concord
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP/1.1 client for a node's API (DESIGN.md, "Node HTTP API"), for the CLI, the chaos
/// harness and tests, on AsyncHTTPClient: a bounded pool of keep-alive connections, and a
/// deadline on every request, connecting included, so no caller waits on a wedged node forever.
/// Keys are percent-encoded with `CacheKeyPath`, so any key round-trips. The connections are
/// closed by `shutdown()` or when the client is released.
public final class NodeClient: Sendable {
    /// Timeouts, pool size and response limit; the defaults suit a local cluster.
    public struct Configuration: Sendable {
        /// The whole request, connecting included, must finish within this.
        public var requestTimeout: Duration
        /// Connecting alone may take at most this, and never more than what is left of the
        /// request's time; nil: only the request's time bounds it.
        public var connectTimeout: Duration?
        /// Keep-alive connections kept to the node; more concurrent requests open more, closed after.
        public var maxIdleConnections: Int = 4
        /// Answers with a larger body are refused (`.protocolError`) rather than buffered.
        public var maxResponseBytes: Int = 64 << 20
        /// Sent as `Authorization: Bearer` with every request, for a node started with token files.
        public var bearerToken: String?
        /// Speak TLS with these settings (an `https://` URL turns it on with the system's trust
        /// roots); nil: plain HTTP.
        public var tls: TLSConfiguration?

        public init(requestTimeout: Duration = .seconds(5), connectTimeout: Duration? = nil) {
            self.requestTimeout = requestTimeout
            self.connectTimeout = connectTimeout
        }
    }

    public let host: String
    public let port: Int
    public let configuration: Configuration
    private let http: HTTPClient
    private let logger: Logger

    public init(
        host: String = "127.0.0.1",
        port: Int,
        configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "concord.node-client")
    ) {
        self.host = host
        self.port = port
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "concord.node.address"] = "\(host):\(port)"
        self.logger = logger
        var transport = HTTPClient.Configuration(tlsConfiguration: configuration.tls)
        transport.httpVersion = .http1Only
        transport.redirectConfiguration = .disallow
        transport.decompression = .disabled
        transport.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maxIdleConnections)
        )
        // A refused connection is an answer (the node is down): fail at once rather than retry
        // connecting until the request's deadline.
        transport.connectionPool.retryConnectionEstablishment = false
        let connectTimeout = configuration.connectTimeout.map { min($0, configuration.requestTimeout) } ?? configuration.requestTimeout
        transport.timeout = .init(connect: Self.timeAmount(connectTimeout))
        self.http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: transport, backgroundActivityLogger: logger)
    }

    /// Parses `http://host:port` or `https://host:port` (a trailing `/` is fine; the scheme may
    /// be left out). `https` uses `configuration.tls`, or the system's trust roots without it.
    public convenience init(url: String, configuration: Configuration = .init()) throws(NodeClientError) {
        let (host, port, secure) = try Self.address(of: url)
        var configuration = configuration
        if secure, configuration.tls == nil { configuration.tls = .makeClientConfiguration() }
        if !secure { configuration.tls = nil }
        self.init(host: host, port: port, configuration: configuration)
    }

    deinit {
        // A one-shot caller (the CLI) need not remember `shutdown()`: nothing outlives the client.
        // The transport keeps itself alive until its connections are closed.
        http.shutdown { _ in }
    }

    /// `http://host:port`, or `https://` with TLS.
    public var baseURL: String { "\(configuration.tls == nil ? "http" : "https")://\(hostAndPort)" }

    private var hostAndPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    // MARK: - Node API (any HTTP status is returned; only transport failures throw)

    /// `GET /v1/cache/{key}`; `tags` are given to the entry if the node loads it from its origin.
    public func get(_ key: String, tags: [String] = []) async throws -> NodeResponse {
        try await request(.GET, CacheKeyPath.path(for: key) + Self.query(background: false, tags: tags))
    }

    /// `PUT /v1/cache/{key}`; `background` asks the node to write Redis after answering;
    /// the entry carries `tags`.
    public func set(_ key: String, value: [UInt8], background: Bool = false, tags: [String] = []) async throws -> NodeResponse {
        try await request(
            .PUT, CacheKeyPath.path(for: key) + Self.query(background: background, tags: tags), body: value,
            headers: [("Content-Type", "application/octet-stream")])
    }

    /// `DELETE /v1/tags/{tag}`: removes every entry carrying the tag, on every node.
    public func removeTag(_ tag: String) async throws -> NodeResponse {
        try await request(.DELETE, "/v1/tags/" + CacheKeyPath.percentEncode(tag))
    }

    /// `POST /v1/clear`: expires every entry on every node (kept for fail-safe), or removes
    /// every entry when `keepForFailSafe` is false.
    public func clear(keepForFailSafe: Bool = true) async throws -> NodeResponse {
        try await request(.POST, "/v1/clear" + (keepForFailSafe ? "" : "?failSafe=false"))
    }

    private static func query(background: Bool, tags: [String]) -> String {
        var items = tags.map { "tag=" + CacheKeyPath.percentEncode($0) }
        if background { items.insert("background=true", at: 0) }
        return items.isEmpty ? "" : "?" + items.joined(separator: "&")
    }

    /// `DELETE /v1/cache/{key}`.
    public func delete(_ key: String) async throws -> NodeResponse {
        try await request(.DELETE, CacheKeyPath.path(for: key))
    }

    /// `POST /v1/invalidate` with `{"keys": [...]}`.
    public func invalidate(_ keys: [String]) async throws -> NodeResponse {
        let body = try JSONEncoder().encode(InvalidateBody(keys: keys))
        return try await request(.POST, "/v1/invalidate", body: Array(body), headers: [("Content-Type", "application/json")])
    }

    /// `GET /v1/stats`.
    public func stats() async throws -> NodeResponse {
        try await request(.GET, "/v1/stats")
    }

    /// `GET /health`: true when the node answers 200.
    public func health() async throws -> Bool {
        try await request(.GET, "/health").status == 200
    }

    /// `GET /ready`: true when the node answers 200 (backplane connected), false for any other status.
    public func ready() async throws -> Bool {
        try await request(.GET, "/ready").status == 200
    }

    // MARK: - Requests

    /// Sends any request; `path` must already be percent-encoded and includes the query.
    /// `timeout` overrides the configured request timeout for this request only. Transport
    /// failures throw `NodeClientError` (`.timeout`, `.connectionFailed`, `.connectionClosed`,
    /// `.protocolError`).
    public func request(
        _ method: HTTPMethod,
        _ path: String,
        body: [UInt8]? = nil,
        headers: [(name: String, value: String)] = [],
        timeout: Duration? = nil
    ) async throws -> NodeResponse {
        let clock = ContinuousClock()
        let budget = timeout ?? configuration.requestTimeout
        let deadline = clock.now + budget
        let what = "\(method.rawValue) \(baseURL)\(path)"
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "concord")
        if let token = configuration.bearerToken { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }

        // At most one retry, and only when the connection closed before any answer: on a reused
        // keep-alive connection the node most likely dropped it while idle and never saw the request.
        do {
            return try await Retry.run(
                backoff: .fixed(.zero),
                limit: .attempts(2),
                isRetryable: Self.isClosedBeforeAnswer,
                onFailure: { error, _, _ in
                    self.logger.trace("connection closed before an answer; retrying once", metadata: ["concord.error": "\(error)"])
                }
            ) { _ in
                let remaining = deadline - clock.now
                guard remaining > .zero else { throw NodeClientError(.timeout, "\(what) got no answer within \(budget)") }
                let response = try await http.execute(request, deadline: .now() + Self.timeAmount(remaining), logger: logger)
                let received = try await response.body.collect(upTo: configuration.maxResponseBytes)
                let fields = response.headers.map { (name: $0.name, value: $0.value) }
                return NodeResponse(status: Int(response.status.code), headers: fields, body: Array(received.readableBytesView))
            }
        } catch {
            throw Self.typed(error, what: what, budget: budget)
        }
    }

    /// Closes the connections to the node; a request after this fails with `.connectionClosed`.
    public func shutdown() {
        http.shutdown { _ in }
    }

    /// Whether the node closed or reset the connection before any answer: what a keep-alive
    /// connection the node dropped while idle looks like, whether its FIN or its RST came first.
    private static func isClosedBeforeAnswer(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError { return error == .remoteConnectionClosed }
        if let error = error as? IOError { return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE }
        return false
    }

    /// The transport's failure as the client's typed error.
    private static func typed(_ error: any Error, what: String, budget: Duration) -> NodeClientError {
        if let error = error as? NodeClientError { return error }
        if error is NIOTooManyBytesError {
            return NodeClientError(.protocolError, "\(what): the answer is too large")
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .getConnectionFromPoolTimeout:
                return NodeClientError(.timeout, "\(what) got no answer within \(budget)")
            case .remoteConnectionClosed, .cancelled, .alreadyShutdown:
                return NodeClientError(.connectionClosed, "\(what): the node closed the connection without a complete answer (\(error))")
            case .invalidProxyResponse, .bodyLengthMismatch, .contentLengthMissing:
                return NodeClientError(.protocolError, "\(what): not a valid HTTP answer (\(error))")
            default:
                return NodeClientError(.connectionClosed, "\(what): \(error)")
            }
        }
        if error is HTTPParserError {
            return NodeClientError(.protocolError, "\(what): not a valid HTTP answer (\(error))")
        }
        if error is NIOSSLError || error is BoringSSLError {
            return NodeClientError(.connectionFailed, "\(what): TLS failed: \(error)")
        }
        if isClosedBeforeAnswer(error) {
            return NodeClientError(.connectionClosed, "\(what): the node closed the connection without a complete answer (\(error))")
        }
        if error is NIOConnectionError || error is IOError || error is ChannelError {
            if case ChannelError.connectTimeout = error {
                return NodeClientError(.timeout, "\(what): connecting timed out")
            }
            return NodeClientError(.connectionFailed, "\(what): cannot connect: \(error)")
        }
        if error is CancellationError {
            return NodeClientError(.connectionClosed, "\(what): cancelled")
        }
        return NodeClientError(.connectionClosed, "\(what) failed: \(error)")
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(max(0, duration.nanosecondsClamped))
    }
}
