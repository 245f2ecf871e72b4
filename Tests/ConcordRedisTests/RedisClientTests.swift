import ConcordProcess
import ConcordTesting
import Synchronization
import Testing

@testable import ConcordRedis

@Suite("RedisClient against a real redis-server", .timeLimit(.minutes(2)))
struct RedisClientTests {
    @Test func basicCommandsAndReplyTypes() async throws {
        try await withRedisServer { server in
            var configuration = testConfiguration(server)
            configuration.commandTimeout = .seconds(10)  // a 16 MiB round trip on a busy machine
            try await withRunningClient(configuration) { client in
                #expect(client.isConnected)
                #expect(try await client.send("PING") == .simpleString("PONG"))
                #expect(try await client.send("SET", "k", "v") == .simpleString("OK"))
                #expect(try await client.send("GET", "k").string == "v")
                #expect(try await client.send("GET", "missing") == .null)
                #expect(try await client.send("INCRBY", "n", 41) == .integer(41))
                #expect(try await client.send(["INCR", "n"]) == .integer(42))

                let binary: [UInt8] = [0, 13, 10, 255, 0]
                _ = try await client.send("SET", "bin", RedisArgument(binary))
                #expect(try await client.send("GET", "bin") == .bulkString(binary))

                _ = try await client.send("RPUSH", "list", "a", "b", "c")
                #expect(try await client.send("LRANGE", "list", 0, -1).array?.compactMap(\.string) == ["a", "b", "c"])
                #expect(try await client.send("BLPOP", "nolist", "0.01") == .null)  // nil array

                let subscribe = await redisError { _ = try await client.send("subscribe", "channel") }
                #expect(subscribe?.code == .unsupportedCommand)
                #expect(await redisError { _ = try await client.send(["MONITOR"]) }?.code == .unsupportedCommand)

                var large = [UInt8](repeating: 7, count: 16 * 1024 * 1024)
                large[12_345] = 0
                _ = try await client.send("SET", "large", RedisArgument(large))
                #expect(try await client.send("GET", "large") == .bulkString(large))
            }
        }
    }

    @Test func serverErrorsAreThrownAndTheConnectionStaysUsable() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                _ = try await client.send("SET", "str", "x")
                let error = await redisError { _ = try await client.send("LPUSH", "str", "y") }
                #expect(error?.code == .server)
                #expect(error?.message.hasPrefix("WRONGTYPE") == true)
                #expect(error?.serverErrorPrefix == "WRONGTYPE")
                let unknown = await redisError { _ = try await client.send("NOSUCHCOMMAND") }
                #expect(unknown?.code == .server)
                #expect(try await client.send("GET", "str").string == "x")
                #expect(client.isConnected)

