import HummingbirdCore
import NIOCore

/// Closes a connection whose request has not arrived whole within a deadline. The clock starts
/// when the connection opens and again after each answer, and stops once the request's last
/// byte is in. An idle timer cannot do this: a client that trickles its head or body a byte at
/// a time resets it forever, holding a connection (and whatever the request buffered) open.
///
/// Generic over the part types because those (NIOHTTPTypes') are reached only through
/// Hummingbird here; `makeHTTP1RequestDeadlineHandler` infers them from `HTTP1Channel`.
final class RequestDeadlineHandler<RequestPart, ResponsePart>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RequestPart
    typealias InboundOut = RequestPart
    typealias OutboundIn = ResponsePart
    typealias OutboundOut = ResponsePart

    private let timeout: TimeAmount
    private let isRequestEnd: (RequestPart) -> Bool
    private let isResponseEnd: (ResponsePart) -> Bool
    /// When the request being waited for must be in whole; nil while none is awaited (a
    /// request is in and its answer not yet written).
    private var requestDue: NIODeadline?
    /// The one timer of the connection. It is not moved for each request: scheduling and
    /// cancelling a task per request cost a promise, a closure and two heap operations on the
    /// event loop, a measurable part of an L1 hit's time. Instead it fires at the deadline it
    /// was set for, and only then looks at `requestDue` and sets itself again if need be.
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, isRequestEnd: @escaping (RequestPart) -> Bool, isResponseEnd: @escaping (ResponsePart) -> Bool) {
        self.timeout = timeout
        self.isRequestEnd = isRequestEnd
        self.isResponseEnd = isResponseEnd
    }

    func handlerAdded(context: ChannelHandlerContext) {
        startWaiting(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isRequestEnd(unwrapInboundIn(data)) { requestDue = nil }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Answers written in front of the decoder (`MemoryHitByteHandler`) are answers too.
        if event is DirectAnswersWritten {
            startWaiting(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // After an answer the connection waits for its next request: that one gets a full deadline.
        if isResponseEnd(unwrapOutboundIn(data)) { startWaiting(context: context) }
        context.write(data, promise: promise)
    }

    private func startWaiting(context: ChannelHandlerContext) {
        // The loop's clock, which is also the one the timer runs on.
        let due = context.eventLoop.now + timeout
        requestDue = due
        // A timer already set fires no later than `due` and then sets itself for `due`.
        if timer == nil { schedule(at: due, context: context) }
    }

    private func schedule(at due: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: due) {
            loopBound.value.handler.timerFired(context: loopBound.value.context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        // No request awaited: the next answer sets the timer again.
        guard let due = requestDue else { return }
        if due <= context.eventLoop.now {
            context.close(promise: nil)
        } else {
            schedule(at: due, context: context)
        }
    }

    private func stop() {
        requestDue = nil
        timer?.cancel()
        timer = nil
    }
}

/// The handler for Hummingbird's HTTP/1.1 channel.
func makeHTTP1RequestDeadlineHandler(timeout: TimeAmount) -> any RemovableChannelHandler {
    makeRequestDeadlineHandler(for: HTTP1Channel.Value.self, timeout: timeout) { part in
        if case .end = part { return true }
        return false
    } isResponseEnd: { part in
        if case .end = part { return true }
        return false
    }
}

/// Infers the part types from the channel's value type.
private func makeRequestDeadlineHandler<Inbound, Outbound>(
    for _: NIOAsyncChannel<Inbound, Outbound>.Type,
    timeout: TimeAmount,
    isRequestEnd: @escaping (Inbound) -> Bool,
    isResponseEnd: @escaping (Outbound) -> Bool
) -> RequestDeadlineHandler<Inbound, Outbound> {
    RequestDeadlineHandler(timeout: timeout, isRequestEnd: isRequestEnd, isResponseEnd: isResponseEnd)
}
