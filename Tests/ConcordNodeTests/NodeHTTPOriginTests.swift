import Concord
@testable import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// A node whose origin is a real HTTP upstream (`UpstreamServer` on a loopback port): keys in
/// the URL template, ETag revalidation, 404, 5xx and slow answers as factory errors under
/// fail-safe, the value limit, and Cache-Control.
@Suite("Node HTTP origin")
struct NodeHTTPOriginTests {
    private func withNode(
        _ upstream: UpstreamServer,
        origin configureOrigin: @escaping @Sendable (inout HTTPOrigin.Configuration) -> Void = { _ in },
        node configureNode: @escaping @Sendable (inout NodeConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any TestClientProtocol, CacheNode) async throws -> Void
    ) async throws {
        try await upstream.run { port in
            var configuration = testConfiguration(configureNode).httpOriginConfiguration
            configureOrigin(&configuration)
            let origin = try HTTPOrigin(template: "http://127.0.0.1:\(port)/items/{key}", configuration: configuration, logger: quietLogger)
            let node = try makeMemoryNode(origin: origin, configureNode)
            try await node.makeApplication().test(.router) { client in
                try await body(client, node)
            }
        }
    }

    @Test("a miss is a GET of the template with the key percent-encoded; the value is the body")
    func loadsThroughTheTemplate() async throws {
        let upstream = UpstreamServer()
        upstream.set("a b/c?d", "from upstream")
        try await withNode(upstream) { client, node async throws in
            let first = try await client.get("/v1/cache/a%20b%2Fc%3Fd")
            #expect(first.status == .ok)
            #expect(first.text == "from upstream")
            #expect(first.source == "origin")
            #expect(upstream.seen.map(\.path) == ["/items/a%20b%2Fc%3Fd"])
            let second = try await client.get("/v1/cache/a%20b%2Fc%3Fd")
            #expect(second.source == "memory")
            #expect(upstream.seen.count == 1)
        }
    }

    @Test("404 from the upstream is a 404 from the node, and is not cached")
    func absentIsNotFound() async throws {
        let upstream = UpstreamServer()
        try await withNode(upstream) { client, _ async throws in
            expectError(try await client.get("/v1/cache/nothing"), .notFound, code: "notFound")
            upstream.set("nothing", "arrived")
            #expect(try await client.get("/v1/cache/nothing").text == "arrived")
        }
    }

    @Test("an invalidated key revalidates with If-None-Match; 304 keeps the value, a new ETag replaces it")
    func etagRevalidation() async throws {
        let upstream = UpstreamServer()
        upstream.set("item", "v1", etag: "\"e1\"")
        try await withNode(upstream) { client, node async throws in
            #expect(try await client.get("/v1/cache/item").text == "v1")
            #expect(upstream.seen.last?.ifNoneMatch == nil)

            #expect(try await client.post("/v1/invalidate", #"{"keys": ["item"]}"#).status == .ok)
            let revalidated = try await client.get("/v1/cache/item")
            #expect(revalidated.status == .ok)
            #expect(revalidated.text == "v1")
            #expect(revalidated.stale == "false")
            #expect(upstream.seen.last?.ifNoneMatch == "\"e1\"")
            // Served fresh again after the 304: the next GET is a memory hit.
            #expect(try await client.get("/v1/cache/item").source == "memory")
            #expect(upstream.seen.count == 2)

            upstream.set("item", "v2", etag: "\"e2\"")
            #expect(try await client.post("/v1/invalidate", #"{"keys": ["item"]}"#).status == .ok)
            let replaced = try await client.get("/v1/cache/item")
            #expect(replaced.text == "v2")
            #expect(upstream.seen.last?.ifNoneMatch == "\"e1\"")
            #expect(node.cache.statistics.factory.errors == 0)
        }
    }

