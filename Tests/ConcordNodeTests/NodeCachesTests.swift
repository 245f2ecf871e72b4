import ConcordProcess
import Concord
import ConcordNode
import ConcordRedis
import ConcordTesting
import Foundation
import HummingbirdTesting
import Testing

/// A node holding several named caches (`--cache-name` repeated): the default cache at
/// `/v1/cache/…` as before, every cache at `/v1/caches/NAME/…`, each in its own Redis namespace.
@Suite("Node with several caches")
struct NodeCachesTests {
    @Test("--cache-name repeated or comma-separated names several caches; the first stays the default")
    func configuration() throws {
        let several = try NodeConfiguration(flags: ["cache-name": "orders,users,default"], environment: [:])
        #expect(several.cacheName == "orders")
        #expect(several.additionalCacheNames == ["users", "default"])
        #expect(several.cacheNames == ["orders", "users", "default"])
        let fromEnvironment = try NodeConfiguration(flags: [:], environment: ["CONCORD_CACHE_NAME": "a,b"])
        #expect(fromEnvironment.cacheNames == ["a", "b"])
        // One cache keeps its name rules as before; several must be path-safe and distinct.
        #expect(try NodeConfiguration(flags: ["cache-name": "with/slash"], environment: [:]).cacheName == "with/slash")
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["cache-name": "a,with/slash"], environment: [:]) }
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["cache-name": "a,,b"], environment: [:]) }
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["cache-name": "a,b,a"], environment: [:]) }
        let tooMany = (0...NodeConfiguration.maxCaches).map { "c\($0)" }.joined(separator: ",")
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["cache-name": tooMany], environment: [:]) }
    }

    @Test("each cache has its own entries, stats and Redis namespace; an unknown cache is a 404")
    func cachesAreSeparate() async throws {
        try await withRedisServer { server in
            let node = try makeRedisNode(server) { $0.cacheName = "orders"; $0.additionalCacheNames = ["users"] }
            let other = try makeRedisNode(server) { $0.cacheName = "orders"; $0.additionalCacheNames = ["users"] }
            try await node.makeApplication().test(.router) { client in
                try await other.makeApplication().test(.router) { peer in
                    #expect(try await client.poll("/ready", until: .ok).status == .ok)
                    #expect(try await peer.poll("/ready", until: .ok).status == .ok)
                    #expect(try await client.put("/v1/cache/k", "order").status == .ok)
                    #expect(try await client.put("/v1/caches/users/cache/k", "user").status == .ok)
                    #expect(try await client.get("/v1/cache/k").text == "order")
                    #expect(try await client.get("/v1/caches/orders/cache/k").text == "order")
                    #expect(try await client.get("/v1/caches/users/cache/k").text == "user")
                    expectError(try await client.get("/v1/caches/nope/cache/k"), .notFound, code: "routeNotFound")

                    // The other node reads both and follows a change of one cache only.
                    #expect(try await peer.get("/v1/caches/users/cache/k").text == "user")
                    #expect(try await peer.get("/v1/cache/k").text == "order")
                    let changed = try await client.put("/v1/caches/users/cache/k", "user v2")
                    let followed = try await eventually(timeout: .seconds(20)) {
                        try await peer.get("/v1/caches/users/cache/k").version == changed.version
                    }
                    #expect(followed)
                    #expect(try await peer.get("/v1/cache/k").text == "order")

                    let stats = try JSONDecoder().decode(HybridCacheStatistics.self, from: Data(buffer: try await client.get("/v1/caches/users/stats").body))
                    #expect(stats.cacheName == "users")
                    let keys = try await RedisServer.cli(port: server.port, password: nil, ["KEYS", "concord:*:e:k"])
                    #expect(Set(keys) == ["concord:{orders}:e:k", "concord:{users}:e:k"])
                }
            }
        }
    }

    @Test("on a Redis Cluster, a node's caches live on the shards that own their slots and stay coherent")
    func cachesSpreadOverShards() async throws {
        let topology = try await ClusterTopology.start(.init(primaries: 3, replicasPerPrimary: 0))
        defer { topology.stop() }
        // Slots 15495, 3300 and 7365: one on each of the three primaries `redis-cli --cluster create` makes.
        let names = ["a", "b", "c"]
        func node() throws -> CacheNode {
            try CacheNode(
                configuration: testConfiguration {
                    $0.redisURL = topology.url
                    $0.cacheName = names[0]
                    $0.additionalCacheNames = Array(names.dropFirst())
                },
                logger: quietLogger)
        }
        let first = try node()
        let second = try node()
        try await first.makeApplication().test(.router) { one in
            try await second.makeApplication().test(.router) { two in
                #expect(try await one.poll("/ready", until: .ok).status == .ok)
                #expect(try await two.poll("/ready", until: .ok).status == .ok)
                var owners: Set<Int> = []
                for name in names {
                    #expect(try await one.put("/v1/caches/\(name)/cache/k", "\(name) v1").status == .ok)
                    #expect(try await two.get("/v1/caches/\(name)/cache/k").text == "\(name) v1")
                    let changed = try await one.put("/v1/caches/\(name)/cache/k", "\(name) v2")
                    let followed = try await eventually(timeout: .seconds(20)) {
                        try await two.get("/v1/caches/\(name)/cache/k").version == changed.version
                    }
                    #expect(followed, "cache \(name)")
                    let owner = try await topology.owner(ofSlot: ClusterTopology.slot(ofCache: name))
                    #expect(try await topology.cli(owner, ["EXISTS", "concord:{\(name)}:e:k"]) == ["1"])
                    owners.insert(owner.port)
                }
                #expect(owners.count == 3)
            }
        }
    }
}
