import HTTPTypes
import HummingbirdCore
import NIOCore

/// Closes a connection right after a response that says `Connection: close` has been written.
/// Hummingbird would otherwise read and discard the rest of the request body before the next
/// request, so a client refused with 413 could keep streaming gigabytes into the node.
///
/// Generic over the response part type because that type (NIOHTTPTypes') is reached only
/// through Hummingbird here; `make()` infers it from `HTTP1Channel`.
final class CloseAfterResponseHandler<Part>: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Part
    typealias OutboundOut = Part

    /// What matters about a response part.
    enum Kind {
        case head(closes: Bool)
        case body
        case end
    }

    private let classify: (Part) -> Kind
    private var closeAfterEnd = false

    init(classify: @escaping (Part) -> Kind) {
        self.classify = classify
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch classify(unwrapOutboundIn(data)) {
        case .head(let closes):
            closeAfterEnd = closes
        case .end where closeAfterEnd:
            closeAfterEnd = false
            let written = promise ?? context.eventLoop.makePromise()
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
            context.writeAndFlush(data, promise: written)
            return
        case .body, .end:
            break
        }
        context.write(data, promise: promise)
    }
}

/// Infers the part type from the channel's value type.
func makeCloseAfterResponseHandler<Inbound, Outbound>(
    for _: NIOAsyncChannel<Inbound, Outbound>.Type,
    classify: @escaping (Outbound) -> CloseAfterResponseHandler<Outbound>.Kind
) -> CloseAfterResponseHandler<Outbound> {
    CloseAfterResponseHandler(classify: classify)
}

/// The handler for Hummingbird's HTTP/1.1 channel.
func makeHTTP1CloseAfterResponseHandler() -> any RemovableChannelHandler {
    makeCloseAfterResponseHandler(for: HTTP1Channel.Value.self) { part in
        switch part {
        case .head(let head): .head(closes: head.headerFields[.connection]?.lowercased() == "close")
        case .body: .body
        case .end: .end
        }
    }
}
