import Concord
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// An HTTP/1.1 client for a node's API (DESIGN.md, "Node HTTP API"), for the CLI, the chaos
/// harness and tests: keep-alive connections reused from a small pool, and a deadline on every
/// request, connecting included, so no caller waits on a wedged node forever. Keys are
/// percent-encoded with `CacheKeyPath`, so any key round-trips. Idle connections are closed by
/// `shutdown()` or when the client is released.
public final class NodeClient: Sendable {
    /// Timeouts, pool size and response limit; the defaults suit a local cluster.
    public struct Configuration: Sendable {
        /// The whole request, connecting included, must finish within this.
        public var requestTimeout: Duration
        /// Connecting alone may take at most this, and never more than what is left of the
        /// request's time; nil: only the request's time bounds it.
        public var connectTimeout: Duration?
        /// Idle keep-alive connections kept for reuse; more concurrent requests open more, closed after.
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
    private let group: any EventLoopGroup
    /// The TLS context, or why it could not be made (then every request fails with that).
    private let tlsContext: Result<NIOSSLContext, NodeClientError>?
    private let logger: Logger
    private let pool = Mutex(Pool())

    private struct Pool {
        var idle: [HTTPConnection] = []
        var closed = false
    }

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
        self.group = eventLoopGroup
        self.tlsContext = configuration.tls.map { tls in
            Result { try NIOSSLContext(configuration: tls) }
                .mapError { NodeClientError(.connectionFailed, "cannot set up TLS: \($0)") }
        }
        var logger = logger
        logger[metadataKey: "concord.node.address"] = "\(host):\(port)"
        self.logger = logger
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
        shutdown()
    }

    /// `http://host:port`, or `https://` with TLS.
    public var baseURL: String { "\(tlsContext == nil ? "http" : "https")://\(hostAndPort)" }

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
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: hostAndPort)
        head.headers.add(name: "User-Agent", value: "concord")
        if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
        if let token = configuration.bearerToken { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for header in headers { head.headers.add(name: header.name, value: header.value) }
        let buffer = body.map { ByteBuffer(bytes: $0) }

        // At most one retry, and only when a reused connection closed before answering anything:
        // then the node most likely dropped it while idle and never saw the request.
        return try await Retry.run(
            backoff: .fixed(.zero),
            limit: .attempts(2),
            isRetryable: { $0 is ReusedConnectionClosed },
            onFailure: { _, _, _ in self.logger.trace("keep-alive connection was closed by the node; retrying on a new one") }
        ) { attempt in
            let remaining = deadline - clock.now
            guard remaining > .zero else { throw NodeClientError(.timeout, "\(what) got no answer within \(budget)") }
            let (connection, reused) = try await checkout(timeout: remaining, what: what)
            do {
                let (response, keepAlive) = try await connection.send(
                    head, body: buffer, timeout: Self.timeAmount(deadline - clock.now), what: what
                ).get()
                if keepAlive { checkin(connection) } else { connection.close() }
                return response
            } catch let retry as RetryableClose {
                connection.close()
                guard reused, attempt == 0 else { throw retry.error }
                throw ReusedConnectionClosed()
            } catch let error as NodeClientError {
                connection.close()
                throw error
            } catch {
                connection.close()
                throw NodeClientError(.connectionClosed, "\(what) failed: \(error)")
            }
        }
    }

    /// A kept-alive connection closed before any answer: the request goes again on a new one.
    private struct ReusedConnectionClosed: Error {}

    /// Closes the idle connections and stops keeping new ones; in-flight requests finish, and
    /// later requests still work, each on a connection of its own.
    public func shutdown() {
        let idle = pool.withLock { pool in
            pool.closed = true
            defer { pool.idle.removeAll() }
            return pool.idle
        }
        for connection in idle { connection.close() }
    }

    private func checkout(timeout: Duration, what: String) async throws(NodeClientError) -> (HTTPConnection, reused: Bool) {
        while let connection = pool.withLock({ $0.idle.popLast() }) {
            if connection.isUsable { return (connection, true) }
            connection.close()
        }
        let connectTimeout = Self.timeAmount(configuration.connectTimeout.map { min(timeout, $0) } ?? timeout)
        let sslContext: NIOSSLContext?
        switch tlsContext {
        case .success(let context)?: sslContext = context
        case .failure(let error)?: throw error
        case nil: sslContext = nil
        }
        do {
            let connection = try await HTTPConnection.connect(
                host: host, port: port, group: group, timeout: connectTimeout, maxResponseBytes: configuration.maxResponseBytes,
                sslContext: sslContext
            )
            // Bounds a connect the bootstrap's own timeout does not catch, such as a slow name lookup.
            .deadline(connectTimeout + .milliseconds(50), NodeClientError(.timeout, "\(what): connecting timed out"))
            .get()
            return (connection, false)
        } catch let error as NodeClientError {
            throw error
        } catch ChannelError.connectTimeout {
            throw NodeClientError(.timeout, "\(what): connecting timed out")
        } catch {
            throw NodeClientError(.connectionFailed, "\(what): cannot connect: \(error)")
        }
    }

    private func checkin(_ connection: HTTPConnection) {
        let keep = pool.withLock { pool -> Bool in
            guard !pool.closed, pool.idle.count < configuration.maxIdleConnections, connection.isUsable else { return false }
            pool.idle.append(connection)
            return true
        }
        if !keep { connection.close() }
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(max(0, duration.nanosecondsClamped))
    }
}
