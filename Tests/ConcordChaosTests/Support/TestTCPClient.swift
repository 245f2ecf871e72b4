import ConcordTesting
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client for proxy tests: it records what arrives and how the connection ended
/// (EOF, reset, other error) so tests can poll for those facts.
final class TestTCPClient: Sendable {
    struct Observed: Sendable {
        var received: [UInt8] = []
        var inputClosed = false
        var closed = false
        var reset = false
        var error: String?
    }

    private let channel: any Channel
    private let recorder: Recorder

    private init(channel: any Channel, recorder: Recorder) {
        self.channel = channel
        self.recorder = recorder
    }

    static func connect(port: Int) async throws -> TestTCPClient {
        let box = Recorder()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(TestBounds.reply))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RecordingHandler(box: box))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return TestTCPClient(channel: channel, recorder: box)
    }

    var state: Observed { recorder.observed.withLock { $0 } }
    var received: [UInt8] { state.received }
    var receivedString: String { String(decoding: state.received, as: UTF8.self) }

    func send(_ string: String) async throws {
        try await send(Array(string.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        do {
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        } catch let error as IOError where error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            // A write can be the first to meet a reset: when the RST lands while the event loop
            // is busy, the write fails before a read reports it, and NIO then closes the channel
            // without an errorCaught. Only a reset makes a write fail so; a FIN would not.
            recorder.observed.withLock {
                $0.reset = true
                $0.error = "\(error)"
            }
            throw error
        }
    }

    /// Writes without waiting for the bytes to leave, for backpressure tests.
    func sendWithoutWaiting(_ bytes: [UInt8]) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    func shutdownOutput() async throws {
        try await channel.close(mode: .output)
    }

    func close() async {
        try? await channel.close()
    }
}

/// Created before the connection so no event is missed, even one that arrives during connect.
private final class Recorder: Sendable {
    let observed = Mutex(TestTCPClient.Observed())
}

private final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let box: Recorder

    init(box: Recorder) { self.box = box }

    private func update(_ body: (inout TestTCPClient.Observed) -> Void) {
        box.observed.withLock { body(&$0) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        update { $0.received += bytes }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer finished sending; tests only need to know that, so close our side too.
            update { $0.inputClosed = true }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        update { $0.closed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let isReset = (error as? IOError)?.errnoCode == ECONNRESET
        update {
            $0.error = "\(error)"
            if isReset { $0.reset = true }
        }
        context.close(promise: nil)
    }
}
