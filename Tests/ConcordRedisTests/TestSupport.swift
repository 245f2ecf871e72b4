import ConcordProcess
import ConcordTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import ConcordRedis

enum ByteBufferAllocatorForTests {
    static func buffer() -> ByteBuffer { ByteBufferAllocator().buffer(capacity: 64) }
}

let testLogger: Logger = {
    var logger = Logger(label: "concord.redis.tests")
    logger.logLevel = .critical
    return logger
}()

/// Runs `client.run()` beside `body` and cancels it afterwards.
func withRunningClient<T: Sendable>(
    _ configuration: RedisConfiguration,
    waitForConnection: Bool = true,
    _ body: @Sendable (RedisClient) async throws -> T
) async throws -> T {
    let client = RedisClient(configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        if waitForConnection {
            try await client.waitUntilConnected(timeout: TestBounds.connect)
        }
        let result = try await body(client)
        group.cancelAll()
        return result
    }
}

/// Runs `subscriber.run()` beside `body` and cancels it afterwards.
func withRunningSubscriber<T: Sendable>(
    _ configuration: RedisConfiguration,
    _ body: @Sendable (RedisSubscriber) async throws -> T
) async throws -> T {
    let subscriber = RedisSubscriber(configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await subscriber.run() }
        try await subscriber.waitUntilConnected(timeout: TestBounds.connect)
        let result = try await body(subscriber)
        group.cancelAll()
        return result
    }
}

/// Waits for the first state in `states` matching `predicate`, within `timeout`.
func firstState(
    in states: AsyncStream<RedisConnectionState>,
    timeout: Duration = TestBounds.condition,
    where predicate: @escaping @Sendable (RedisConnectionState) -> Bool
) async throws -> RedisConnectionState? {
    try await withThrowingTaskGroup(of: RedisConnectionState?.self) { group in
        group.addTask {
            for await state in states where predicate(state) { return state }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// The error a throwing async call failed with, as a RedisError (nil if it succeeded).
func redisError(_ body: () async throws -> Void) async -> RedisError? {
    do {
        try await body()
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        Issue.record("expected RedisError, got \(error)")
        return nil
    }
}

/// `server.configuration()` with connect and command timeouts a loaded CI machine meets (tests
/// about timeouts set their own).
func testConfiguration(_ server: RedisServer) -> RedisConfiguration {
    var configuration = server.configuration()
    configuration.connectTimeout = TestBounds.reply
    configuration.commandTimeout = TestBounds.reply
    return configuration
}

/// `testConfiguration` with a short reconnect backoff, so fault tests finish quickly.
func fastConfiguration(_ server: RedisServer) -> RedisConfiguration {
    var configuration = testConfiguration(server)
    configuration.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(200))
    return configuration
}

import NIOPosix

enum MultiThreadedEventLoopGroupForTests {
    static var loop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }
}