    @Test("Last-Modified drives If-Modified-Since the same way")
    func lastModifiedRevalidation() async throws {
        let upstream = UpstreamServer()
        let stamp = "Mon, 30 Nov 2026 05:00:00 GMT"
        upstream.set("dated", "old", lastModified: stamp)
        try await withNode(upstream) { client, _ async throws in
            #expect(try await client.get("/v1/cache/dated").text == "old")
            #expect(try await client.post("/v1/invalidate", #"{"keys": ["dated"]}"#).status == .ok)
            #expect(try await client.get("/v1/cache/dated").text == "old")
            #expect(upstream.seen.last?.ifModifiedSince == stamp)
        }
    }

    @Test("a PUT value is not revalidated with the validator of an older upstream body")
    func validatorOnlyForTheValueItDescribes() async throws {
        let upstream = UpstreamServer()
        upstream.set("item", "from upstream", etag: "\"e1\"")
        try await withNode(upstream) { client, _ async throws in
            #expect(try await client.get("/v1/cache/item").text == "from upstream")
            #expect(try await client.put("/v1/cache/item", "written by a client").status == .ok)
            #expect(try await client.post("/v1/invalidate", #"{"keys": ["item"]}"#).status == .ok)
            #expect(try await client.get("/v1/cache/item").text == "from upstream")
            #expect(upstream.seen.last?.ifNoneMatch == nil)
        }
    }

    @Test("a 503 is a factory error: 502 without a value, the flagged stale value with one")
    func serverErrorIsAFactoryError() async throws {
        let upstream = UpstreamServer()
        upstream.set("kept", "last good")
        upstream.behave("never", .status(503))
        try await withNode(upstream) { client, node async throws in
            expectError(try await client.get("/v1/cache/never"), .badGateway, code: "originBadStatus")

            #expect(try await client.get("/v1/cache/kept").text == "last good")
            upstream.behave("kept", .status(503))
            #expect(try await client.post("/v1/invalidate", #"{"keys": ["kept"]}"#).status == .ok)
            let stale = try await client.get("/v1/cache/kept")
            #expect(stale.status == .ok)
            #expect(stale.text == "last good")
            #expect(stale.stale == "true")
            #expect(node.cache.statistics.factory.errors == 2)
        }
    }

    @Test("a slow upstream hits the deadline: the stale value is served, flagged; without one, an error")
    func slowUpstreamTimesOut() async throws {
        let upstream = UpstreamServer()
        try await withNode(upstream, node: { $0.factoryHardTimeout = .milliseconds(200) }) { client, node async throws in
            // The value is written, not loaded, so no load races the short deadline.
            #expect(try await client.put("/v1/cache/slow", "before it slowed").status == .ok)
            upstream.behave("slow", .stall)
            upstream.behave("stuck", .stall)
            #expect(try await client.post("/v1/invalidate", #"{"keys": ["slow"]}"#).status == .ok)
            // The upstream never answers until released, so only the deadline can end these.
            let stale = try await client.get("/v1/cache/slow")
            #expect(stale.status == .ok)
            #expect(stale.stale == "true")
            let none = try await client.get("/v1/cache/stuck")
            #expect(none.status == .serviceUnavailable || none.status == .gatewayTimeout)
            #expect(node.cache.statistics.factory.timeouts + node.cache.statistics.factory.errors >= 2)
        }
    }

    @Test("a body over the value limit is refused with 502 and not cached")
    func bodyOverTheValueLimit() async throws {
        let upstream = UpstreamServer()
        upstream.set("big", String(repeating: "x", count: 4096))
        upstream.set("fits", String(repeating: "y", count: 1024))
        try await withNode(upstream, node: { $0.maxValueBytes = 1024 }) { client, _ async throws in
            expectError(try await client.get("/v1/cache/big"), .badGateway, code: "originValueTooLarge")
            expectError(try await client.get("/v1/cache/big"), .badGateway, code: "originValueTooLarge")
            #expect(upstream.seen.count == 2)
            #expect(try await client.get("/v1/cache/fits").text.count == 1024)
        }
    }

