import ConcordProcess
import ConcordTesting
import Testing

@testable import ConcordRedis

/// The Sentinel client protocol against real `redis-server --sentinel` processes: a master, a
/// replica and a Sentinel per test.
@Suite("Sentinel: redis+sentinel:// against real Sentinels", .serialized, .timeLimit(.minutes(5)))
struct RedisSentinelTests {
    /// One Sentinel (quorum one) is enough for the client protocol and keeps the suite light
    /// on a machine that runs every other suite at the same time; chaos runs use three.
    static let small = SentinelTopology.Options(sentinels: 1, quorum: 1)

    private func fast(_ configuration: RedisConfiguration) -> RedisConfiguration {
        var configuration = configuration
        configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(300))
        // Generous: a loaded CI machine can stall a process for a second.
        configuration.connectTimeout = .seconds(5)
        configuration.commandTimeout = .seconds(5)
        configuration.sentinel?.pollInterval = .milliseconds(200)
        return configuration
    }

    /// The port of the server `client` is connected to, as that server reports it.
    private func connectedPort(_ client: RedisClient) async throws -> Int? {
        guard case .array(let items) = try await client.send("CONFIG", "GET", "port"), items.count == 2 else { return nil }
        return items[1].string.flatMap { Int($0) }
    }

    @Test func findsTheMasterThroughTheFirstSentinelThatAnswersAndMovesItToTheFront() async throws {
        let topology = try await SentinelTopology.start(Self.small)
        defer { topology.stop() }
        var configuration = fast(try topology.configuration())
        let dead = RedisConfiguration.Sentinel.Endpoint(host: "127.0.0.1", port: try FreePort.next())
        configuration.sentinel?.endpoints.insert(dead, at: 0)
        let firstAlive = configuration.sentinel?.endpoints[1]
        try await withRunningClient(configuration) { client in
            #expect(try await connectedPort(client) == topology.servers[0].port)
            #expect(try await client.send("SET", "k", "v") == .simpleString("OK"))
            let order = try #require(client.driver.sentinel?.endpoints)
            // The first that answered (the second asked) moved in front of the dead one.
            #expect(order.count == 2)
            #expect(order[0] == firstAlive)
            #expect(order[1] == dead)
        }
    }

    @Test func noSentinelReachableAndAnUnknownMasterAreTypedErrors() async throws {
        let unreachable = fast(try RedisConfiguration(url: "redis+sentinel://127.0.0.1:\(try FreePort.next())/mymaster"))
        try await withRunningClient(unreachable, waitForConnection: false) { client in
            let failed = try await firstState(in: client.states) {
                if case .disconnected(let error) = $0 { return error.code == .sentinelUnreachable }
                return false
            }
            #expect(failed != nil)
        }

        let topology = try await SentinelTopology.start(.init(replicas: 0, sentinels: 1, quorum: 1))
        defer { topology.stop() }
        var unknown = fast(try topology.configuration())
        unknown.sentinel?.masterName = "not-monitored"
        try await withRunningClient(unknown, waitForConnection: false) { client in
            let failed = try await firstState(in: client.states) {
                if case .disconnected(let error) = $0 { return error.code == .sentinelMasterUnknown }
                return false
            }
            #expect(failed != nil)
            let error = await redisError { _ = try await client.send("PING") }
            #expect(error?.code == .sentinelMasterUnknown)
        }
    }

    @Test func aGracefulFailoverMovesTheClientAndTheSubscriberToTheNewMaster() async throws {
        let topology = try await SentinelTopology.start(Self.small)
        defer { topology.stop() }
        let configuration = fast(try topology.configuration())
        try await withRunningSubscriber(configuration) { subscriber in
            let messages = subscriber.messages
            try await subscriber.subscribe(channels: ["after-failover"])
            try await withRunningClient(configuration) { client in
                #expect(try await client.send("SET", "before", "1") == .simpleString("OK"))
                // Replicated before the switch: a failover may lose what the replica has not got.
                #expect(try await client.send("WAIT", "1", "5000") == .integer(1))
                let newMaster = try await topology.failover()
                #expect(newMaster === topology.servers[1])
                #expect(await eventually { (try? await connectedPort(client)) == newMaster.port })
                #expect(await eventually { (try? await client.send("SET", "after", "2")) == .simpleString("OK") })
                #expect(try await client.send("GET", "before") == .bulkString(Array("1".utf8)))  // replicated before the switch
                // The subscriber re-subscribed on the new master: a PUBLISH there reaches it.
                #expect(
                    await eventually {
                        ((try? await client.send("PUBLISH", "after-failover", "moved")) ?? .integer(0)) == .integer(1)
                    })
            }
            let received = try await firstMessage(in: messages)
            #expect(received?.payloadString == "moved")
        }
    }

    @Test func aKilledMasterIsReplacedAndTheClientWritesAgain() async throws {
        let topology = try await SentinelTopology.start(Self.small)
        defer { topology.stop() }
        let configuration = fast(try topology.configuration())
        try await withRunningClient(configuration) { client in
            #expect(try await client.send("SET", "before", "1") == .simpleString("OK"))
            _ = try await client.send("WAIT", "1", "2000")
            let old = topology.servers[0]
            old.kill()
            let newMaster = try await topology.waitForNewMaster(replacing: old)
            #expect(await eventually(timeout: .seconds(20)) { (try? await client.send("SET", "after", "2")) == .simpleString("OK") })
            #expect(try await connectedPort(client) == newMaster.port)
            #expect(try await client.send("GET", "before") == .bulkString(Array("1".utf8)))

            // The old master comes back as a replica; the client stays on the new master.
            try await topology.restartAsReplica(old)
            #expect(await eventually { await topology.role(of: old) == "slave" })
            #expect(try await client.send("SET", "later", "3") == .simpleString("OK"))
            #expect(try await connectedPort(client) == newMaster.port)
        }
    }

    @Test func aServerWhoseRoleIsReplicaIsRefused() async throws {
        let topology = try await SentinelTopology.start(.init(sentinels: 1, quorum: 1))
        defer { topology.stop() }
        for (server, isMaster) in [(topology.servers[0], true), (topology.servers[1], false)] {
            var configuration = server.configuration()
            configuration.connectTimeout = .seconds(10)
            configuration.commandTimeout = .seconds(10)
            let connection = try await RedisConnection.connect(
                configuration: configuration, eventLoop: MultiThreadedEventLoopGroupForTests.loop, logger: testLogger)
            let error = await redisError {
                try await SentinelResolver.verifyMaster(connection, address: .init(host: server.host, port: server.port))
            }
            #expect(isMaster ? error == nil : error?.code == .notMaster)
            connection.close(RedisError(.connectionClosed, "test done"))
        }
    }

    @Test func sentinelsWithAPasswordNeedIt() async throws {
        let topology = try await SentinelTopology.start(
            .init(replicas: 0, sentinels: 1, quorum: 1, password: "data-secret", sentinelPassword: "sentinel-secret"))
        defer { topology.stop() }
        try await withRunningClient(fast(try topology.configuration())) { client async throws in
            #expect(try await client.send("SET", "k", "v") == .simpleString("OK"))
        }
        var wrong = fast(try topology.configuration())
        wrong.sentinel?.password = "wrong"
        try await withRunningClient(wrong, waitForConnection: false) { client in
            let failed = try await firstState(in: client.states) {
                if case .disconnected(let error) = $0 { return error.code == .authenticationFailed }
                return false
            }
            #expect(failed != nil)
        }
    }

    @Test func sentinelsAndTheMasterOverTLS() async throws {
        let certificates = try await TestCertificates.generate()
        defer { certificates.remove() }
        var options = Self.small
        options.tls = .init(certificates)
        let topology = try await SentinelTopology.start(options)
        defer { topology.stop() }
        #expect(topology.url.hasPrefix("rediss+sentinel://"))
        let configuration = fast(try topology.configuration(tls: certificates.clientTLS))
        try await withRunningClient(configuration) { client in
            #expect(try await client.send("SET", "k", "over tls") == .simpleString("OK"))
            let newMaster = try await topology.failover()
            #expect(await eventually { (try? await connectedPort(client)) == newMaster.port })
            #expect(await eventually { (try? await client.send("SET", "k", "again")) == .simpleString("OK") })
        }
    }
}
