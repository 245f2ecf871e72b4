import NIOCore
import NIOPosix
import Synchronization

@testable import ConcordRedis

/// A tiny TCP server on 127.0.0.1 that speaks just enough RESP: it answers PING, never answers
/// HOLD, and answers GARBAGE with bytes that are not RESP.
final class FakeRedisServer: Sendable {
    private let channel: any Channel
    private let counters: Counters

    final class Counters: Sendable {
        let connections = Atomic<Int>(0)
        let held = Atomic<Int>(0)
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var connections: Int { counters.connections.load(ordering: .relaxed) }
    var held: Int { counters.held.load(ordering: .relaxed) }

    private init(channel: any Channel, counters: Counters) {
        self.channel = channel
        self.counters = counters
    }

    static func start() async throws -> FakeRedisServer {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counters.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeRedisServer(channel: channel, counters: counters)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let counters: Counters
        let reader = try! RESPReader()

        init(counters: Counters) { self.counters = counters }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // Requests are RESP arrays too, so the client's reader parses them.
            try? reader.feed(unwrapInboundIn(data))
            while let request = try? reader.next() {
                let name = request.array?.first?.string?.uppercased()
                let reply: String?
                switch name {
                case "PING": reply = "+PONG\r\n"
                case "HOLD":
                    counters.held.add(1, ordering: .relaxed)
                    reply = nil
                case "GARBAGE": reply = "!this is not RESP\r\n"
                default: reply = "-ERR unknown\r\n"
                }
                if let reply {
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: reply)), promise: nil)
                }
            }
        }
    }
}