                // Nested errors (inside EXEC) stay values.
                _ = try await client.send("MULTI")
                _ = try await client.send("INCR", "str")
                _ = try await client.send("SET", "a", "1")
                let exec = try await client.send("EXEC")
                guard case .array(let results) = exec, case .error(let message) = results.first else {
                    Issue.record("unexpected EXEC reply \(exec)")
                    return
                }
                #expect(message.hasPrefix("ERR"))
            }
        }
    }

    @Test func tenThousandConcurrentCommandsEachGetTheirOwnReply() async throws {
        try await withRedisServer { server in
            var configuration = testConfiguration(server)
            // 10k commands queue at once on a shared 2-core machine; this is not a latency test.
            configuration.commandTimeout = .seconds(30)
            try await withRunningClient(configuration) { client in
                let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<10_000 {
                        group.addTask {
                            let payload = "payload-\(index)-\(index &* 7919)"
                            if index % 3 == 0 {
                                _ = try await client.send("SET", RedisArgument("key:\(index)"), RedisArgument(payload))
                                return try await client.send("GET", RedisArgument("key:\(index)")).string == payload ? 0 : 1
                            }
                            return try await client.send("ECHO", RedisArgument(payload)).string == payload ? 0 : 1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(mismatches == 0)
                #expect(try await client.send("DBSIZE") == .integer(3334))
            }
        }
    }

    @Test func aclUserAndPassword() async throws {
        let options = RedisServer.Options(requirePassword: "defaultpw", users: [.init(name: "alice", password: "wonder land")])
        try await withRedisServer(options) { server in
            var configuration = testConfiguration(server)
            configuration.username = "alice"
            configuration.password = "wonder land"
            try await withRunningClient(configuration) { client in
                let user = try await client.send("ACL", "WHOAMI").string
                #expect(user == "alice")
            }
            // The default user with requirepass.
            try await withRunningClient(testConfiguration(server)) { client in
                let user = try await client.send("ACL", "WHOAMI").string
                #expect(user == "default")
            }
        }
    }

    @Test func selectedDatabaseIsolatesKeys() async throws {
        try await withRedisServer { server in
            var db3 = testConfiguration(server)
            db3.database = 3
            try await withRunningClient(db3) { client in
                _ = try await client.send("SET", "only-in-3", "yes")
                #expect(try await client.send("GET", "only-in-3").string == "yes")
            }
            try await withRunningClient(testConfiguration(server)) { client in
                #expect(try await client.send("GET", "only-in-3") == .null)
                _ = try await client.send("SELECT", 3)
                #expect(try await client.send("GET", "only-in-3").string == "yes")
            }
        }
    }

    @Test func clientNameIsVisibleInClientList() async throws {
        try await withRedisServer { server in
            var configuration = testConfiguration(server)
            configuration.clientName = "concord-test-client"
            try await withRunningClient(configuration) { client in
                #expect(try await client.send("CLIENT", "GETNAME").string == "concord-test-client")
                let list = try await client.send("CLIENT", "LIST").string ?? ""
                #expect(list.contains("name=concord-test-client"))
            }
        }
    }

    @Test func evalShaSurvivesScriptFlushAndRestart() async throws {
        try await withRedisServer { server in
            let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
            try await withRunningClient(fastConfiguration(server)) { client in
                let first = try await client.evalScript(script, keys: ["counter"], arguments: ["hello"])
                #expect(first == .array([.bulkString(Array("counter".utf8)), .bulkString(Array("hello".utf8)), .integer(1)]))
                #expect(try await client.send("SCRIPT", "LOAD", RedisArgument(script.source)).string == script.sha1)

                _ = try await client.send("SCRIPT", "FLUSH")
                #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(0)]))
                let second = try await client.evalScript(script, keys: ["counter"], arguments: ["again"])
                #expect(second.array?.last == .integer(2))

                try await server.restart()
                // The old connection is dead; wait for the supervisor to reconnect.
                #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
                let third = try await client.evalScript(script, keys: ["counter"], arguments: ["after restart"])
                #expect(third.array?.last == .integer(1))

                let failing = await redisError { _ = try await client.evalScript(RedisScript("return redis.call('NOPE')")) }
                #expect(failing?.code == .server)
            }
        }
    }

    @Test func multipleStateConsumersSeeTheSameStates() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                let first = client.states
                let second = client.states
                let connectedState = try await firstState(in: first) { $0.isConnected }
                #expect(connectedState != nil)
                let secondState = try await firstState(in: second) { $0.isConnected }
                #expect(secondState != nil)
            }
        }
    }

    @Test func callersOnTheEventLoopExecutorShareTheConnection() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                let allMatched = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<500 {
                        group.addTask(executorPreference: client.taskExecutor) {
                            try await client.send("ECHO", RedisArgument("v\(index)")).string == "v\(index)"
                        }
                    }
                    return try await group.reduce(true) { $0 && $1 }
                }
                #expect(allMatched)
            }
        }
    }

    @Test func runReturnsOnCancellationAndTheStateStreamFinishes() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: testConfiguration(server), logger: testLogger)
            let states = client.states
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                try await client.waitUntilConnected(timeout: TestBounds.connect)
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(!client.isConnected)
            #expect(await redisError { _ = try await client.send("PING") }?.code == .notConnected)
            var seen: [String] = []
            for await state in states {
                switch state {
                case .connecting: seen.append("connecting")
                case .connected: seen.append("connected")
                case .disconnected: seen.append("disconnected")
                case .backingOff: seen.append("backingOff")
                }
            }
            #expect(seen == ["connecting", "connected", "disconnected"])
        }
    }
}
