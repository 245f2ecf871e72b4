import ConcordProcess
@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

@testable import ConcordRedis

/// The Redis Cluster client against a real cluster of `redis-server --cluster-enabled yes`
/// processes, created with `redis-cli --cluster create`: routing, MOVED and ASK while a slot
/// migrates, the redirect cap, seeds, passwords and sharded pub/sub that follows its slot.
@Suite("Cluster: redis+cluster:// against a real Redis Cluster", .serialized, .timeLimit(.minutes(5)))
struct RedisClusterTests {
    /// Three primaries and no replicas unless a test fails a shard over: light on a shared machine.
    static let small = ClusterTopology.Options(primaries: 3, replicasPerPrimary: 0)

    private func fast(_ configuration: RedisConfiguration) -> RedisConfiguration {
        var configuration = configuration
        configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(300))
        // Generous: a loaded CI machine can stall a process for a second.
        configuration.connectTimeout = .seconds(5)
        configuration.commandTimeout = .seconds(5)
        return configuration
    }

    @Test func commandsReachTheShardOfTheirSlotOverOneConnectionPerPrimary() async throws {
        let topology = try await ClusterTopology.start(Self.small)
        defer { topology.stop() }
        try await withRunningClient(fast(try topology.configuration())) { client in
            let keys = (0..<300).map { "key-\($0)" }
            for key in keys { #expect(try await client.send("SET", RedisArgument(key), RedisArgument("v-\(key)")) == .simpleString("OK")) }
            for key in keys { #expect(try await client.send("GET", RedisArgument(key)).string == "v-\(key)") }
            // Our slot function agrees with the server's for every key.
            for key in keys.prefix(50) {
                #expect(try await client.send("CLUSTER", "KEYSLOT", RedisArgument(key)).int == Int64(ClusterHashSlot.slot(of: key)))
            }
            let map = try #require(client.clusterSlotMap)
            #expect(map.shards.count == 3 && map.unassignedSlots == 0)
            // Every shard got keys, each key lives on the primary that owns its slot.
            for shard in map.shards {
                let server = try #require(topology.servers.first { $0.port == shard.primary.port })
                let size = try await topology.cli(server, ["DBSIZE"]).first.flatMap { Int($0) } ?? 0
                let expected = keys.filter { key in shard.slots.contains { $0.contains(ClusterHashSlot.slot(of: key)) } }.count
                #expect(size == expected && size > 0)
            }
            // One connection per primary in use, no more.
            let connections = try #require(client.cluster).connectionCount
            #expect(connections == 3)
        }
    }

    @Test func aMigratingSlotIsFollowedThroughAskThenMovedAndTheMapLearnsTheNewOwner() async throws {
        let topology = try await ClusterTopology.start(Self.small)
        defer { topology.stop() }
        try await withRunningClient(fast(try topology.configuration())) { client in
            let slot = ClusterHashSlot.slot(of: "{moving}")
            #expect(try await client.send("SET", "{moving}:a", "1") == .simpleString("OK"))
            let source = try await topology.owner(ofSlot: slot)
            let primaries = try await topology.livePrimaries()
            let destination = try #require(primaries.first { $0 !== source })
            let sourceID = try #require(try await topology.cli(source, ["CLUSTER", "MYID"]).first)
            let destinationID = try #require(try await topology.cli(destination, ["CLUSTER", "MYID"]).first)
            _ = try await topology.cli(destination, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID])
            _ = try await topology.cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", destinationID])
            _ = try await topology.cli(source, ["MIGRATE", "127.0.0.1", "\(destination.port)", "{moving}:a", "0", "5000"])
            // Mid-migration: the source answers ASK for the moved key; the client follows it once.
            #expect(try await client.send("GET", "{moving}:a").string == "1")
            #expect(client.cluster?.primary(forSlot: slot)?.port == source.port)
            _ = try await topology.cli(destination, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID])
            _ = try await topology.cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID])
            // Done: the source answers MOVED; the map learns the new owner at once.
            #expect(try await client.send("SET", "{moving}:b", "2") == .simpleString("OK"))
            #expect(client.cluster?.primary(forSlot: slot)?.port == destination.port)
            #expect(try await topology.cli(destination, ["GET", "{moving}:b"]).first == "2")
        }
    }

    @Test func aRedirectLoopEndsWithATypedErrorAfterTheCap() async throws {
        let topology = try await ClusterTopology.start(Self.small)
        defer { topology.stop() }
        var configuration = fast(try topology.configuration())
        configuration.cluster?.maxRedirects = 4
        try await withRunningClient(configuration) { client in
            let slot = ClusterHashSlot.slot(of: "{loop}")
            let source = try await topology.owner(ofSlot: slot)
            let destination = try #require(try await topology.livePrimaries().first { $0 !== source })
            let destinationID = try #require(try await topology.cli(destination, ["CLUSTER", "MYID"]).first)
            // MIGRATING without IMPORTING on the other side: the source sends a missing key to the
            // destination with ASK, and the destination sends it back with MOVED, for ever.
            _ = try await topology.cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", destinationID])
            let error = await redisError { _ = try await client.send("GET", "{loop}:missing") }
            #expect(error?.code == .clusterRedirectLimit)
            _ = try await topology.cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "STABLE"])
            #expect(try await client.send("GET", "{loop}:missing") == .null)
        }
    }

    @Test func deadSeedsAreSkippedAndUnusableSeedsAreTypedErrors() async throws {
        let topology = try await ClusterTopology.start(Self.small)
        defer { topology.stop() }
        let deadPort = try FreePort.next()
        let configuration = fast(try RedisConfiguration(
            url: "redis+cluster://127.0.0.1:\(deadPort),127.0.0.1:\(topology.servers[1].port)"))
        try await withRunningClient(configuration) { (client: RedisClient) async throws in
            #expect(try await client.send("SET", "a", "1") == .simpleString("OK"))
            #expect(try await client.send("SET", "b", "2") == .simpleString("OK"))
        }

        var unreachable = fast(try RedisConfiguration(url: "redis+cluster://127.0.0.1:\(deadPort)"))
        unreachable.connectTimeout = .milliseconds(500)
        unreachable.commandTimeout = .milliseconds(500)
        try await withRunningClient(unreachable, waitForConnection: false) { client in
            let error = await redisError { _ = try await client.send("GET", "a") }
            #expect(error?.code == .notConnected)
            #expect((error?.underlying as? RedisError)?.code == .clusterUnreachable)
        }

        try await withRedisServer { standalone in
            var notACluster = fast(try RedisConfiguration(url: "redis+cluster://127.0.0.1:\(standalone.port)"))
            notACluster.waitForConnectionTimeout = .seconds(30)
            try await withRunningClient(notACluster, waitForConnection: false) { client in
                let error = await redisError { _ = try await client.send("GET", "a") }
                #expect(error?.code == .clusterTopologyInvalid)
            }
        }
    }

    @Test func thePasswordAppliesToEveryNodeAndAWrongOneIsATypedError() async throws {
        let topology = try await ClusterTopology.start(.init(primaries: 3, replicasPerPrimary: 0, password: "s3cret"))
        defer { topology.stop() }
        try await withRunningClient(fast(try topology.configuration())) { (client: RedisClient) async throws in
            for index in 0..<30 { #expect(try await client.send("SET", RedisArgument("k\(index)"), "v") == .simpleString("OK")) }
            #expect(try #require(client.cluster).connectionCount == 3)
        }
        var wrong = fast(try topology.configuration())
        wrong.password = "wrong"
        try await withRunningClient(wrong, waitForConnection: false) { client in
            let error = await redisError { _ = try await client.send("GET", "a") }
            #expect(error?.code == .authenticationFailed)
        }
    }

    @Test func aShardedSubscriptionFollowsItsSlotToTheNewOwnerAfterAMigration() async throws {
        let topology = try await ClusterTopology.start(Self.small)
        defer { topology.stop() }
        let configuration = fast(try topology.configuration())
        let channel = "concord:{sharded}:bp"
        try await withRunningClient(configuration) { client in
            try await withRunningSubscriber(configuration) { subscriber in
                let messages = subscriber.messages
                let states = subscriber.states
                try await subscriber.ssubscribe(channels: [channel])
                // A second channel in another slot is refused: one subscriber follows one slot.
                let crossSlot = await redisError { try await subscriber.ssubscribe(channels: ["{elsewhere}"]) }
                #expect(crossSlot?.code == .crossSlot)
                #expect(try await client.send("SPUBLISH", RedisArgument(channel), "before").int == 1)

                let moved = try await topology.migrateSlot(ClusterHashSlot.slot(of: channel))
                // Redis ends the subscription (an unsolicited sunsubscribe); the subscriber reconnects.
                let lost = try await firstState(in: states) {
                    if case .disconnected(let error) = $0 { return error.code == .shardSubscriptionMoved }
                    return false
                }
                #expect(lost != nil)
                let resubscribed = try await eventually {
                    (try? await client.send("SPUBLISH", RedisArgument(channel), "probe").int) == 1
                }
                #expect(resubscribed)
                #expect(try await client.send("SPUBLISH", RedisArgument(channel), "after").int == 1)
                #expect(try await topology.owner(ofSlot: ClusterHashSlot.slot(of: channel)) === moved)

                var received: [String] = []
                for await message in messages where message.payloadString != "probe" {
                    #expect(message.isSharded)
                    received.append(message.payloadString)
                    if received.count == 2 { break }
                }
                #expect(received == ["before", "after"])
            }
        }
    }

    @Test func cachesOnTheClusterStayCoherentWhileTheirSlotMigratesAndFailsOver() async throws {
        let topology = try await ClusterTopology.start(.init(primaries: 3, replicasPerPrimary: 1))
        defer { topology.stop() }
        var redis = fast(try topology.configuration())
        redis.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(200))
        func node(_ id: String) throws -> HybridCache {
            var configuration = HybridCacheConfiguration(cacheName: "orders", nodeID: id)
            configuration.heartbeatInterval = .milliseconds(200)
            configuration.retryBackoffBase = .milliseconds(20)
            configuration.retryBackoffCap = .milliseconds(200)
            return try HybridCache.redis(redis, configuration: configuration, logger: testLogger)
        }
        let a = try node("a")
        let b = try node("b")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await a.run() }
            group.addTask { try await b.run() }
            #expect(try await eventually { a.isBackplaneConnected && b.isBackplaneConnected })
            let slot = ClusterTopology.slot(ofCache: "orders")

            func converges(_ key: String, _ value: String) async throws -> Bool {
                try await a.set(key, value)
                return try await eventually { (try? await b.getResult(key, as: String.self)?.value) == value }
            }
            try await b.set("k", "old")
            #expect(try await b.getResult("k", as: String.self)?.value == "old")
            #expect(try await converges("k", "one"))

            try await topology.migrateSlot(slot)
            #expect(try await converges("k", "two"))

            try await topology.failover(shardOf: slot)
            #expect(try await converges("k", "three"))

            let killed = try await topology.killPrimary(ofSlot: slot)
            #expect(try await eventually(timeout: .seconds(20)) { (try? await a.set("k", "four")) != nil })
            #expect(try await eventually { (try? await b.getResult("k", as: String.self)?.value) == "four" })
            try await topology.rejoin(killed)
            #expect(try await converges("k", "five"))
            group.cancelAll()
        }
    }
}
