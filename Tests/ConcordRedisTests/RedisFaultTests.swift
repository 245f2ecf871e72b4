import ConcordProcess
import ConcordTesting
import Testing

@testable import ConcordRedis

@Suite("Faults: garbage, hung server, restarts, bad credentials, no server", .timeLimit(.minutes(2)))
struct RedisFaultTests {
    @Test func garbageFromTheServerFailsEveryPendingCallerAndReconnects() async throws {
        let fake = try await FakeRedisServer.start()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: fake.port)
        configuration.commandTimeout = .seconds(30)  // HOLD must stay pending until the garbage arrives
        configuration.connectTimeout = TestBounds.reply
        configuration.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(100))
        do {
            try await withRunningClient(configuration) { client in
                // Subscribed before the garbage, so the loss and the reconnect after it are both seen.
                let states = client.states
                let (pending, connectionsBefore) = try await withThrowingTaskGroup(of: RedisError?.self) { group in
                    for _ in 0..<3 {
                        group.addTask { await redisError { _ = try await client.send("HOLD") } }
                    }
                    #expect(await eventually { fake.held == 3 })
                    // Counted before the garbage: a loaded machine may have reconnected once already.
                    let connectionsBefore = fake.connections
                    let garbage = await redisError { _ = try await client.send("GARBAGE") }
                    #expect(garbage?.code == .protocolError)
                    var errors: [RedisError?] = []
                    for try await error in group { errors.append(error) }
                    return (errors, connectionsBefore)
                }
                #expect(pending.count == 3)
                #expect(pending.allSatisfy { $0?.code == .protocolError })
                // The client publishes the loss only after it has dropped the poisoned connection, and
                // `connected` only after the new one is in place; a command sent between the two would
                // be told `notConnected`, so the PING waits for both states rather than for a count.
                let lost = try await firstState(in: states) {
                    if case .disconnected(let error) = $0 { return error.code == .protocolError }
                    return false
                }
                #expect(lost != nil)
                #expect(try await firstState(in: states, timeout: TestBounds.connect) { $0.isConnected } != nil)
                #expect(fake.connections > connectionsBefore)
                #expect(try await client.send("PING") == .simpleString("PONG"))
            }
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    @Test func pausedServerTimesOutPendingAndNewCommands() async throws {
        try await withRedisServer { server in
            var configuration = fastConfiguration(server)
            configuration.commandTimeout = .milliseconds(200)
            configuration.connectTimeout = .milliseconds(200)
            try await withRunningClient(configuration) { client in
                let states = client.states
                server.pause()
                let clock = ContinuousClock()
                let start = clock.now
                let errors = await withTaskGroup(of: RedisError?.self) { group in
                    for index in 0..<5 {
                        group.addTask { await redisError { _ = try await client.send("SET", RedisArgument("k\(index)"), "v") } }
                    }
                    var errors: [RedisError?] = []
                    for await error in group { errors.append(error) }
                    return errors
                }
                // Each command ends within its 200 ms deadline; the bound only tells "ended" from "hung".
                #expect(clock.now - start < TestBounds.condition)
                #expect(errors.count == 5)
                // Commands already written when the deadline passes fail with `.timeout`; on a very busy
                // machine a task may only get to submit after the poisoned connection closed, and then
                // it is told `.notConnected`. Either way nothing hangs.
                #expect(errors.allSatisfy { $0?.code == .timeout || $0?.code == .notConnected })
                #expect(errors.contains { $0?.code == .timeout })
                let lost = try await firstState(in: states) {
                    if case .disconnected(let error) = $0 { return error.code == .timeout }
                    return false
                }
                #expect(lost != nil)

                // The server still accepts TCP while stopped; a new command must not hang either.
                let again = clock.now
                let error = await redisError { _ = try await client.send("PING") }
                #expect(error?.code == .timeout || error?.code == .notConnected)
                #expect(clock.now - again < TestBounds.condition)

                server.resume()
                // Reconnecting needs a handshake within the 200 ms connect timeout, which a loaded
                // machine may miss a few times; the client keeps trying.
                #expect(await eventually(timeout: TestBounds.connect) { (try? await client.send("PING")) == .simpleString("PONG") })
            }
            server.resume()
        }
    }

    @Test func killedServerFailsPendingCallersAndClientReconnectsAfterRestart() async throws {
        try await withRedisServer { server in
            var configuration = fastConfiguration(server)
            configuration.commandTimeout = .seconds(30)
            let observer = RedisClient(configuration: configuration, logger: testLogger)
            try await withRunningClient(configuration) { client in
                _ = try await client.send("SET", "before", "1")
                let blocked = try await withThrowingTaskGroup(of: RedisError?.self) { group in
                    group.addTask { try? await observer.run() ; return nil }
                    try await observer.waitUntilConnected(timeout: TestBounds.connect)
                    group.addTask { await redisError { _ = try await client.send("BLPOP", "never", 0) } }
                    // A blocking command holds up its whole pipeline, so watch it from another connection.
                    #expect(
                        await eventually {
                            let clients = try? await observer.send("CLIENT", "LIST").string
                            return clients?.contains("cmd=blpop") == true
                        })
                    server.kill()
                    var blocked: RedisError?
                    for try await error in group {
                        if let error {
                            blocked = error
                            break
                        }
                    }
                    group.cancelAll()
                    return blocked
                }
                #expect(blocked?.code == .connectionClosed)

                let error = await redisError { _ = try await client.send("PING") }
                #expect(error?.code == .notConnected || error?.code == .connectionClosed)

                try await server.restart()
                #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
                #expect(try await client.send("GET", "before") == .null)  // restart emptied the dataset
            }
        }
    }

    @Test func wrongPasswordIsReportedAndRetriedWithBackoff() async throws {
        try await withRedisServer(.init(requirePassword: "right")) { server in
            var configuration = server.configuration()
            configuration.password = "wrong"
            configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(200))
            // Every attempt must end in the refusal: with the 1 s defaults, a loaded machine can
            // time an attempt out first, and then the last failure is a timeout, not the password.
            configuration.connectTimeout = TestBounds.connect
            configuration.commandTimeout = TestBounds.reply
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .authenticationFailed }
                    return false
                }
                #expect(failed != nil)
                let error = await redisError { _ = try await client.send("PING") }
                #expect(error?.code == .authenticationFailed)
                let waited = await redisError { try await client.waitUntilConnected(timeout: .milliseconds(100)) }
                #expect(waited?.code == .authenticationFailed)

                // Measuring a rate needs real time to pass: at least a second, and at least one
                // more attempt (a loaded machine may not run the reconnect loop for a while).
                let clock = ContinuousClock()
                let start = clock.now
                let before = client.driver.connectionAttempts
                let retried = await eventually(timeout: TestBounds.connect) {
                    clock.now - start >= .seconds(1) && client.driver.connectionAttempts > before
                }
                #expect(retried)
                let attempts = client.driver.connectionAttempts - before
                let seconds = Double((clock.now - start).components.seconds) + Double((clock.now - start).components.attoseconds) / 1e18
                // Full jitter under a 200 ms cap averages ~10 attempts a second; a retry storm would be thousands.
                #expect(Double(attempts) <= 60 * seconds)
            }

            // No password at all against a protected server: NOAUTH is an authentication failure too.
            var anonymous = server.configuration()
            anonymous.password = nil
            try await withRunningClient(anonymous, waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .authenticationFailed }
                    return false
                }
                #expect(failed != nil)
            }
        }
    }

    /// Waiting is checked against the configured bounds, never against the machine's speed:
    /// a timer never fires early, so "at least the bound" holds on any machine, and "did not
    /// wait for a connection" is shown by the wrong behaviour taking far longer (a minute's
    /// connect timeout, or a server that never comes back) than the generous limit allowed.
    @Test func commandsWhileDisconnectedFailFastOrWithinTheWaitBound() async throws {
        try await withRedisServer { server in
            server.kill()
            let clock = ContinuousClock()

            // Never run: fails once the wait for a first connection (connectTimeout) is over.
            let idle = RedisClient(configuration: server.configuration(), logger: testLogger)
            #expect(await redisError { _ = try await idle.send("PING") }?.code == .notConnected)

            // Running but never connected: waits for the first connection no longer than
            // connectTimeout (the start-up grace), then fails; it does not wait for the server.
            var configuration = fastConfiguration(server)
            configuration.connectTimeout = .seconds(1)
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let start = clock.now
                let error = await redisError { _ = try await client.send("PING") }
                let elapsed = clock.now - start
                #expect(error?.code == .notConnected)
                #expect(elapsed >= .milliseconds(950))
                #expect(elapsed < .seconds(1) + TestBounds.condition)
                #expect(!client.isConnected)
            }

            configuration.waitForConnectionTimeout = .milliseconds(300)
            configuration.connectTimeout = .milliseconds(300)
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let start = clock.now
                let error = await redisError { _ = try await client.send("PING") }
                let elapsed = clock.now - start
                #expect(error?.code == .notConnected)
                #expect(elapsed >= .milliseconds(250))
                #expect(elapsed < .milliseconds(300) + TestBounds.condition)
            }

            // A command waiting for the connection goes through once the server is back.
            configuration = fastConfiguration(server)
            configuration.waitForConnectionTimeout = TestBounds.connect
            try await withRunningClient(configuration, waitForConnection: false) { client in
                async let reply = client.send("PING")
                try await server.restart()
                #expect(try await reply == .simpleString("PONG"))
            }

            // Once a connection was lost, a zero wait fails at once: it does not wait out the
            // connect timeout (a minute here) as it does before the first connection.
            configuration = fastConfiguration(server)
            configuration.connectTimeout = .seconds(60)
            try await withRunningClient(configuration) { client in
                let states = client.states
                server.kill()
                let lost = try await firstState(in: states) {
                    if case .disconnected = $0 { return true }
                    return false
                }
                #expect(lost != nil)
                let start = clock.now
                let error = await redisError { _ = try await client.send("PING") }
                #expect(error?.code == .notConnected || error?.code == .connectionClosed)
                #expect(clock.now - start < TestBounds.condition)
            }
        }
    }

    @Test func connectTimeoutAndRefusalAreTyped() async throws {
        try await withRedisServer { server in
            server.kill()
            let error = await redisError {
                _ = try await RedisConnection.connect(
                    configuration: server.configuration(), eventLoop: MultiThreadedEventLoopGroupForTests.loop, logger: testLogger)
            }
            #expect(error?.code == .connectionRefused)
        }
    }
}
