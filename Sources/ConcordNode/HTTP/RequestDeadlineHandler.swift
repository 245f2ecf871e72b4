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
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount, isRequestEnd: @escaping (RequestPart) -> Bool, isResponseEnd: @escaping (ResponsePart) -> Bool) {
        self.timeout = timeout
        self.isRequestEnd = isRequestEnd
        self.isResponseEnd = isResponseEnd
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isRequestEnd(unwrapInboundIn(data)) { disarm() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // After an answer the connection waits for its next request: that one gets a full deadline.
        if isResponseEnd(unwrapOutboundIn(data)) { arm(context: context) }
        context.write(data, promise: promise)
    }

    private func arm(context: ChannelHandlerContext) {
        disarm()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
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
