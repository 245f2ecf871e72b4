import HTTPTypes
import HummingbirdCore
import NIOCore

/// Answers GETs of keys that L1 holds fresh, and `GET /health`, on the event loop, in the
/// channel pipeline, and hands every other request on to the router unchanged. Through the router a request hops from
/// the event loop to the concurrency pool and its answer hops back; a hit here does neither, and
/// skips the router's middleware, context and per-request logger.
///
/// It sits right behind Hummingbird's connection-state handler (see `MemoryHitHTTP1Channel`), so
/// that handler still sees every request and answer: idle timeouts and graceful shutdown (which
/// closes the connection once its requests are answered) treat a hit answered here as any other
/// request. Answers stay in request order: while a request
/// handed to the router is unanswered, later requests go to the router too. A hit is answered
/// only while the channel is writable, so a client that pipelines without reading meets the
/// router's backpressure rather than growing the node's write buffer.
///
/// Generic over the part types because those (NIOHTTPTypes') are reached only through
/// Hummingbird here; `makeHTTP1MemoryHitHandler` infers them from `HTTP1Channel`.
final class MemoryHitHandler<RequestPart, ResponsePart>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RequestPart
    typealias InboundOut = RequestPart
    typealias OutboundIn = ResponsePart
    typealias OutboundOut = ResponsePart

    /// What matters about a request part.
    enum RequestKind {
        case head(HTTPRequest)
        case body
        case end
    }

    /// How to read request parts and build response parts of the channel's types.
    struct Parts {
        var classify: (RequestPart) -> RequestKind
        var isEnd: (ResponsePart) -> Bool
        var head: (HTTPResponse) -> ResponsePart
        var body: (ByteBuffer) -> ResponsePart
        var end: ResponsePart
    }

    /// A GET that may be answered here, held back until its end arrives.
    private struct HeldRequest {
        var part: RequestPart
        var request: MemoryHitResponder.DirectRequest
        var start: ContinuousClock.Instant
    }

    private let responder: MemoryHitResponder
    private let parts: Parts
    private var held: HeldRequest?
    /// Requests handed to the router and their answers, shared with `MemoryHitByteHandler`.
    private let connection: DirectHitConnection
    private var needsFlush = false
    private var date = HTTPDate()

    init(responder: MemoryHitResponder, parts: Parts, connection: DirectHitConnection = DirectHitConnection()) {
        self.responder = responder
        self.parts = parts
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch parts.classify(part) {
        case .head(let request):
            if connection.requestsAtRouter == 0, context.channel.isWritable, let direct = responder.directRequest(of: request) {
                held = HeldRequest(part: part, request: direct, start: .now)
                return
            }
            handToRouter(context: context, data)
        case .body:
            // A GET with a body is unusual enough to leave to the router.
            releaseHeld(context: context)
            context.fireChannelRead(data)
        case .end:
            guard let request = held else {
                connection.isReadingRouterRequest = false
                context.fireChannelRead(data)
                return
            }
            held = nil
            switch request.request {
            case .cacheRead(let key):
                if let answer = responder.answer(key, date: date.now(), allocator: context.channel.allocator) {
                    write(answer, context: context)
                    responder.recordHit(duration: ContinuousClock.now - request.start)
                    return
                }
            case .health:
                write(responder.healthAnswer(date: date.now(), allocator: context.channel.allocator), context: context)
                responder.recordHealth(duration: ContinuousClock.now - request.start)
                return
            }
            handToRouter(context: context, wrapInboundOut(request.part))
            connection.isReadingRouterRequest = false
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Hits answered during one read go out in one flush, as pipelined answers should.
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Never below zero: the router also answers a request it could not parse, which never
        // came through here as a head.
        if parts.isEnd(unwrapOutboundIn(data)), connection.requestsAtRouter > 0 {
            connection.requestsAtRouter -= 1
            connection.lastRouterAnswer = context.eventLoop.now
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        context.fireChannelInactive()
    }

    /// Writes a whole answer; it goes out with the read's flush.
    private func write(_ answer: (head: HTTPResponse, body: ByteBuffer), context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(parts.head(answer.head)), promise: nil)
        context.write(wrapOutboundOut(parts.body(answer.body)), promise: nil)
        context.write(wrapOutboundOut(parts.end), promise: nil)
        needsFlush = true
    }

    private func handToRouter(context: ChannelHandlerContext, _ head: NIOAny) {
        connection.requestsAtRouter += 1
        connection.isReadingRouterRequest = true
        context.fireChannelRead(head)
    }

    private func releaseHeld(context: ChannelHandlerContext) {
        guard let request = held else { return }
        held = nil
        handToRouter(context: context, wrapInboundOut(request.part))
    }
}

/// Infers the part types from the channel's value type.
private func makeMemoryHitHandler<Inbound, Outbound>(
    for _: NIOAsyncChannel<Inbound, Outbound>.Type,
    responder: MemoryHitResponder,
    connection: DirectHitConnection,
    parts: MemoryHitHandler<Inbound, Outbound>.Parts
) -> MemoryHitHandler<Inbound, Outbound> {
    MemoryHitHandler(responder: responder, parts: parts, connection: connection)
}

/// The handler for Hummingbird's HTTP/1.1 channel.
func makeHTTP1MemoryHitHandler(responder: MemoryHitResponder, connection: DirectHitConnection = DirectHitConnection()) -> any RemovableChannelHandler {
    makeMemoryHitHandler(for: HTTP1Channel.Value.self, responder: responder, connection: connection, parts: .init(
        classify: { part in
            switch part {
            case .head(let request): .head(request)
            case .body: .body
            case .end: .end
            }
        },
        isEnd: { part in
            if case .end = part { return true }
            return false
        },
        head: { .head($0) },
        body: { .body($0) },
        end: .end(nil)
    ))
}
