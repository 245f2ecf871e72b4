import Concord
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import NIOCore
import Tracing

/// The node's HTTP API over one `HybridCache`: the cache routes, invalidation, stats, health,
/// readiness and metrics, with JSON errors and 405 for a known path with the wrong method.
struct NodeRoutes: Sendable {
    typealias Context = BasicAuthRequestContext<APIScope>
    typealias Handler = @Sendable (Request, Context) async throws -> Response

    var cache: HybridCache
    let origin: (any Origin)?
    let readiness: NodeReadiness
    let metrics: NodeMetrics
    let tokens: AccessTokens
    let logger: Logger
    /// Where this cache's routes live: `/v1` for the node's default cache, `/v1/caches/NAME`
    /// for every cache the node holds (the default one included).
    var basePath = "/v1"
    /// The node's other caches, each served under `/v1/caches/NAME/…` by a router of its own routes.
    var namedCaches: [String: HybridCache] = [:]

    /// Bodies of `POST /v1/invalidate` are small JSON documents; this bounds what is buffered.
    static let invalidateBodyLimit = 1 << 20
    /// A bound on keys per invalidation, so one request cannot hold the node for long.
    static let invalidateKeyLimit = 10_000

    static let versionHeader = HTTPField.Name("Concord-Version")!
    static let sourceHeader = HTTPField.Name("Concord-Source")!
    static let staleHeader = HTTPField.Name("Concord-Stale")!

