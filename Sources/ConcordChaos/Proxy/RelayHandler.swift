import NIOCore

/// Forwards one socket's events to its `ProxyConnection`.
final class RelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let connection: ProxyConnection
    private let side: ProxyConnection.Side

    init(connection: ProxyConnection, side: ProxyConnection.Side) {
        self.connection = connection
        self.side = side
    }

    func channelActive(context: ChannelHandlerContext) {
        if side == .client { connection.clientActive() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(Self.unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection.readComplete(side)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            connection.inputClosed(side)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged(side)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inactive(side)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.failed(side, error: error)
    }
}
