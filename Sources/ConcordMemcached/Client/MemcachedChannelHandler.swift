import Logging
import NIOCore

/// The event-loop side of `MemcachedConnection`: writes batches, parses responses, matches them
/// FIFO to callers, enforces deadlines, and fails everyone when the link breaks.
final class MemcachedChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let queue: MemcachedRequestQueue
    private let logger: Logger
    private var parser: MetaResponseParser
    private var context: ChannelHandlerContext?
    private var inFlight = CircularBuffer<PendingMetaRequest>(initialCapacity: 64)
    /// Responses of the oldest request while it is a quiet batch waiting for `MN`.
    private var collected: [MetaResponse] = []
    private var taken: [PendingMetaRequest] = []
    /// One timer for the queue, at the oldest request's deadline (all share one timeout).
    private var deadlineTimer: Scheduled<Void>?
    private var failed = false

    init(queue: MemcachedRequestQueue, logger: Logger, maxValueSize: Int) {
        self.queue = queue
        self.logger = logger
        self.parser = MetaResponseParser(maxValueSize: maxValueSize)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(MemcachedError(.connectionClosed, "connection handler removed"))
        self.context = nil
    }

    func drain() {
        let bytes = queue.take(into: &taken)
        guard let context, !failed else {
            let error = queue.closeError ?? MemcachedError(.connectionClosed, "connection closed")
            for request in taken { request.continuation.resume(throwing: error) }
            taken.removeAll(keepingCapacity: true)
            return
        }
        for request in taken { inFlight.append(request) }
        taken.removeAll(keepingCapacity: true)
        if let bytes { context.writeAndFlush(wrapOutboundOut(bytes), promise: nil) }
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
            logger.debug("request timed out; closing connection", metadata: ["concord.memcached.pending": "\(inFlight.count)"])
            failAll(MemcachedError(.timeout, "no response from memcached within the request timeout; connection closed"))
            context?.close(promise: nil)
        } else {
            armDeadlineTimer()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.feed(unwrapInboundIn(data))
        do {
            while let response = try parser.next() {
                try dispatch(response)
            }
        } catch {
            logger.debug("protocol error; closing connection", metadata: ["concord.memcached.error": "\(error)"])
            failAll(error)
            context.close(promise: nil)
        }
    }

    private func dispatch(_ response: MetaResponse) throws(MemcachedError) {
        guard let oldest = inFlight.first else {
            throw MemcachedError(.protocolError, "response \(response.status) received with no request waiting for it")
        }
        if oldest.untilNoop {
            if response.status == .noop {
                inFlight.removeFirst().continuation.resume(returning: collected)
                collected = []
            } else {
                collected.append(response)
            }
            return
        }
        inFlight.removeFirst().continuation.resume(returning: [response])
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(MemcachedError(.connectionClosed, "connection closed by the server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(MemcachedError(.connectionClosed, "connection error", underlying: error))
        context.close(promise: nil)
    }

    /// Fails every pending and queued caller. Idempotent: the first error is kept.
    func failAll(_ error: MemcachedError) {
        let queued = queue.close(error)
        let error = queue.closeError ?? error
        failed = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        collected = []
        while let request = inFlight.popFirst() { request.continuation.resume(throwing: error) }
        for request in queued { request.continuation.resume(throwing: error) }
    }
}
