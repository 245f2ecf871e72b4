import NIOCore
import NIOPosix
import Synchronization

/// A TCP server that answers the client's first `mn` properly and then a line that is not the
/// meta protocol, to show the client turns garbage into a typed error and reconnects.
final class GarbageServer: Sendable {
    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let connections = Atomic<Int>(0)

        func channelActive(context: ChannelHandlerContext) {
            connections.add(1, ordering: .relaxed)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            // The connect handshake is a bare `mn`; everything else gets garbage.
            let reply = text == "mn\r\n" ? "MN\r\n" : "GARBAGE IN REPLY\r\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
        }
    }

    let channel: any Channel
    private let counter: Handler

    var port: Int { channel.localAddress?.port ?? 0 }
    var connections: Int { counter.connections.load(ordering: .relaxed) }

    private init(channel: any Channel, counter: Handler) {
        self.channel = channel
        self.counter = counter
    }

    static func start() async throws -> GarbageServer {
        let handler = Handler()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return GarbageServer(channel: channel, counter: handler)
    }

    func stop() async {
        try? await channel.close()
    }
}
