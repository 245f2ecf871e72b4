import Concord
import ConcordNode
import ConcordTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The HTTP surface on in-memory backends, through Hummingbird's router test client.
@Suite("Node HTTP API")
struct NodeAPITests {
    @Test("PUT then GET: the value, its version and where it came from")
    func putThenGet() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            // Before its first synchronization a node expires what L1 holds; wait for it.
            #expect(try await client.poll("/ready", until: .ok).status == .ok)
            let put = try await client.put("/v1/cache/greeting", "hello")
            #expect(put.status == .ok)
            let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: put.body))
            let version = try #require(body["version"])
            #expect(put.version == version)
            #expect(CacheVersion(headerValue: version)?.node == node.cache.nodeID)

            let get = try await client.get("/v1/cache/greeting")
            #expect(get.status == .ok)
            #expect(get.text == "hello")
            #expect(get.version == version)
            #expect(get.source == "memory")
            #expect(get.stale == "false")
            #expect(get.headers[.contentType] == "application/octet-stream")
        }
    }

    @Test("values are raw bytes: binary bodies and empty bodies round-trip")
    func rawBytes() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            let bytes: [UInt8] = [0, 255, 1, 254, 10, 13, 0x22]
            _ = try await client.execute(uri: "/v1/cache/bin", method: .put, body: ByteBuffer(bytes: bytes))
            let get = try await client.get("/v1/cache/bin")
            #expect(Array(get.body.readableBytesView) == bytes)

            #expect(try await client.put("/v1/cache/empty", "").status == .ok)
            let empty = try await client.get("/v1/cache/empty")
            #expect(empty.status == .ok)
            #expect(empty.body.readableBytes == 0)
        }
    }

    @Test("a GET of an absent key without an origin is a 404")
    func absentKey() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            expectError(try await client.get("/v1/cache/nothing-here"), .notFound, code: "notFound")
        }
    }

    @Test("a key may contain '/', literally or percent-encoded; both name the same key")
    func keysWithSlashes() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            #expect(try await client.put("/v1/cache/users/42/profile", "p42").status == .ok)
            let encoded = try await client.get("/v1/cache/users%2F42%2Fprofile")
            #expect(encoded.status == .ok)
            #expect(encoded.text == "p42")
            let key = "a key/with ?#% and ünïcode"
            #expect(try await client.put(CacheKeyPath.path(for: key), "odd").status == .ok)
            #expect(try await client.get(CacheKeyPath.path(for: key)).text == "odd")
            // The cache saw the decoded key.
            let cached = try await node.cache.getResult(key, as: [UInt8].self)
            #expect(cached.map { String(decoding: $0.value, as: UTF8.self) } == "odd")
        }
    }

    @Test("DELETE removes the key and answers its version")
    func deleteKey() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/k", "v")
            let deleted = try await client.delete("/v1/cache/k")
            #expect(deleted.status == .ok)
            #expect(deleted.version != nil)
            expectError(try await client.get("/v1/cache/k"), .notFound, code: "notFound")
        }
    }

    @Test("POST /v1/invalidate expires the keys: without an origin they are gone")
    func invalidate() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/a", "1")
            _ = try await client.put("/v1/cache/b", "2")
            let response = try await client.post("/v1/invalidate", #"{"keys": ["a", "b", "never-set"]}"#)
            #expect(response.status == .ok)
            let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
            #expect(body?["invalidated"] as? Int == 3)
            expectError(try await client.get("/v1/cache/a"), .notFound, code: "notFound")
            expectError(try await client.get("/v1/cache/b"), .notFound, code: "notFound")
        }
    }

    @Test("DELETE /v1/tags/{tag} removes every entry carrying the tag, whether PUT or loaded with it")
    func removeTag() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            #expect(try await client.put("/v1/cache/a?tag=red&tag=round", "1").status == .ok)
            #expect(try await client.put("/v1/cache/b?tag=red", "2").status == .ok)
            #expect(try await client.put("/v1/cache/c?tag=blue", "3").status == .ok)
            let removed = try await client.delete("/v1/tags/red")
            #expect(removed.status == .ok)
            #expect(removed.version != nil)
            expectError(try await client.get("/v1/cache/a"), .notFound, code: "notFound")
            expectError(try await client.get("/v1/cache/b"), .notFound, code: "notFound")
            #expect(try await client.get("/v1/cache/c").text == "3")
            // Percent-encoded like a key.
            #expect(try await client.put("/v1/cache/d?tag=a%2Fb", "4").status == .ok)
            #expect(try await client.delete("/v1/tags/a%2Fb").status == .ok)
            expectError(try await client.get("/v1/cache/d"), .notFound, code: "notFound")
            // Bad input: a clear typed error, nothing removed.
            expectError(try await client.delete("/v1/tags/%zz"), .badRequest, code: "invalidKey")
            expectError(try await client.put("/v1/cache/e?tag=", "5"), .badRequest, code: "invalidTag")
            let tooMany = (0...64).map { "tag=t\($0)" }.joined(separator: "&")
            expectError(try await client.put("/v1/cache/e?\(tooMany)", "5"), .badRequest, code: "tooManyTags")
            expectError(try await client.get("/v1/cache/e"), .notFound, code: "notFound")
            #expect(try await client.get("/v1/cache/c").text == "3")
        }
    }

    @Test("POST /v1/clear expires or removes every entry")
    func clear() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/a", "1")
            _ = try await client.put("/v1/cache/b", "2")
            let cleared = try await client.post("/v1/clear", "")
            #expect(cleared.status == .ok)
            #expect(cleared.version != nil)
            // Without an origin an expired entry is not served as fresh: gone for GET.
            expectError(try await client.get("/v1/cache/a"), .notFound, code: "notFound")
            _ = try await client.put("/v1/cache/c", "3")
            #expect(try await client.post("/v1/clear?failSafe=false", "").status == .ok)
            expectError(try await client.get("/v1/cache/c"), .notFound, code: "notFound")
            expectError(try await client.post("/v1/clear?failSafe=maybe", ""), .badRequest, code: "invalidQuery")
            expectError(try await client.get("/v1/clear"), .methodNotAllowed, code: "methodNotAllowed")
        }
    }

    @Test("PUT ?background=true answers before Redis is written, and the write lands")
    func backgroundPut() async throws {
        let store = InMemoryCacheStore()
        let node = try makeMemoryNode(store: store)
        try await node.makeApplication().test(.router) { client in
            let put = try await client.put("/v1/cache/bg?background=true", "later")
            #expect(put.status == .ok)
            #expect(await node.cache.waitForPendingWrites(timeout: .seconds(5)))
            #expect(store.storedVersion(of: "bg")?.description == put.version)
            expectError(try await client.put("/v1/cache/bg?background=perhaps", "x"), .badRequest, code: "invalidQuery")
        }
    }

    @Test("GET /v1/stats has the documented shape")
    func stats() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/k", "v")
            _ = try await client.get("/v1/cache/k")
            let response = try await client.get("/v1/stats")
            #expect(response.status == .ok)
            let stats = try JSONDecoder().decode(HybridCacheStatistics.self, from: Data(buffer: response.body))
            #expect(stats.node == node.cache.nodeID)
            #expect(stats.cacheName == "default")
            #expect(stats.memory.hits >= 1)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            for field in ["node", "cacheName", "memory", "distributed", "factory", "staleServed", "backplane", "autoRecovery"] {
                #expect(json[field] != nil, "missing \(field)")
            }
            let backplane = try #require(json["backplane"] as? [String: Any])
            for field in ["connected", "lastSeq", "published", "received", "gapsDetected", "replays", "fullExpiries", "ignoredMessages"] {
                #expect(backplane[field] != nil, "missing backplane.\(field)")
            }
        }
    }

    @Test("/health is 200; /ready follows the backplane")
    func healthAndReadiness() async throws {
        let store = InMemoryCacheStore()
        let node = try makeMemoryNode(store: store)
        try await node.makeApplication().test(.router) { client in
            let health = try await client.get("/health")
            #expect(health.status == .ok)
            #expect(health.text.contains(node.cache.nodeID))
            #expect(try await client.poll("/ready", until: .ok).status == .ok)

            store.setAvailable(false)
            // The backplane notices on its next heartbeat.
            let notReady = try await client.poll("/ready", until: .serviceUnavailable)
            expectError(notReady, .serviceUnavailable, code: "notReady")
            #expect(try await client.get("/health").status == .ok)

            store.setAvailable(true)
            #expect(try await client.poll("/ready", until: .ok).status == .ok)
        }
    }

    @Test("/metrics is Prometheus text from the node's registry")
    func metrics() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.get("/v1/cache/missing")
            _ = try await client.get("/health")
            let response = try await client.get("/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = response.text
            #expect(text.contains("# TYPE concord_http_requests_total counter"))
            #expect(text.contains(#"route="/v1/cache/**""#))
            #expect(text.contains(#"status="404""#))
            #expect(text.contains("concord_http_request_duration_seconds_bucket"))
            #expect(text.contains("concord_node_ready"))
            // Keys never become label values.
            #expect(!text.contains("missing"))
        }
    }

    @Test("HEAD works where GET does")
    func head() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/h", "value")
            let response = try await client.execute(uri: "/v1/cache/h", method: .head)
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
            #expect(try await client.execute(uri: "/health", method: .head).status == .ok)
        }
    }
}
