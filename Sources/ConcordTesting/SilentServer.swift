import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A TCP server on 127.0.0.1 that accepts and reads but never answers, for timeout tests.
public final class SilentServer: Sendable {
    public let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    /// Listens on a free port.
    public static func start() async throws -> SilentServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return SilentServer(port: channel.localAddress!.port!, channel: channel)
    }

    /// Stops listening.
    public func stop() async {
        try? await channel.close()
    }
}
