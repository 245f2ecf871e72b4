import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 client for one Concord node's API (DESIGN.md, "Node HTTP API"), with
/// keep-alive connection reuse and a deadline on every request so the harness never hangs.
public final class NodeClient: Sendable {
    /// Timeouts and pool size; the defaults suit a local cluster.
    public struct Configuration: Sendable {
        /// The whole request, connecting included, must finish within this.
        public var requestTimeout: Duration = .seconds(2)
        /// Connecting alone may take at most this (and never more than what is left of the request's time).
        public var connectTimeout: Duration = .seconds(1)
        /// Idle keep-alive connections kept for reuse; more concurrent requests open more, closed after.
        public var maxIdleConnections: Int = 4

        public init() {}
    }

    public let host: String
    public let port: Int
    public let configuration: Configuration
    private let group: any EventLoopGroup
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
        logger: Logger
    ) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.group = eventLoopGroup
        var logger = logger
        logger[metadataKey: "concord.node.address"] = "\(host):\(port)"
        self.logger = logger
    }

    // MARK: Node API

    /// `GET /v1/cache/{key}`. Any HTTP status is returned; only transport failures throw.
    public func get(_ key: String) async throws -> CacheRead {
        CacheRead(try await request(.GET, "/v1/cache/" + Self.pathSegment(key)))
    }

    /// `PUT /v1/cache/{key}`, with `?background=true` to write L2 in the background.
    public func put(_ key: String, body: [UInt8], background: Bool = false) async throws -> NodeResponse {
        let query = background ? "?background=true" : ""
        return try await request(
            .PUT, "/v1/cache/" + Self.pathSegment(key) + query, body: body, contentType: "application/octet-stream")
    }

    /// `DELETE /v1/cache/{key}`.
    public func delete(_ key: String) async throws -> NodeResponse {
        try await request(.DELETE, "/v1/cache/" + Self.pathSegment(key))
    }

    /// `POST /v1/invalidate` with `{"keys": [...]}`.
    public func invalidate(keys: [String]) async throws -> NodeResponse {
        struct Body: Encodable { var keys: [String] }
        let json = try JSONEncoder().encode(Body(keys: keys))
        return try await request(.POST, "/v1/invalidate", body: Array(json), contentType: "application/json")
    }

    /// `GET /v1/stats`: the JSON body. A non-2xx answer throws, since there are no stats to return.
    public func stats() async throws -> [UInt8] {
        let response = try await request(.GET, "/v1/stats")
        guard response.isSuccess else {
            throw ChaosError(.invalidResponse, "GET /v1/stats answered \(response.status): \(response.bodyString.prefix(200))")
        }
        return response.body
    }

    /// `GET /ready`: true when the node answers 200 (backplane connected), false for any other status.
    public func ready() async throws -> Bool {
        try await request(.GET, "/ready").status == 200
    }

    /// `GET /health`: true when the node answers 200.
    public func health() async throws -> Bool {
        try await request(.GET, "/health").status == 200
    }

    // MARK: Requests

    /// Sends any request; `path` includes the query; `timeout` overrides the configured request
    /// timeout for this request only. Throws `ChaosError` with `.timeout`, `.connectFailed`,
    /// `.connectionClosed` or `.invalidResponse`.
    public func request(
        _ method: HTTPMethod,
        _ path: String,
        headers: [NodeResponse.Header] = [],
        body: [UInt8]? = nil,
        contentType: String? = nil,
        timeout: Duration? = nil
    ) async throws -> NodeResponse {
        let clock = ContinuousClock()
        let budget = timeout ?? configuration.requestTimeout
        let deadline = clock.now + budget
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        if let body {
            head.headers.add(name: "Content-Length", value: "\(body.count)")
            if let contentType { head.headers.add(name: "Content-Type", value: contentType) }
        }
        for header in headers { head.headers.add(name: header.name, value: header.value) }
        let buffer = body.map { ByteBuffer(bytes: $0) }

        // At most one retry, and only when a reused connection closed before answering anything.
        for attempt in 0..<2 {
            let remaining = deadline - clock.now
            guard remaining > .zero else { break }
            let (connection, reused) = try await checkout(timeout: remaining)
            do {
                let (response, keepAlive) = try await connection.send(
                    head, body: buffer, timeout: Self.timeAmount(deadline - clock.now)
                ).get()
                if keepAlive { checkin(connection) } else { connection.close() }
                return response
            } catch let retry as RetryableClose {
                connection.close()
                guard reused, attempt == 0 else { throw retry.error }
                logger.trace("keep-alive connection was closed by the node; retrying on a new one")
            } catch let error as ChaosError {
                connection.close()
                throw error
            } catch {
                connection.close()
                throw ChaosError(.invalidResponse, "\(method) \(path) failed", underlying: error)
            }
        }
        throw ChaosError(.timeout, "\(method) \(path) did not finish within \(budget)")
    }

    /// Closes the idle connections and refuses new requests' reuse; in-flight requests finish.
    public func shutdown() {
        let idle = pool.withLock { pool in
            pool.closed = true
            defer { pool.idle.removeAll() }
            return pool.idle
        }
        for connection in idle { connection.close() }
    }

    private func checkout(timeout: Duration) async throws -> (HTTPConnection, reused: Bool) {
        while let connection = pool.withLock({ $0.idle.popLast() }) {
            if connection.isUsable { return (connection, true) }
            connection.close()
        }
        let connectTimeout = Self.timeAmount(min(timeout, configuration.connectTimeout))
        do {
            let connection = try await HTTPConnection.connect(host: host, port: port, group: group, timeout: connectTimeout)
                .deadline(connectTimeout + .milliseconds(50), "connecting to \(host):\(port) timed out")
                .get()
            return (connection, false)
        } catch let error as ChaosError {
            throw error
        } catch let error as ChannelError {
            if case .connectTimeout = error {
                throw ChaosError(.timeout, "connecting to \(host):\(port) timed out", underlying: error)
            }
            throw ChaosError(.connectFailed, "could not connect to \(host):\(port)", underlying: error)
        } catch {
            throw ChaosError(.connectFailed, "could not connect to \(host):\(port)", underlying: error)
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
        .nanoseconds(max(0, duration.nanosecondsValue))
    }

    /// Percent-encodes a key for use as one path segment: everything but RFC 3986's unreserved
    /// characters, so keys with "/", "?", "%" or spaces reach the node intact.
    static func pathSegment(_ key: String) -> String {
        var out = ""
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                let hex = Array("0123456789ABCDEF")
                out.append("%")
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }
}
