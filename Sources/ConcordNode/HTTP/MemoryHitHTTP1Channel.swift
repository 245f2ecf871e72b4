import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's HTTP/1.1 channel with `MemoryHitHandler` added right behind its
/// connection-state handler, where `additionalChannelHandlers` cannot put it (they go in front
/// of that handler, which then would not see the hits answered here), and
/// `MemoryHitByteHandler` in front of the HTTP decoder (behind TLS, when there is TLS).
///
/// `base` must be built without an idle timeout: `MemoryHitByteHandler` keeps `idleTimeout`
/// instead, since Hummingbird's timer never sees the requests answered in front of the decoder.
struct MemoryHitHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let responder: MemoryHitResponder
    let idleTimeout: TimeAmount?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let responder = self.responder
        let idleTimeout = self.idleTimeout
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let connection = DirectHitConnection()
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(makeHTTP1MemoryHitHandler(responder: responder, connection: connection), position: .after(state))
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            try pipeline.addHandler(
                MemoryHitByteHandler(responder: responder, connection: connection, idleTimeout: idleTimeout), position: .before(encoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
