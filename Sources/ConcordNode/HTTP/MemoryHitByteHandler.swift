import NIOCore

/// Answers plain GETs of keys L1 holds fresh (and `GET /health`) from the request's bytes, in
/// front of the HTTP decoder: a hit costs no decoding into request parts, no header
/// conversions and no trip through the handlers behind the decoder, and its answer is written
/// as one buffer. Everything else goes on to the decoder byte for byte, and from there to
/// `MemoryHitHandler` and the router as before.
///
/// Rules it keeps:
/// - It answers only a request `HTTPHeadScanner` frames as a plain GET (HTTP/1.1, no body, no
///   `Expect`, no `Connection` but `keep-alive`), of a `/v1/cache/` key without `%`, `?` or `#`
///   that `HybridCache.readsKeyBytes` takes, with the read token when reads are protected, and
///   only when L1 holds the key servable; it declines everything else, which the decoder then
///   reads (so every error keeps the router's shape). The answer is the router's, byte for
///   byte: same status line, headers in the same order, same body; counted in the same metrics.
/// - Bytes reach the decoder only at request boundaries: each request it declines is handed on
///   whole (head, then as much of its body as has arrived, the rest as it comes). Bytes it
///   cannot frame strictly (chunked bodies, folded or malformed heads, heads past
///   `maxHeadBytes`) go to the decoder with everything after them, for the rest of the
///   connection; so does everything after a request handed on that may close the connection
///   (HTTP/1.0, or a `Connection` field other than `keep-alive`).
/// - Answers stay in request order: while a request handed on is unanswered
///   (`DirectHitConnection.requestsAtRouter`), later ones are handed on too. It answers only
///   while the channel is writable, as `MemoryHitHandler` does.
/// - Idle connections close after `idleTimeout` (no bytes read and no answer written for that
///   long, unless the router is still answering a request read whole), as Hummingbird's idle
///   timer does for the requests it sees; the channel is built without that timer. After its
///   answers it fires `DirectAnswersWritten`, so `RequestDeadlineHandler` restarts the next
///   request's deadline as after any answer. Graceful shutdown is unchanged: no request it
///   answers is ever in progress between two events.
final class MemoryHitByteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The longest head framed here; longer ones go to the decoder (whose own limits are larger).
    static let maxHeadBytes = 16 * 1024

    private let responder: MemoryHitResponder
    private let connection: DirectHitConnection
    private let idleTimeout: TimeAmount?
    /// Bytes of a head that has not arrived whole yet (nothing of it handed on).
    private var partial: ByteBuffer?
    /// Body bytes of a request handed on that have not arrived yet: they go to the decoder as they come.
    private var bodyBytesToPass = 0
    /// Set once bytes could not be framed: everything goes to the decoder from then on.
    private var passesEverything = false
    private var needsFlush = false
    private var date = HTTPDate()
    /// When bytes last arrived, on the event loop's clock (the one its timers run on).
    private var lastRead: NIODeadline = .distantPast
    private var idleTimer: Scheduled<Void>?

    init(responder: MemoryHitResponder, connection: DirectHitConnection, idleTimeout: TimeAmount?) {
        self.responder = responder
        self.connection = connection
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastRead = context.eventLoop.now
        if let idleTimeout { scheduleIdleCheck(at: lastRead + idleTimeout, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        partial = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if idleTimeout != nil { lastRead = context.eventLoop.now }
        if passesEverything {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        if var held = partial {
            partial = nil
            held.writeBuffer(&buffer)
            buffer = held
        }
        var output: ByteBuffer?
        var answered = 0
        let start = ContinuousClock.now
        while buffer.readableBytes > 0 {
            if bodyBytesToPass > 0 || passesEverything {
                // After a request that may close the connection, the rest goes on as it comes.
                guard bodyBytesToPass > 0 else {
                    handOn(buffer, output: &output, answered: &answered, context: context)
                    break
                }
                let count = min(bodyBytesToPass, buffer.readableBytes)
                bodyBytesToPass -= count
                handOn(buffer.readSlice(length: count)!, output: &output, answered: &answered, context: context)
                continue
            }
            let scan = buffer.withUnsafeReadableBytes { HTTPHeadScanner.scan($0, maxHeadBytes: Self.maxHeadBytes) }
            switch scan {
            case .incomplete:
                partial = buffer
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            case .unframeable:
                passesEverything = true
                handOn(buffer, output: &output, answered: &answered, context: context)
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            case .request(let head):
                if head.isPlainGet, connection.requestsAtRouter == 0, context.channel.isWritable,
                   let kind = answer(head, in: buffer, into: &output, context: context)
                {
                    buffer.moveReaderIndex(forwardBy: head.length)
                    answered += 1
                    switch kind {
                    case .hit: responder.recordHit(duration: ContinuousClock.now - start)
                    case .health: responder.recordHealth(duration: ContinuousClock.now - start)
                    }
                    continue
                }
                let body = min(head.bodyLength, buffer.readableBytes - head.length)
                bodyBytesToPass = head.bodyLength - body
                // The server may close the connection after answering this one: whatever follows
                // meets the decoder, as it did before this handler.
                if !head.keepsAlive { passesEverything = true }
                handOn(buffer.readSlice(length: head.length + body)!, output: &output, answered: &answered, context: context)
            }
        }
        writeAnswers(&output, answered: &answered, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Writes the answers so far, then hands `bytes` to the decoder: answers stay in order with
    /// whatever the handlers behind write for those bytes.
    private func handOn(_ bytes: ByteBuffer, output: inout ByteBuffer?, answered: inout Int, context: ChannelHandlerContext) {
        writeAnswers(&output, answered: &answered, context: context)
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    private func writeAnswers(_ output: inout ByteBuffer?, answered: inout Int, context: ChannelHandlerContext) {
        guard let buffer = output else { return }
        output = nil
        guard buffer.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
        if answered > 0 {
            answered = 0
            context.fireUserInboundEventTriggered(DirectAnswersWritten())
        }
    }

    /// What `answer` wrote.
    private enum Answer {
        case hit
        case health
    }

    /// Appends the answer to a plain GET when this handler may give it; nil when the request
    /// is to be handed on.
    private func answer(_ head: HTTPHeadScanner.Head, in buffer: ByteBuffer, into output: inout ByteBuffer?, context: ChannelHandlerContext) -> Answer? {
        buffer.withUnsafeReadableBytes { bytes -> Answer? in
            let target = UnsafeRawBufferPointer(rebasing: bytes[head.target])
            if Self.matches(target, "/health") {
                // Open to all, as on the router.
                var out = output ?? context.channel.allocator.buffer(capacity: 256)
                responder.writeHealthAnswer(date: date.now(), into: &out)
                output = out
                return .health
            }
            guard Self.hasPrefix(target, "/v1/cache/") else { return nil }
            let key = UnsafeRawBufferPointer(rebasing: target[(target.startIndex + 10)...])
            // Escapes, a query or a fragment are the decoder's and the router's to interpret.
            for byte in key where byte == UInt8(ascii: "%") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") {
                return nil
            }
            if responder.tokens.isProtected(.read) {
                // The same parse as HummingbirdAuth's `bearer`, so this path accepts nothing the router would refuse.
                guard let authorization = head.authorization else { return nil }
                let value = UnsafeRawBufferPointer(rebasing: bytes[authorization])
                guard Self.hasPrefix(value, "Bearer "),
                      responder.tokens.scopes(of: Array(value[(value.startIndex + 7)...])).contains(.read)
                else { return nil }
            }
            var out = output ?? context.channel.allocator.buffer(capacity: 512)
            let written = responder.writeAnswer(keyBytes: key, date: date.now(), into: &out)
            output = out
            return written ? .hit : nil
        }
    }

    private func scheduleIdleCheck(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.handler.idleCheck(context: loopBound.value.context)
        }
    }

    /// Closes the connection when nothing was read or answered for the idle timeout; a request
    /// read whole and still at the router keeps it open.
    private func idleCheck(context: ChannelHandlerContext) {
        idleTimer = nil
        guard let idleTimeout, context.channel.isActive else { return }
        let now = context.eventLoop.now
        if connection.requestsAtRouter > 0, !connection.isReadingRouterRequest {
            scheduleIdleCheck(at: now + idleTimeout, context: context)
            return
        }
        let due = max(lastRead, connection.lastRouterAnswer) + idleTimeout
        if now >= due {
            context.close(promise: nil)
        } else {
            scheduleIdleCheck(at: due, context: context)
        }
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && hasPrefix(bytes, text)
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count >= text.utf8CodeUnitCount else { return false }
        for offset in 0..<text.utf8CodeUnitCount where bytes[bytes.startIndex + offset] != text.utf8Start[offset] { return false }
        return true
    }
}
