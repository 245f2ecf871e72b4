import Concord
import HTTPTypes
import NIOCore

/// Answers `GET /v1/cache/{key}` from L1 without the router, for `MemoryHitHandler`: a hit
/// gets the router's answer (same status, headers and body) and is counted in the same
/// metrics; anything else (a miss, a stale entry, a query, a bad key, a missing or wrong token,
/// `Connection: close`) is declined, and the router answers it as before. It never answers with
/// an error itself, so every error still has the router's one shape. `GET /health` is answered
/// here too, with the router's answer: liveness probes are frequent and need nothing else.
struct MemoryHitResponder: Sendable {
    let cache: HybridCache
    let tokens: AccessTokens
    let metrics: NodeMetrics
    /// The `Server` header the application adds to every answer.
    let serverName: String
    /// The body of `GET /health`, the same for every request.
    private let healthBody: [UInt8]

    init(cache: HybridCache, tokens: AccessTokens, metrics: NodeMetrics, serverName: String) {
        self.cache = cache
        self.tokens = tokens
        self.metrics = metrics
        self.serverName = serverName
        self.healthBody = JSONBody.encode(HealthBody(status: "ok", node: cache.nodeID))
    }

    /// A request this path may answer.
    enum DirectRequest: Sendable, Equatable {
        /// A GET of a key, answered when L1 holds it fresh.
        case cacheRead(key: String)
        /// `GET /health`: the same for every request, and open to all as on the router.
        case health
    }

    /// What a request asks, when it is one this path may answer; nil otherwise. Checked when the
    /// head arrives, before the request's end: as the router's routes check it.
    func directRequest(of request: HTTPRequest) -> DirectRequest? {
        guard request.method == .get, let path = request.path else { return nil }
        // Hummingbird ends the connection after answering `Connection: close`; the router does that.
        if let connection = request.headerFields[.connection], connection.lowercased() != "keep-alive" { return nil }
        if path == "/health" { return .health }
        return key(of: request, path: path).map { .cacheRead(key: $0) }
    }

    /// The key a GET of the cache route reads, when this path may answer it.
    private func key(of request: HTTPRequest, path: String) -> String? {
        guard path.utf8.starts(with: CacheKeyPath.prefix.utf8) else { return nil }
        // A query (tags, flags) or a fragment is the router's to interpret.
        guard !path.utf8.contains(UInt8(ascii: "?")), !path.utf8.contains(UInt8(ascii: "#")) else { return nil }
        if tokens.isProtected(.read) {
            // The same parse as HummingbirdAuth's `bearer`, so this path accepts nothing the router would refuse.
            guard let authorization = request.headerFields[.authorization], authorization.hasPrefix("Bearer "),
                  tokens.scopes(of: String(authorization.dropFirst("Bearer ".count))).contains(.read)
            else { return nil }
        }
        guard let key = try? CacheKeyPath.key(fromRawPath: path) else { return nil }
        let length = key.utf8.count
        guard length > 0, length <= cache.configuration.maxKeyBytes, HybridCache.isNormalizedKey(key) else { return nil }
        return key
    }

    /// The answer to a GET of `key` when L1 holds it fresh (counted as a hit), else nil with
    /// nothing counted.
    func answer(_ key: String, date: String, allocator: ByteBufferAllocator) -> (head: HTTPResponse, body: ByteBuffer)? {
        guard let result = try? cache.servableMemoryHit(key) else { return nil }
        var body = allocator.buffer(capacity: result.value.count)
        body.writeBytes(result.value)
        // The router's header order: the route's own, then Content-Length, Date and Server.
        // Appended, not assigned: assigning looks for an earlier field of the same name first,
        // and these names are all distinct.
        var headers = HTTPFields()
        headers.reserveCapacity(7)
        headers.append(HTTPField(name: NodeRoutes.versionHeader, value: result.version.description))
        headers.append(HTTPField(name: .contentType, value: "application/octet-stream"))
        headers.append(HTTPField(name: NodeRoutes.sourceHeader, value: NodeRoutes.sourceName(result.source)))
        headers.append(HTTPField(name: NodeRoutes.staleHeader, value: result.isStale ? "true" : "false"))
        headers.append(HTTPField(name: .contentLength, value: String(result.value.count)))
        headers.append(HTTPField(name: .date, value: date))
        headers.append(HTTPField(name: .server, value: serverName))
        return (HTTPResponse(status: .ok, headerFields: headers), body)
    }

    /// Writes the whole answer to a GET of the key whose UTF-8 bytes are `keyBytes` (as HTTP/1.1
    /// bytes, exactly as the router's answer is encoded) when L1 holds it servable (counted as
    /// a hit); false with nothing written or counted otherwise, and for a key that
    /// `HybridCache.readsKeyBytes` does not take.
    func writeAnswer(keyBytes: UnsafeRawBufferPointer, date: String, into buffer: inout ByteBuffer) -> Bool {
        guard let result = try? cache.servableMemoryHit(utf8: keyBytes) else { return false }
        // The header order of `answer(_:date:allocator:)`, names as NIO's encoder writes them.
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nConcord-Version: ")
        buffer.writeString(String(result.version.milliseconds))
        buffer.writeStaticString(".")
        buffer.writeString(String(result.version.counter))
        buffer.writeStaticString("@")
        buffer.writeString(result.version.node)
        buffer.writeStaticString("\r\nContent-Type: application/octet-stream\r\nConcord-Source: ")
        buffer.writeString(NodeRoutes.sourceName(result.source))
        buffer.writeStaticString(result.isStale ? "\r\nConcord-Stale: true\r\nContent-Length: " : "\r\nConcord-Stale: false\r\nContent-Length: ")
        buffer.writeString(String(result.value.count))
        writeTail(date: date, into: &buffer)
        buffer.writeBytes(result.value)
        return true
    }

    /// Writes the whole answer to `GET /health`, as `writeAnswer` does for a hit.
    func writeHealthAnswer(date: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: ")
        buffer.writeString(JSONBody.contentType)
        buffer.writeStaticString("\r\nContent-Length: ")
        buffer.writeString(String(healthBody.count))
        writeTail(date: date, into: &buffer)
        buffer.writeBytes(healthBody)
    }

    /// `Date` and `Server`, then the head's end.
    private func writeTail(date: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(date)
        buffer.writeStaticString("\r\nServer: ")
        buffer.writeString(serverName)
        buffer.writeStaticString("\r\n\r\n")
    }

    /// The router's answer to `GET /health` (`NodeRoutes.health`): same body, same headers.
    func healthAnswer(date: String, allocator: ByteBufferAllocator) -> (head: HTTPResponse, body: ByteBuffer) {
        let encoded = healthBody
        var body = allocator.buffer(capacity: encoded.count)
        body.writeBytes(encoded)
        var headers = HTTPFields()
        headers.reserveCapacity(4)
        headers.append(HTTPField(name: .contentType, value: JSONBody.contentType))
        headers.append(HTTPField(name: .contentLength, value: String(encoded.count)))
        headers.append(HTTPField(name: .date, value: date))
        headers.append(HTTPField(name: .server, value: serverName))
        return (HTTPResponse(status: .ok, headerFields: headers), body)
    }

    /// Counts an answered hit as `RequestMetricsMiddleware` counts the router's answers.
    func recordHit(duration: Duration) {
        metrics.recordDirectHit(duration: duration)
    }

    /// Counts an answered `/health` as `RequestMetricsMiddleware` counts the router's answers.
    func recordHealth(duration: Duration) {
        metrics.recordDirectHealth(duration: duration)
    }
}
