import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ConcordRedis

/// `RedisChannelHandler` driven over `NIOAsyncTestingChannel`: no socket, no server. Replies
/// are written in as the bytes a server would send, and the handler's writes are read back.
@Suite("RESP channel handler without a socket", .timeLimit(.minutes(1)))
struct RedisChannelHandlerTests {
    /// A handler in a testing channel, and what it delivered as pub/sub messages.
    final class Harness: Sendable {
        let channel: NIOAsyncTestingChannel
        let queue: RedisCommandQueue
        let pushes = Mutex<[RedisPubSubMessage]>([])

        private init(channel: NIOAsyncTestingChannel, queue: RedisCommandQueue) {
            self.channel = channel
            self.queue = queue
        }

        static func make(subscriber: Bool = false) async throws -> Harness {
            let channel = NIOAsyncTestingChannel()
            let harness = Harness(channel: channel, queue: RedisCommandQueue())
            let queue = harness.queue
            try await channel.testingEventLoop.executeInContext {
                var logger = Logger(label: "concord.test.resp")
                logger.logLevel = .critical
                let onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = subscriber ? { @Sendable message in harness.received(message) } : nil
                let handler = try RedisChannelHandler(queue: queue, onMessage: onMessage, logger: logger)
                try channel.pipeline.syncOperations.addHandler(handler)
            }
            try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6379)).get()
            return harness
        }

        func received(_ message: RedisPubSubMessage) {
            pushes.withLock { $0.append(message) }
        }

        /// Submits a command as `RedisConnection` does and drains it onto the channel; returns
        /// the caller's pending reply and the bytes written.
        func send(_ arguments: [RedisArgument], deadline: NIODeadline = .now() + .seconds(60)) async throws -> (reply: Task<RESPValue, any Error>, written: String) {
            let (enqueued, signal) = AsyncStream<Void>.makeStream()
            let queue = self.queue
            let allocator = channel.allocator
            let reply = Task {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<RESPValue, any Error>) in
                    let command = PendingCommand(continuation: continuation, deadline: deadline, replies: 1)
                    switch queue.enqueue(command, allocator: allocator, encode: { RESPEncoder.encode(arguments, into: &$0) }) {
                    case .closed(let error): continuation.resume(throwing: error)
                    case .queued, .scheduleDrain: break
                    }
                    signal.yield()
                    signal.finish()
                }
            }
            for await _ in enqueued {}
            let channel = self.channel
            try await channel.testingEventLoop.executeInContext {
                try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self).drain()
            }
            let written = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            return (reply, String(buffer: written))
        }

        func serverSends(_ text: String) async throws {
            try await channel.writeInbound(ByteBuffer(string: text))
        }
    }

    @Test func aReplySplitAcrossReadsIsAssembledBeforeTheCallerIsAnswered() async throws {
        let harness = try await Harness.make()
        let (reply, written) = try await harness.send(["GET", "k"])
        #expect(written == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        try await harness.serverSends("$5\r\nhel")
        try await harness.serverSends("lo")
        try await harness.serverSends("\r")
        try await harness.serverSends("\n")
        #expect(try await reply.value == .bulkString(Array("hello".utf8)))
    }

    @Test func pipelinedCallersAreAnsweredInOrderEvenWhenRepliesShareARead() async throws {
        let harness = try await Harness.make()
        let (first, _) = try await harness.send(["PING"])
        let (second, _) = try await harness.send(["INCR", "n"])
        try await harness.serverSends("+PONG\r\n:4")
        try await harness.serverSends("2\r\n")
        #expect(try await first.value == .simpleString("PONG"))
        #expect(try await second.value == .integer(42))
    }

    @Test func unsolicitedDataIsAProtocolErrorThatClosesTheConnection() async throws {
        let harness = try await Harness.make()
        try await harness.serverSends("+SURPRISE\r\n")
        #expect(!harness.channel.isActive)
        #expect(harness.queue.closeError?.code == .protocolError)
    }

    @Test func garbageIsAProtocolErrorThatFailsTheWaitingCaller() async throws {
        let harness = try await Harness.make()
        let (reply, _) = try await harness.send(["PING"])
        try await harness.serverSends("?what\r\n")
        await #expect {
            try await reply.value
        } throws: { error in
            (error as? RedisError)?.code == .protocolError
        }
        #expect(!harness.channel.isActive)
    }

    @Test func aPushDuringACommandGoesToTheSubscriberAndTheCommandStillGetsItsReply() async throws {
        let harness = try await Harness.make(subscriber: true)
        let (reply, _) = try await harness.send(["PING"])
        // A message published meanwhile arrives before PING's answer, split across reads.
        try await harness.serverSends("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nab")
        try await harness.serverSends("c\r\n+PONG\r\n")
        #expect(try await reply.value == .simpleString("PONG"))
        #expect(harness.pushes.withLock { $0 } == [RedisPubSubMessage(channel: "ch", payload: Array("abc".utf8))])
    }

    @Test func aReplyArrivingAfterTheTimeoutReachesNoCaller() async throws {
        let harness = try await Harness.make()
        // The first command's deadline has already passed when its timer fires; the second
        // would wait a minute, but the late reply to the first must never be taken for its own.
        let (late, _) = try await harness.send(["GET", "slow"], deadline: .now())
        let (next, _) = try await harness.send(["GET", "next"])
        await harness.channel.testingEventLoop.advanceTime(by: .hours(1_000_000))
        for reply in [late, next] {
            await #expect {
                try await reply.value
            } throws: { error in
                (error as? RedisError)?.code == .timeout
            }
        }
        #expect(!harness.channel.isActive)
        // The answer to GET slow turns up after all: the connection is gone, nobody gets it.
        try? await harness.serverSends("$4\r\nslow\r\n")
        #expect(harness.queue.closeError?.code == .timeout)
    }

    @Test func theServerClosingTheConnectionFailsEveryWaitingCaller() async throws {
        let harness = try await Harness.make()
        let (first, _) = try await harness.send(["GET", "a"])
        let (second, _) = try await harness.send(["GET", "b"])
        try await harness.channel.close().get()
        for reply in [first, second] {
            await #expect {
                try await reply.value
            } throws: { error in
                (error as? RedisError)?.code == .connectionClosed
            }
        }
    }
}
