import Concord
import ConcordNode
import ConcordTesting
import Foundation
import HummingbirdTesting
import Testing

/// A node with a SQLite origin in a temp dir.
@Suite("Node origin")
struct NodeOriginTests {
    @Test("GET loads from SQLite through the cache; the second GET is a memory hit")
    func loadsThroughTheCache() async throws {
        try await withSQLiteOrigin { origin, _ in
            try await origin.store("item:1", value: Array("from sqlite".utf8), version: 1)
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.router) { client in
                #expect(try await client.poll("/ready", until: .ok).status == .ok)
                let first = try await client.get("/v1/cache/item:1")
                #expect(first.status == .ok)
                #expect(first.text == "from sqlite")
                #expect(first.source == "origin")
                #expect(first.stale == "false")
                let second = try await client.get("/v1/cache/item:1")
                #expect(second.text == "from sqlite")
                #expect(second.source == "memory")
                #expect(second.version == first.version)
                #expect(node.cache.statistics.factory.calls == 1)
            }
        }
    }

    @Test("DELETE then GET reloads the new origin value")
    func deleteReloads() async throws {
        try await withSQLiteOrigin { origin, _ in
            try await origin.store("item:2", value: Array("v1".utf8), version: 1)
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.router) { client in
                #expect(try await client.get("/v1/cache/item:2").text == "v1")
                try await origin.store("item:2", value: Array("v2".utf8), version: 2)
                // Still cached: the origin changed behind the cache's back.
                #expect(try await client.get("/v1/cache/item:2").text == "v1")
                #expect(try await client.delete("/v1/cache/item:2").status == .ok)
                let reloaded = try await client.get("/v1/cache/item:2")
                #expect(reloaded.text == "v2")
                #expect(reloaded.source == "origin")
            }
        }
    }

    @Test("POST /v1/invalidate makes the next GET reload from the origin")
    func invalidateReloads() async throws {
        try await withSQLiteOrigin { origin, _ in
            try await origin.store("item:3", value: Array("old".utf8), version: 1)
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.router) { client in
                #expect(try await client.get("/v1/cache/item:3").text == "old")
                try await origin.store("item:3", value: Array("new".utf8), version: 2)
                #expect(try await client.post("/v1/invalidate", #"{"keys": ["item:3"]}"#).status == .ok)
                let reloaded = try await client.get("/v1/cache/item:3")
                #expect(reloaded.text == "new")
                #expect(reloaded.source == "origin")
                #expect(reloaded.stale == "false")
            }
        }
    }

    @Test("a row absent from the origin is a 404 and is not cached as absent")
    func absentRowIsNotNegativelyCached() async throws {
        try await withSQLiteOrigin { origin, _ in
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.router) { client in
                expectError(try await client.get("/v1/cache/item:4"), .notFound, code: "notFound")
                expectError(try await client.get("/v1/cache/item:4"), .notFound, code: "notFound")
                // The row appears: the very next GET finds it, no invalidation needed.
                try await origin.store("item:4", value: Array("arrived".utf8), version: 1)
                let found = try await client.get("/v1/cache/item:4")
                #expect(found.text == "arrived")
                #expect(found.source == "origin")
            }
        }
    }

    @Test("a PUT wins over the origin until the key is removed")
    func putOverridesOrigin() async throws {
        try await withSQLiteOrigin { origin, _ in
            try await origin.store("item:5", value: Array("origin".utf8), version: 1)
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.router) { client in
                #expect(try await client.poll("/ready", until: .ok).status == .ok)
                _ = try await client.put("/v1/cache/item:5", "written")
                let get = try await client.get("/v1/cache/item:5")
                #expect(get.text == "written")
                #expect(get.source == "memory")
            }
        }
    }

    @Test("an origin that fails is a 503 when nothing is cached")
    func failingOrigin() async throws {
        let node = try makeMemoryNode(origin: FailingOrigin())
        try await node.makeApplication().test(.router) { client in
            expectError(try await client.get("/v1/cache/k"), .serviceUnavailable, code: "originUnavailable")
        }
    }

    @Test("rows written by hand with NULL value and version load as empty, version 0")
    func nullColumns() async throws {
        try await withSQLiteOrigin { origin, path in
            try await origin.store("placeholder", value: [], version: 0)
            // Reopen through the location, as the node does from --origin.
            let reopened = try OriginLocation.sqlite(path: path).open()
            let record = try await reopened.load("placeholder")
            #expect(record == OriginRecord(value: [], version: 0))
            #expect(try await reopened.load("absent") == nil)
        }
    }
}

/// An origin whose every load fails, as a database that is down.
struct FailingOrigin: Origin {
    func load(_ key: String) async throws -> OriginRecord? {
        throw TestError("the origin is down")
    }
}
