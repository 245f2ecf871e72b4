import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 channel with `MemoryHitHandler` added right behind its
/// connection-state handler, where `additionalChannelHandlers` cannot put it (they go in front
/// of that handler, which then would not see the hits answered here).
struct MemoryHitHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let responder: MemoryHitResponder

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let responder = self.responder
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(makeHTTP1MemoryHitHandler(responder: responder), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