    @Test("with --origin-cache-control, no-store keeps an answer out of the cache")
    func noStoreIsNotCached() async throws {
        let upstream = UpstreamServer()
        upstream.set("live", "fresh each time", cacheControl: "no-store")
        upstream.set("cacheable", "keep me", cacheControl: "public, max-age=600")
        try await withNode(upstream, node: { $0.originRespectsCacheControl = true }) { client, _ async throws in
            #expect(try await client.get("/v1/cache/live").source == "origin")
            #expect(try await client.get("/v1/cache/live").source == "origin")
            #expect(upstream.seen.count == 2)
            #expect(try await client.get("/v1/cache/cacheable").source == "origin")
            #expect(try await client.get("/v1/cache/cacheable").source == "memory")
        }
    }

    @Test("without --origin-cache-control, Cache-Control is ignored")
    func cacheControlIgnoredByDefault() async throws {
        let upstream = UpstreamServer()
        upstream.set("live", "cached anyway", cacheControl: "no-store")
        try await withNode(upstream) { client, _ async throws in
            #expect(try await client.get("/v1/cache/live").source == "origin")
            #expect(try await client.get("/v1/cache/live").source == "memory")
        }
    }

    @Test("Cache-Control directives become entry options", arguments: [
        ("max-age=60", HTTPOrigin.CachePolicy(maxAge: .seconds(60))),
        ("public, max-age=60, s-maxage=10", HTTPOrigin.CachePolicy(maxAge: .seconds(10))),
        ("max-age=\"30\"", HTTPOrigin.CachePolicy(maxAge: .seconds(30))),
        ("no-store", HTTPOrigin.CachePolicy(noStore: true)),
        ("private, max-age=60", HTTPOrigin.CachePolicy(noStore: true, maxAge: .seconds(60))),
        ("max-age=0", HTTPOrigin.CachePolicy(noStore: true)),
        ("max-age=abc", HTTPOrigin.CachePolicy()),
        ("", HTTPOrigin.CachePolicy()),
    ])
    func cacheControlParsing(header: String, expected: HTTPOrigin.CachePolicy) {
        #expect(HTTPOrigin.CachePolicy(cacheControl: [header]) == expected)
        var options = CacheEntryOptions(duration: .seconds(30))
        options.memoryDuration = .seconds(20)
        expected.apply(to: &options)
        if expected.noStore {
            #expect(options.skipMemoryWrite && options.skipDistributedWrite)
        } else if let maxAge = expected.maxAge {
            #expect(options.duration == maxAge)
            #expect(options.memoryDuration == min(.seconds(20), maxAge))
        } else {
            #expect(options.duration == .seconds(30))
        }
    }

    @Test("origin locations parse http(s) templates with {key}", arguments: [
        ("http://127.0.0.1:8080/items/{key}", true),
        ("https://upstream.test/v1/{key}?full=1", true),
        ("http://127.0.0.1:8080/items/", false),
        ("http://{key}/items", false),
        ("ftp://host/{key}", false),
        ("sqlite:/tmp/x.db", true),
    ])
    func parsesLocations(text: String, valid: Bool) {
        #expect((OriginLocation(parsing: text) != nil) == valid)
    }

    @Test("the template percent-encodes every byte outside the unreserved set")
    func templateEncoding() throws {
        let template = try OriginURLTemplate("http://h:1/a/{key}/b?k={key}")
        #expect(template.url(for: "x/y z#é") == "http://h:1/a/x%2Fy%20z%23%C3%A9/b?k=x%2Fy%20z%23%C3%A9")
    }

    @Test("an unreachable upstream is a typed error from the origin itself")
    func unreachableUpstream() async throws {
        let port = try FreePort.next()
        var configuration = HTTPOrigin.Configuration()
        configuration.timeout = .seconds(30)
        let origin = try HTTPOrigin(template: "http://127.0.0.1:\(port)/items/{key}", configuration: configuration, logger: quietLogger)
        await #expect {
            _ = try await origin.load("k")
        } throws: { error in
            let code = (error as? HTTPOriginError)?.code
            return code == .unreachable || code == .timeout
        }
    }
}
