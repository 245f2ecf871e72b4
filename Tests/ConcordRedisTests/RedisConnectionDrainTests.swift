import ConcordProcess
import ConcordTesting
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import ConcordRedis

/// When a command submitted on its connection's own event loop is written: at once when nothing
/// is in flight (a group-commit leader must not wait behind the previous batch's writers), and
/// batched by the scheduled drain when the connection is busy.
@Suite struct RedisConnectionDrainTests {
    @Test func aCommandFromTheOwnLoopGoesOutAtOnceWhenIdleAndIsBatchedWhenBusy() async throws {
        try await withRedisServer { server in
            let configuration = testConfiguration(server)
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: loop, logger: testLogger)
            let other = try await RedisConnection.connect(configuration: configuration, eventLoop: loop, logger: testLogger)
            defer {
                connection.close(RedisError(.connectionClosed, "test over"))
                other.close(RedisError(.connectionClosed, "test over"))
            }
            let onLoop = EventLoopTaskExecutor(eventLoop: loop)
            // In flight right after each submit, read in the same turn of the loop.
            let afterBlockingSubmit = ObservedCount()
            let afterSecondSubmit = ObservedCount()
            try await withThrowingTaskGroup(of: RESPValue.self) { group in
                group.addTask(executorPreference: onLoop) {
                    try await withUnsafeThrowingContinuation { continuation in
                        // BLPOP on an empty list keeps this command in flight until the push below.
                        connection.submit(["BLPOP", "drain-test", "0"], replies: 1, continuation: continuation)
                        afterBlockingSubmit.value.withLock { $0 = connection.inFlightCountOnLoop }
                    }
                }
                #expect(await eventually { afterBlockingSubmit.value.withLock { $0 } != nil })
                #expect(afterBlockingSubmit.value.withLock { $0 } == 1)
                group.addTask(executorPreference: onLoop) {
                    try await withUnsafeThrowingContinuation { continuation in
                        connection.submit(["PING"], replies: 1, continuation: continuation)
                        afterSecondSubmit.value.withLock { $0 = connection.inFlightCountOnLoop }
                    }
                }
                #expect(await eventually { afterSecondSubmit.value.withLock { $0 } != nil })
                // Busy: the second command waited for the drain instead of being written alone.
                #expect(afterSecondSubmit.value.withLock { $0 } == 1)
                #expect(try await eventually { try await loop.submit { connection.inFlightCountOnLoop }.get() == 2 })
                _ = try await other.send(["LPUSH", "drain-test", "v"])
                var replies: [RESPValue] = []
                for try await reply in group { replies.append(reply) }
                #expect(replies.contains { $0.string == "PONG" })
                #expect(replies.contains { $0.array?.last?.string == "v" })
            }
        }
    }
}

/// A count read on the event loop and checked by the test.
private final class ObservedCount: Sendable {
    let value = Mutex<Int?>(nil)
}
