import NIOCore

/// What `MemoryHitByteHandler` (in front of the HTTP decoder) must know about one connection's
/// requests behind the decoder, kept by `MemoryHitHandler`, which sees them: both handlers run
/// on the connection's event loop, so this is never shared across threads.
final class DirectHitConnection {
    /// Requests handed to the router whose answer's end has not been written yet. Bytes are
    /// answered in front of the decoder only while this is zero, so answers stay in order.
    var requestsAtRouter = 0
    /// Whether a request handed to the router is still being read (its end has not arrived).
    var isReadingRouterRequest = false
    /// When the router last finished an answer: the idle timer counts from it as from a read.
    var lastRouterAnswer: NIODeadline = .distantPast

    init() {}
}
