import Concord
import ConcordRedis
import ConcordProcess
import Testing

@testable import ConcordMemcached
import ConcordTesting

/// Topology: L1 + Memcached L2 + Redis backplane, on a real memcached and a real redis-server;
/// several caches in one process, each with its own connections.
@Suite("HybridCache coherence, Memcached L2 with a Redis backplane", .timeLimit(.minutes(2)))
struct MemcachedCoherenceTests {
    struct Node: Sendable {
        let cache: HybridCache
        let backend: MemcachedCacheBackend
    }

    static func makeNode(_ id: String, memcached: [MemcachedServer], redis: RedisServer?, generationCheckInterval: Duration = .milliseconds(50)) throws -> Node {
        var redisConfiguration = redis?.configuration()
        redisConfiguration?.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(200))
        let backend = MemcachedCacheBackend(
            configuration: fastConfiguration(memcached), backplane: redisConfiguration, cacheName: "coherence",
            l2: .init(generationCheckInterval: generationCheckInterval), logger: testLogger)
        var configuration = HybridCacheConfiguration(cacheName: "coherence", nodeID: id)
        configuration.heartbeatInterval = .milliseconds(200)
        configuration.retryBackoffBase = .milliseconds(20)
        configuration.retryBackoffCap = .milliseconds(200)
        let cache = try HybridCache(configuration: configuration, distributed: backend.distributed, backplane: backend.backplane, logger: testLogger)
        return Node(cache: cache, backend: backend)
    }

    static func withNodes<T: Sendable>(
        backplane: Bool = true, generationCheckInterval: Duration = .milliseconds(50),
        _ body: @Sendable ([MemcachedServer], [Node]) async throws -> T
    ) async throws -> T {
        try await withMemcachedServers(2) { memcached in
            let redis = backplane ? try await RedisServer.start() : nil
            defer { redis?.stop() }
            let nodes = try ["a", "b", "c"].map {
                try makeNode($0, memcached: memcached, redis: redis, generationCheckInterval: generationCheckInterval)
            }
            return try await withThrowingTaskGroup(of: Void.self) { group in
                for node in nodes { group.addTask { try await node.cache.run() } }
                for node in nodes { try await node.backend.client.waitUntilConnected(timeout: TestBounds.connect) }
                if backplane {
                    #expect(await eventually { nodes.allSatisfy { $0.cache.isBackplaneConnected } })
                }
                let result = try await body(memcached, nodes)
                group.cancelAll()
                return result
            }
        }
    }

    /// Writes entries tagged `group` that live on another server than the tag's marker, then
    /// removes the tag: the marker's server, and the keys it hides.
    struct HiddenEntries: Sendable {
        let markerServer: Int
        let keys: [String]
    }

    static func hideEntriesBehindATagMarker(_ nodes: [Node]) async throws -> HiddenEntries {
        let client = nodes[0].backend.client
        let keyspace = MemcachedKeyspace(cacheName: "coherence")
        let markerServer = try #require(client.server(for: keyspace.stored(keyspace.tag("group"))))
        let keys = Array((0..<200).map { "k\($0)" }
            .filter { client.server(for: keyspace.stored(keyspace.entry($0))) != markerServer }
            .prefix(5))
        #expect(!keys.isEmpty)
        for key in keys { try await nodes[0].cache.set(key, "old", tags: ["group"]) }
        try await nodes[1].cache.removeByTag("group")
        return HiddenEntries(markerServer: markerServer, keys: keys)
    }

    static func read(_ node: Node, _ key: String) async -> String? {
        try? await node.cache.getResult(key, as: String.self)?.value
    }

    @Test func aWriteOnOneNodeReachesTheOthersThroughMemcachedAndTheRedisBackplane() async throws {
        try await Self.withNodes { _, nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            try await a.cache.set("k", "v1")
            // b and c read it from memcached and keep it in L1.
            #expect(await Self.read(b, "k") == "v1")
            #expect(await Self.read(c, "k") == "v1")
            try await b.cache.set("k", "v2")
            let propagated = await eventually {
                let (fromA, fromC) = (await Self.read(a, "k"), await Self.read(c, "k"))
                return fromA == "v2" && fromC == "v2"
            }
            #expect(propagated)
            _ = try await c.cache.remove("k")
            let removed = await eventually {
                let (fromA, fromB) = (await Self.read(a, "k"), await Self.read(b, "k"))
                return fromA == nil && fromB == nil
            }
            #expect(removed)
        }
    }

    @Test func flushingMemcachedExpiresEveryNodesL1LikeAnEpochChange() async throws {
        try await Self.withNodes { memcached, nodes in
            try await nodes[0].cache.set("k", "v1")
            #expect(await Self.read(nodes[1], "k") == "v1")
            let before = nodes.map { $0.cache.statistics.backplane.fullExpiries }
            for index in memcached.indices { try await nodes[0].backend.client.flushAll(server: index) }
            #expect(await eventually {
                zip(nodes, before).allSatisfy { node, count in node.cache.statistics.backplane.fullExpiries > count }
            })
        }
    }

    /// A tag marker lives on one server. When that server is flushed, or killed, the entries it
    /// hid on the other server must not come back: a node that sees the loss expires every L2
    /// entry.
    @Test(arguments: ["flush", "kill"])
    func aLostServerNeverBringsBackTheEntriesItsTagMarkerHid(loss: String) async throws {
        try await Self.withNodes { memcached, nodes in
            let client = nodes[0].backend.client
            let keyspace = MemcachedKeyspace(cacheName: "coherence")
            let markerServer = try #require(client.server(for: keyspace.stored(keyspace.tag("group"))))
            let keys = (0..<200).map { "k\($0)" }
                .filter { client.server(for: keyspace.stored(keyspace.entry($0))) != markerServer }
                .prefix(5)
            #expect(!keys.isEmpty)
            for key in keys { try await nodes[0].cache.set(key, "old", tags: ["group"]) }
            try await nodes[1].cache.removeByTag("group")
            for key in keys { #expect(await eventually { await Self.read(nodes[2], key) == nil }) }
            if loss == "flush" { try await client.flushAll(server: markerServer) } else { memcached[markerServer].kill() }
            let hidden = await eventually {
                for node in nodes {
                    for key in keys where await Self.read(node, key) != nil { return false }
                }
                return true
            }
            #expect(hidden, "an entry the flushed tag marker hid came back")
        }
    }

    /// A read made right after the tag marker's server was flushed, before any generation poll
    /// (here they are an hour apart), already sees the loss: it reads the server's generation
    /// after the marker, in the same round trip, and the entry the marker hid reads as expired.
    @Test func aReadRightAfterAFlushSeesTheLossBeforeAnyGenerationPoll() async throws {
        try await Self.withNodes(generationCheckInterval: .seconds(3600)) { _, nodes in
            let client = nodes[0].backend.client
            let setUp = try await Self.hideEntriesBehindATagMarker(nodes)
            let markerServer = setUp.markerServer, keys = setUp.keys
            for key in keys { #expect(try await nodes[2].backend.distributed.read(key) == nil) }
            // The clear node c stores once it sees the loss must be newer than the tag removal
            // (so than the entries it hid): c's clock passes it when c hears of it.
            let removal = try #require(await nodes[1].backend.backplane?.head().sequence)
            #expect(await eventually { nodes[2].cache.statistics.backplane.lastSeq >= removal })
            let losses = nodes[2].backend.distributed.stats.dataLosses
            try await client.flushAll(server: markerServer)
            for key in keys {
                let read = try await nodes[2].backend.distributed.read(key)
                #expect(read == nil || read?.isExpired == true, "\(key) read as fresh after its tag marker was flushed")
            }
            #expect(nodes[2].backend.distributed.stats.dataLosses > losses)
        }
    }

    @Test func withoutABackplaneAnotherNodeKeepsItsL1CopyUntilItExpires() async throws {
        try await Self.withNodes(backplane: false) { _, nodes in
            try await nodes[0].cache.set("k", "v1")
            #expect(await Self.read(nodes[1], "k") == "v1")
            try await nodes[0].cache.set("k", "v2")
            // L2 has v2, but nothing tells node b: its L1 copy stands (coherent only within the L1 duration).
            #expect(payloadVersion(try await nodes[1].backend.distributed.read("k")) == "v2")
            #expect(await Self.read(nodes[1], "k") == "v1")
        }
    }
}

/// Strings are stored as their UTF-8 bytes.
private func payloadVersion(_ read: DistributedRead?) -> String? {
    read.map { String(decoding: $0.entry.payload, as: UTF8.self) }
}
