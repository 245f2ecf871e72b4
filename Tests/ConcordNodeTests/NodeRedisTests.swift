import ConcordProcess
import Concord
import ConcordNode
import ConcordTesting
import Foundation
import HummingbirdTesting
import Testing

/// Nodes on a real redis-server started by the test.
@Suite("Node on Redis")
struct NodeRedisTests {
    @Test("two nodes: a write on one is served by the other, and a change propagates back")
    func twoNodesStayCoherent() async throws {
        try await withRedisServer { server in
            let first = try makeRedisNode(server)
            let second = try makeRedisNode(server)
            try await first.makeApplication().test(.router) { one in
                try await second.makeApplication().test(.router) { two in
                    #expect(try await one.poll("/ready", until: .ok).status == .ok)
                    #expect(try await two.poll("/ready", until: .ok).status == .ok)

                    let written = try await one.put("/v1/cache/shared", "v1")
                    let read = try await two.get("/v1/cache/shared")
                    #expect(read.text == "v1")
                    #expect(read.source == "distributed")
                    #expect(read.version == written.version)
                    #expect(try await one.get("/v1/cache/shared").source == "memory")

                    let changed = try await two.put("/v1/cache/shared", "v2")
                    // A bound on convergence, not a speed figure: generous for a loaded machine.
                    let propagated = try await eventually(timeout: .seconds(20)) {
                        try await one.get("/v1/cache/shared").version == changed.version
                    }
                    #expect(propagated, "node one still serves the old version after 20 s")
                    #expect(try await one.get("/v1/cache/shared").text == "v2")
                }
            }
        }
    }

    @Test("Redis down: GET serves from L1 or the origin, /ready is 503, /health is 200")
    func redisDown() async throws {
        try await withSQLiteOrigin { origin, path in
            try await origin.store("from-origin", value: Array("origin value".utf8), version: 1)
            try await withRedisServer { server in
                let node = try makeRedisNode(server) { $0.origin = .sqlite(path: path) }
                try await node.makeApplication().test(.router) { client in
                    #expect(try await client.poll("/ready", until: .ok).status == .ok)
                    #expect(try await client.put("/v1/cache/cached", "in L1").status == .ok)

                    server.kill()
                    let notReady = try await client.poll("/ready", until: .serviceUnavailable)
                    expectError(notReady, .serviceUnavailable, code: "notReady")
                    #expect(try await client.get("/health").status == .ok)

                    let cached = try await client.get("/v1/cache/cached")
                    #expect(cached.status == .ok)
                    #expect(cached.text == "in L1")
                    #expect(cached.source == "memory")

                    let loaded = try await client.get("/v1/cache/from-origin")
                    #expect(loaded.status == .ok)
                    #expect(loaded.text == "origin value")
                    #expect(loaded.source == "origin")

                    // Writes are accepted and queued for when Redis is back.
                    #expect(try await client.put("/v1/cache/queued", "later").status == .ok)
                    #expect(node.cache.statistics.autoRecovery.depth >= 1)
                    #expect(try await client.get("/v1/stats").status == .ok)
                }
            }
        }
    }

    @Test("Redis down past max-disconnected-staleness: L1 values are served flagged stale")
    func redisDownPastStaleness() async throws {
        try await withRedisServer { server in
            let node = try makeRedisNode(server) { $0.maxDisconnectedStaleness = .milliseconds(200) }
            try await node.makeApplication().test(.router) { client in
                #expect(try await client.poll("/ready", until: .ok).status == .ok)
                _ = try await client.put("/v1/cache/k", "kept")
                server.kill()
                #expect(try await client.poll("/ready", until: .serviceUnavailable).status == .serviceUnavailable)
                // Past the allowed staleness the node no longer vouches for its L1 copy.
                let stale = try await eventually(timeout: .seconds(5)) {
                    try await client.get("/v1/cache/k").stale == "true"
                }
                #expect(stale)
                let response = try await client.get("/v1/cache/k")
                #expect(response.status == .ok)
                #expect(response.text == "kept")
            }
        }
    }

    @Test("--no-backplane: no invalidations reach the node, so it keeps serving its old copy")
    func noBackplane() async throws {
        try await withRedisServer { server in
            let writer = try makeRedisNode(server)
            let witness = try makeRedisNode(server)
            let isolated = try makeRedisNode(server) { $0.isBackplaneEnabled = false }
            try await writer.makeApplication().test(.router) { one in
                try await witness.makeApplication().test(.router) { three in
                    try await isolated.makeApplication().test(.router) { two in
                        #expect(try await one.poll("/ready", until: .ok).status == .ok)
                        #expect(try await three.poll("/ready", until: .ok).status == .ok)
                        let ready = try await two.poll("/ready", until: .ok)
                        #expect(ready.status == .ok)
                        #expect(ready.text.contains("disabled"))

                        _ = try await one.put("/v1/cache/k", "v1")
                        #expect(try await two.get("/v1/cache/k").text == "v1")
                        #expect(try await three.get("/v1/cache/k").text == "v1")
                        let changed = try await one.put("/v1/cache/k", "v2")
                        // Once a coherent node has seen the invalidation, the isolated one would
                        // have seen it too, had it been subscribed: no sleeping needed.
                        let witnessed = try await eventually(timeout: .seconds(5)) {
                            try await three.get("/v1/cache/k").version == changed.version
                        }
                        #expect(witnessed)
                        let served = try await two.get("/v1/cache/k")
                        #expect(served.text == "v1")
                        #expect(served.source == "memory")
                    }
                }
            }
        }
    }
}
