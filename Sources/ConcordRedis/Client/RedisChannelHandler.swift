import Logging
import NIOCore

/// The event-loop side of `RedisConnection`: writes batches, parses replies with hiredis, matches
/// them FIFO to callers, enforces command deadlines, and fails everyone when the link breaks.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let queue: RedisCommandQueue
    private let reader: RESPReader
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    private let logger: Logger
    private var context: ChannelHandlerContext?
    /// Commands written, oldest first; replies arrive in this order.
    private var inFlight = CircularBuffer<PendingCommand>(initialCapacity: 64)
    /// Reused array the queue swaps its commands into, so a drain allocates nothing.
    private var taken: [PendingCommand] = []
    /// One timer for the whole queue, set to the oldest command's deadline: commands share one
    /// timeout, so the oldest always expires first and no per-command timer is needed.
    private var deadlineTimer: Scheduled<Void>?
    private var failed = false

    init(queue: RedisCommandQueue, onMessage: (@Sendable (RedisPubSubMessage) -> Void)?, logger: Logger) throws(RedisError) {
        self.queue = queue
        self.reader = try RESPReader()
        self.onMessage = onMessage
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "connection handler removed"))
        self.context = nil
    }

    // MARK: Writing

    /// Whether no written command waits for its reply.
    var isIdle: Bool { inFlight.isEmpty }

    /// Written commands waiting for their replies.
    var inFlightCount: Int { inFlight.count }

    /// Writes and flushes every command queued since the last drain.
    func drain() {
        let bytes = queue.take(into: &taken)
        guard let context, !failed else {
            // Closed between scheduling and running: `failAll` already took the queue, but be safe.
            let error = queue.closeError ?? RedisError(.connectionClosed, "connection closed")
            for command in taken { command.continuation.resume(throwing: error) }
            taken.removeAll(keepingCapacity: true)
            return
        }
        for command in taken {
            inFlight.append(command)
        }
        taken.removeAll(keepingCapacity: true)
        if let bytes {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
        armDeadlineTimer()
    }

    private func armDeadlineTimer() {
        guard deadlineTimer == nil, let oldest = inFlight.first, let context else { return }
        deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) {
            self.deadlineTimer = nil
            self.checkDeadline()
        }
    }

    private func checkDeadline() {
        guard let oldest = inFlight.first else { return }
        if oldest.deadline <= .now() {
            logger.debug("command timed out; closing connection", metadata: ["concord.redis.pending": "\(inFlight.count)"])
            failAll(RedisError(.timeout, "no reply from Redis within the command timeout; connection closed"))
            context?.close(promise: nil)
        } else {
            armDeadlineTimer()
        }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
            while let reply = try reader.next() {
                try dispatch(reply)
            }
        } catch {
            logger.debug("protocol error; closing connection", metadata: ["concord.redis.error": "\(error)"])
            failAll(error)
            context.close(promise: nil)
        }
    }

    @inline(__always)
    private func dispatch(_ reply: RESPValue) throws(RedisError) {
        if let onMessage {
            if let message = RedisPubSubMessage(push: reply) {
                onMessage(message)
                return
            }
            // The subscriber never sends SUNSUBSCRIBE (it closes the connection instead), so a
            // `sunsubscribe` push is Redis dropping a sharded subscription by itself: its slot
            // migrated or its shard failed over. Closing the connection makes the subscriber
            // find the new owner, subscribe there and report a reconnect, so the cache replays.
            if RedisPubSubMessage.isShardUnsubscribe(reply) {
                throw RedisError(.shardSubscriptionMoved, "Redis ended a sharded subscription: \(reply)")
            }
        }
        guard !inFlight.isEmpty else {
            throw RedisError(.protocolError, "reply received with no command waiting for it: \(reply)")
        }
        let index = inFlight.startIndex
        if inFlight[index].skippedReplies > 0 {
            inFlight[index].skippedReplies -= 1
            return
        }
        if case .error = reply {
            // A failing multi-reply command (SUBSCRIBE with bad arguments) answers with one error only.
            inFlight.removeFirst().continuation.resume(returning: reply)
            return
        }
        inFlight[index].replies -= 1
        if inFlight[index].replies <= 0 {
            inFlight.removeFirst().continuation.resume(returning: reply)
        }
    }

    // MARK: Failure

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "connection closed by the server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError(.connectionClosed, "connection error", underlying: error))
        context.close(promise: nil)
    }

    /// Fails every pending and queued caller with `error`. Idempotent: the first error is kept.
    func failAll(_ error: RedisError) {
        let queued = queue.close(error)
        let error = queue.closeError ?? error
        failed = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        while let command = inFlight.popFirst() {
            command.continuation.resume(throwing: error)
        }
        for command in queued {
            command.continuation.resume(throwing: error)
        }
    }
}
