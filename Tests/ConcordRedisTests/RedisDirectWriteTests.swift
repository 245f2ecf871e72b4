import ConcordProcess
import ConcordTesting
import Testing

@testable import ConcordRedis

/// A caller off the connection's event loop writes its command to the socket itself when nothing
/// else is outstanding. Replies still match callers in order, whichever path each command took,
/// and a command written that way still ends with a typed error when the reply is bad, never
/// comes, or the server closes the connection. Which path a command took is read from the
/// connection's count of direct writes, never inferred from timing.
@Suite("Direct writes from the caller's thread", .timeLimit(.minutes(2)))
struct RedisDirectWriteTests {
    @Test func aLoneCallerWritesItsCommandsItselfAndGetsItsOwnReplies() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                // The first command goes through the loop, which arms the deadline timer.
                #expect(try await client.send("PING") == .simpleString("PONG"))
                let connection = try await client.driver.connection()
                let before = connection.directWriteCount
                for index in 0..<20 {
                    _ = try await client.send("SET", RedisArgument("direct:\(index)"), RedisArgument("value \(index)"))
                    #expect(try await client.send("GET", RedisArgument("direct:\(index)")).string == "value \(index)")
                }
                #expect(connection.directWriteCount - before == 40)
                let error = await redisError { _ = try await client.send("INCR", "direct:0") }
                #expect(error?.code == .server)
                #expect(connection.directWriteCount - before == 41)
                #expect(try await client.send("GET", "direct:19").string == "value 19")
            }
        }
    }

    @Test func withDirectWritesOffEveryCommandGoesThroughTheLoop() async throws {
        try await withRedisServer { server in
            var configuration = testConfiguration(server)
            configuration.directWrites = false
            try await withRunningClient(configuration) { client in
                for index in 0..<10 {
                    _ = try await client.send("SET", RedisArgument("loop:\(index)"), RedisArgument("\(index)"))
                    #expect(try await client.send("GET", RedisArgument("loop:\(index)")).string == "\(index)")
                }
                #expect(try await client.driver.connection().directWriteCount == 0)
            }
        }
    }

    @Test func concurrentCallersGetTheirOwnRepliesWhicheverPathTheirCommandsTook() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                _ = try await client.send("PING")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<8 {
                        group.addTask {
                            for step in 0..<12 {
                                let key = RedisArgument("mixed:\(caller)")
                                _ = try await client.send("SET", key, RedisArgument("\(caller)-\(step)"))
                                let reply = try await client.send("GET", key)
                                #expect(reply.string == "\(caller)-\(step)")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await client.send("GET", "mixed:7").string == "7-11")
            }
        }
    }

    /// A fake server's connection with a PING answered through the loop first, so the next
    /// command is written directly; runs `body` with the client and that connection's count.
    private func withFakeServer(
        commandTimeout: Duration = TestBounds.reply,
        _ body: @Sendable (RedisClient, RedisConnection, Int) async throws -> Void
    ) async throws {
        let fake = try await FakeRedisServer.start()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: fake.port)
        configuration.connectTimeout = TestBounds.reply
        configuration.commandTimeout = commandTimeout
        configuration.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(100))
        do {
            try await withRunningClient(configuration) { client in
                #expect(try await client.send("PING") == .simpleString("PONG"))
                let connection = try await client.driver.connection()
                try await body(client, connection, connection.directWriteCount)
            }
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    @Test func garbageAfterADirectWriteIsAProtocolError() async throws {
        try await withFakeServer { client, connection, before in
            let error = await redisError { _ = try await client.send("GARBAGE") }
            #expect(error?.code == .protocolError)
            #expect(connection.directWriteCount == before + 1)
        }
    }

    @Test func aServerClosingAfterADirectWriteFailsTheCallerAsClosed() async throws {
        try await withFakeServer { client, connection, before in
            let error = await redisError { _ = try await client.send("CLOSE") }
            #expect(error?.code == .connectionClosed)
            #expect(connection.directWriteCount == before + 1)
            #expect(connection.closeError?.code == .connectionClosed)
        }
    }

    /// The deadline timer was armed by the PING; the held command, written directly after it,
    /// is found by that timer and fails with `.timeout` rather than waiting for ever.
    @Test func aDirectlyWrittenCommandWithoutAReplyTimesOut() async throws {
        try await withFakeServer(commandTimeout: .seconds(3)) { client, connection, before in
            let error = await redisError { _ = try await client.send("HOLD") }
            #expect(error?.code == .timeout)
            #expect(connection.directWriteCount == before + 1)
        }
    }
}
