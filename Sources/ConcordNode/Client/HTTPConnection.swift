import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One keep-alive HTTP/1.1 connection of a `NodeClient`: a channel and the handler that turns
/// the response parts of the one request in flight into a `NodeResponse`.
final class HTTPConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<ResponseCollector>

    private init(channel: any Channel, handler: ResponseCollector) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    static func connect(
        host: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount, maxResponseBytes: Int,
        sslContext: NIOSSLContext? = nil
    ) -> EventLoopFuture<HTTPConnection> {
        ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        // The host names the certificate to expect; an IP literal is checked
                        // against the certificate's IP addresses instead.
                        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(maxBodyBytes: maxResponseBytes))
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                // Runs on the channel's own loop, where the handler may be touched.
                HTTPConnection(channel: channel, handler: try channel.pipeline.syncOperations.handler(type: ResponseCollector.self))
            }
    }

    var isUsable: Bool { channel.isActive }

    /// Sends one request; the future fails with `NodeClientError.timeout` after `timeout`, and
    /// the connection is then closed because a late answer would be taken for the next request's.
    /// `what` names the request in errors.
    func send(_ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, what: String) -> EventLoopFuture<(NodeResponse, keepAlive: Bool)> {
        let channel = self.channel
        let handler = self.handler
        return channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: (NodeResponse, keepAlive: Bool).self)
            guard channel.isActive else {
                // Nothing was sent, so the request may safely go out again on a new connection.
                promise.fail(RetryableClose(error: NodeClientError(.connectionClosed, "\(what): the connection closed before the request was sent")))
                return promise.futureResult
            }
            handler.value.begin(promise, what: what)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body, body.readableBytes > 0 {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return promise.futureResult
        }
        .deadline(timeout, NodeClientError(.timeout, "\(what) got no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        .flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Collects the response parts of the request in flight, up to a size limit.
final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let maxBodyBytes: Int
    private var promise: EventLoopPromise<(NodeResponse, keepAlive: Bool)>?
    private var what = ""
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    /// Some of the response arrived: a failure now is not a stale keep-alive connection.
    private var receivedAny = false

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func begin(_ promise: EventLoopPromise<(NodeResponse, keepAlive: Bool)>, what: String) {
        self.promise = promise
        self.what = what
        head = nil
        body = nil
        receivedAny = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard promise != nil else {
            // An answer nobody asked for (or the rest of one refused): the connection's state
            // is unknown, so drop it.
            context.close(promise: nil)
            return
        }
        receivedAny = true
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var part):
            guard (body?.readableBytes ?? 0) + part.readableBytes <= maxBodyBytes else {
                fail(NodeClientError(.protocolError, "\(what): the answer is larger than \(maxBodyBytes) bytes"), retryable: false)
                context.close(promise: nil)
                return
            }
            if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
        case .end:
            guard let promise, let head else {
                fail(NodeClientError(.protocolError, "\(what): the answer has no head"), retryable: false)
                context.close(promise: nil)
                return
            }
            self.promise = nil
            let headers = head.headers.map { (name: $0.name, value: $0.value) }
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            promise.succeed((NodeResponse(status: Int(head.status.code), headers: headers, body: bytes), head.isKeepAlive))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let message = receivedAny ? "the node closed the connection mid-answer" : "the node closed the connection without answering"
        fail(NodeClientError(.connectionClosed, "\(what): \(message)"), retryable: !receivedAny)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError {
            fail(NodeClientError(.protocolError, "\(what): not a valid HTTP answer (\(error))"), retryable: false)
        } else {
            // A reset reads like a close: on a reused connection, the node most likely dropped
            // it while idle, before our request arrived.
            fail(NodeClientError(.connectionClosed, "\(what): \(error)"), retryable: !receivedAny)
        }
        context.close(promise: nil)
    }

    private func fail(_ error: NodeClientError, retryable: Bool) {
        guard let promise else { return }
        self.promise = nil
        promise.fail(retryable ? RetryableClose(error: error) : error)
    }
}

/// A connection that closed before answering anything: on a reused keep-alive connection, the
/// server most likely closed it while idle, and the request can be sent again on a new one.
struct RetryableClose: Error {
    var error: NodeClientError
}