    /// Whether the process bootstrapped a tracer (swift-distributed-tracing's `InstrumentationSystem`).
    static var isTracingBootstrapped: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }

    func makeRouter() -> Router<Context> {
        let router = Router(context: Context.self, options: .autoGenerateHeadEndpoints)
        // A span per request, its parent taken from a `traceparent` header by the bootstrapped
        // instrument; only when the process bootstrapped a tracer, so an untraced node pays nothing.
        if Self.isTracingBootstrapped {
            router.add(middleware: NodeTracingMiddleware())
        }
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorBodyMiddleware(logger: logger))
        router.add(middleware: BearerTokenAuthenticator(tokens: tokens))
        addCacheRoutes(to: router)
        for (name, cache) in namedCaches.sorted(by: { $0.key < $1.key }) {
            var routes = self
            routes.cache = cache
            routes.basePath = "/v1/caches/" + name
            routes.namedCaches = [:]
            routes.addCacheRoutes(to: router)
        }
        // Probes of orchestrators carry no token: liveness and readiness stay open.
        add(router, "/health", [.get: (nil, health)])
        add(router, "/ready", [.get: (nil, ready)])
        add(router, "/metrics", [.get: (.metrics, metricsText)])
        return router
    }

    /// The routes of one cache under `basePath`: entries, invalidation, tags, clear and stats.
    private func addCacheRoutes(to router: Router<Context>) {
        let cacheHandlers: [HTTPRequest.Method: (APIScope?, Handler)] = [.get: (.read, get), .put: (.admin, put), .delete: (.admin, delete)]
        add(router, RouterPath(basePath + "/cache/**"), cacheHandlers)
        // `…/cache` and `…/cache/` name no key; the same handlers answer 400 for them.
        add(router, RouterPath(basePath + "/cache"), cacheHandlers)
        add(router, RouterPath(basePath + "/invalidate"), [.post: (.admin, invalidate)])
        add(router, RouterPath(basePath + "/tags/**"), [.delete: (.admin, removeTag)])
        add(router, RouterPath(basePath + "/clear"), [.post: (.admin, clear)])
        add(router, RouterPath(basePath + "/stats"), [.get: (.read, stats)])
    }

    /// Registers the handlers of a path, each behind the scope it needs (nil: open to all), and
    /// a 405 with `Allow` for every other common method (Hummingbird's router answers 404 for a
    /// path whose method does not match).
    private func add(_ router: Router<Context>, _ path: RouterPath, _ handlers: [HTTPRequest.Method: (APIScope?, Handler)]) {
        let tokens = self.tokens
        for (method, (scope, handler)) in handlers {
            router.on(path, method: method) { request, context in
                if let scope { try Self.authorize(scope, context: context, tokens: tokens) }
                return try await handler(request, context)
            }
        }
        var methods = Array(handlers.keys)
        if handlers[.get] != nil { methods.append(.head) }
        let allowed = methods.sorted { $0.rawValue < $1.rawValue }
        for method in [HTTPRequest.Method.get, .head, .put, .post, .delete, .patch, .options] where !allowed.contains(method) {
            router.on(path, method: method) { request, _ -> Response in
                throw NodeAPIError.methodNotAllowed(request.method, allowed: allowed)
            }
        }
    }

    // MARK: - Cache routes

    /// With an origin, a miss loads the key from it through `getOrSet` (one load per key for
    /// all concurrent callers). A row absent from the origin is a 404 and is not cached: no
    /// negative entry, so a row the origin gains later is served at the next GET without any
    /// invalidation, at the price of one origin query per GET of an absent key.
    @Sendable func get(_ request: Request, _ context: Context) async throws -> Response {
        let key = try checkedKey(request)
        let result: CacheResult<[UInt8]>
        if let origin {
            result = try await cache.getOrSetResult(key, as: [UInt8].self, tags: try Self.tags(in: request)) { context in
                let loaded: [UInt8]?
                do {
                    loaded = try await origin.load(key, context: context)
                } catch let error as CacheError {
                    throw error
                } catch {
                    // The cache rethrows a loader's error as is; the API answers it as the origin's.
                    throw CacheError(.factoryFailed, "the origin failed to load '\(NodeAPIError.truncated(key))'", underlying: error)
                }
                guard let value = loaded else {
                    throw CacheError(.notFound, "no value for key '\(NodeAPIError.truncated(key))' in the cache or the origin")
                }
                return value
            }
        } else {
            guard let found = try await cache.getResult(key, as: [UInt8].self) else { throw NodeAPIError.keyNotFound(key) }
            result = found
        }
        var headers = Self.headers(version: result.version)
        headers[.contentType] = "application/octet-stream"
        headers[Self.sourceHeader] = Self.sourceName(result.source)
        headers[Self.staleHeader] = result.isStale ? "true" : "false"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: result.value)))
    }

    @Sendable func put(_ request: Request, _ context: Context) async throws -> Response {
        let key = try checkedKey(request)
        var options = cache.configuration.defaultEntryOptions
        options.allowBackgroundDistributedOperations = try Self.flag("background", in: request)
        let limit = cache.configuration.maxValueBytes
        // A declared length over the limit is refused before a byte of the body is read.
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw NodeAPIError.valueTooLarge(limit: limit)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw NodeAPIError.valueTooLarge(limit: limit)
        }
        let version = try await cache.set(key, Array(body.readableBytesView), options: options, tags: try Self.tags(in: request))
        return JSONBody.response(VersionBody(version: version.description), headers: Self.headers(version: version))
    }

    @Sendable func delete(_ request: Request, _ context: Context) async throws -> Response {
        let key = try checkedKey(request)
        let version = try await cache.remove(key)
        return JSONBody.response(VersionBody(version: version.description), headers: Self.headers(version: version))
    }

    /// Expires the keys on every node: they stay available to fail-safe but are no longer served
    /// as fresh, so the next GET reloads them (from L2 if it holds a newer write, else the origin).
    @Sendable func invalidate(_ request: Request, _ context: Context) async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.invalidateBodyLimit)
        } catch is NIOTooManyBytesError {
            throw NodeAPIError(.contentTooLarge, code: "valueTooLarge", message: "the body is larger than \(Self.invalidateBodyLimit) bytes", headers: [.connection: "close"])
        }
        let body: InvalidateBody
        do {
            body = try JSONDecoder().decode(InvalidateBody.self, from: Data(buffer.readableBytesView))
        } catch {
            throw NodeAPIError(.badRequest, code: "malformedJSON", message: "expected a JSON object {\"keys\": [\"key\", ...]}")
        }
        guard body.keys.count <= Self.invalidateKeyLimit else {
            throw NodeAPIError(.badRequest, code: "tooManyKeys", message: "at most \(Self.invalidateKeyLimit) keys per request, got \(body.keys.count)")
        }
        // All keys are checked first, so a bad key leaves every key untouched.
        for key in body.keys { try checkKey(key) }
        var versions: [String: String] = [:]
        for (position, key) in body.keys.enumerated() {
            do {
                versions[key] = try await cache.expire(key).description
            } catch let error as CacheError where error.code == .writeQueueFull {
                // Keys are invalidated in order: say how far this request got, so a retry can
                // resend the rest (invalidating a key again is harmless).
                throw NodeAPIError(
                    .serviceUnavailable, code: "writeQueueFull",
                    message: "invalidated the first \(position) of \(body.keys.count) keys, then: \(error.message)",
                    headers: [.retryAfter: "1"])
            }
        }
        return JSONBody.response(InvalidatedBody(invalidated: versions.count, versions: versions))
    }

    /// Removes every entry carrying the tag, on every node (`DELETE /v1/tags/{tag}`, the tag
    /// percent-encoded like a key).
    @Sendable func removeTag(_ request: Request, _ context: Context) async throws -> Response {
        let path = request.uri.path
        let tagPrefix = basePath + "/tags/"
        guard path.hasPrefix(tagPrefix), let tag = PercentDecoding.decode(path.utf8.dropFirst(tagPrefix.utf8.count)), !tag.isEmpty else {
            throw NodeAPIError.invalidKey("the tag is empty or not valid percent-encoded UTF-8; use \(tagPrefix)TAG")
        }
        try checkKey(tag)
        let version = try await cache.removeByTag(tag)
        return JSONBody.response(VersionBody(version: version.description), headers: Self.headers(version: version))
    }

    /// Clears the cache on every node (`POST /v1/clear`): entries are expired and kept for
    /// fail-safe, or removed outright with `?failSafe=false`.
    @Sendable func clear(_ request: Request, _ context: Context) async throws -> Response {
        var keepForFailSafe = true
        if request.uri.queryParameters["failSafe"] != nil { keepForFailSafe = try Self.flag("failSafe", in: request) }
        let version = try await cache.clear(allowFailSafe: keepForFailSafe)
        return JSONBody.response(VersionBody(version: version.description), headers: Self.headers(version: version))
    }

    // MARK: - Operations

    @Sendable func stats(_ request: Request, _ context: Context) async throws -> Response {
        JSONBody.response(cache.statistics)
    }

    @Sendable func health(_ request: Request, _ context: Context) async throws -> Response {
        JSONBody.response(HealthBody(status: "ok", node: cache.nodeID))
    }

    @Sendable func ready(_ request: Request, _ context: Context) async throws -> Response {
        let report = readiness.check()
        metrics.recordReadiness(report.ready)
        guard report.ready else {
            throw NodeAPIError(.serviceUnavailable, code: "notReady", message: report.reason ?? "not ready")
        }
        return JSONBody.response(report)
    }

    @Sendable func metricsText(_ request: Request, _ context: Context) async throws -> Response {
        metrics.recordReadiness(readiness.check().ready)
        // The counters kept by their owners (L1's, the pending queue's) are handed to the
        // metrics system now, so this scrape shows what `/v1/stats` shows.
        cache.exportMetrics()
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
        )
    }

    // MARK: - Helpers

    /// Refuses a request whose token does not grant `scope`: 401 without a known token, 403
    /// with a token of another scope. Runs before anything of the request is read or checked.
    static func authorize(_ scope: APIScope, context: Context, tokens: AccessTokens) throws(NodeAPIError) {
        guard tokens.isProtected(scope) else { return }
        guard let granted = context.identity else {
            throw NodeAPIError(
                .unauthorized, code: "unauthorized",
                message: "this request needs an Authorization: Bearer token",
                headers: [.wwwAuthenticate: #"Bearer realm="concord""#]
            )
        }
        guard granted.contains(scope) else {
            let needed = scope == .admin ? "an admin token" : scope == .metrics ? "a metrics or admin token" : "a read or admin token"
            throw NodeAPIError(.forbidden, code: "forbidden", message: "this request needs \(needed)")
        }
    }

    /// The key from the path, checked like the cache checks it, so a bad key is refused before
    /// a PUT body is read.
    private func checkedKey(_ request: Request) throws -> String {
        let key = try CacheKeyPath.key(fromRawPath: request.uri.path, prefix: basePath + "/cache/")
        try checkKey(key)
        return key
    }

    private func checkKey(_ key: String) throws {
        let length = key.utf8.count
        if length == 0 { throw NodeAPIError.invalidKey("the key is empty") }
        let limit = cache.configuration.maxKeyBytes
        if length > limit {
            throw NodeAPIError(.badRequest, code: "keyTooLong", message: "the key is \(length) bytes; the limit is \(limit)")
        }
        // Redis compares keys by bytes, L1 as strings: only NFC keys mean the same to both, so
        // `e%CC%81` (NFD) is refused rather than taken for `%C3%A9`.
        guard HybridCache.isNormalizedKey(key) else {
            throw NodeAPIError.invalidKey("the key is not in Unicode normalization form C; percent-encode its NFC form (for é: %C3%A9, not e%CC%81)")
        }
    }

    /// A bound on tags per entry, so one request cannot make an entry arbitrarily large.
    static let tagLimit = 64

    /// The `tag` query parameters (repeatable) of a GET or PUT: the tags a stored or loaded
    /// entry carries. Each is checked like a key.
    static func tags(in request: Request) throws -> [String] {
        let tags: [String] = request.uri.queryParameters.getAll("tag")
        guard tags.count <= tagLimit else {
            throw NodeAPIError(.badRequest, code: "tooManyTags", message: "at most \(tagLimit) tags per entry, got \(tags.count)")
        }
        for tag in tags where tag.isEmpty {
            throw NodeAPIError(.badRequest, code: "invalidTag", message: "a tag is empty")
        }
        return tags
    }

    /// A boolean query parameter: absent is false; anything but true/false/1/0 is a 400.
    static func flag(_ name: String, in request: Request) throws -> Bool {
        guard let value = request.uri.queryParameters[name[...]] else { return false }
        switch value.lowercased() {
        case "", "true", "1": return true
        case "false", "0": return false
        default:
            throw NodeAPIError(.badRequest, code: "invalidQuery", message: "\(name) must be true or false, got '\(NodeAPIError.truncated(String(value)))'")
        }
    }

    static func headers(version: CacheVersion) -> HTTPFields {
        var headers = HTTPFields()
        headers[versionHeader] = version.description
        return headers
    }

    /// The wire name of a value's source: a factory is the node's origin.
    static func sourceName(_ source: CacheValueSource) -> String {
        switch source {
        case .memory: "memory"
        case .distributed: "distributed"
        case .factory: "origin"
        }
    }
}

/// `{"version": "..."}`, the answer to PUT and DELETE.
struct VersionBody: Codable, Sendable {
    var version: String
}

/// The body of `POST /v1/invalidate`.
struct InvalidateBody: Codable, Sendable {
    var keys: [String]
}

/// The answer to `POST /v1/invalidate`: how many keys, and the version of each expiry.
struct InvalidatedBody: Codable, Sendable {
    var invalidated: Int
    var versions: [String: String]
}

/// The answer to `GET /health`.
struct HealthBody: Codable, Sendable {
    var status: String
    var node: String
}
