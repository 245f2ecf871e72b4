import NIOCore

/// One client connection of the RESP front end, on its event loop.
///
/// Commands are taken from the request reader one at a time and answered in order. A command
/// that L1 answers is answered right there (with `answersInPlace`, GET, MGET and EXISTS from
/// the read buffer itself, `RESPCommandExecutor.executeInPlace`), so a pipelined batch of hits
/// costs one read and one write. A command that needs L2 or a write is handed to the server's task group; until
/// its reply is written, no later command is parsed and the socket is not read, so a client
/// cannot queue more than one read buffer of commands behind a slow one (the pipelining bound),
/// and replies never overtake each other.
final class RESPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reader: RESPRequestReader
    private let executor: RESPCommandExecutor
    /// Hands awaited work to the server; false when the server is shutting down.
    private let submit: @Sendable (RESPJob) -> Bool
    private var state: RESPConnectionState
    private var isAwaiting = false
    private var isClosing = false
    private var isActive = true
    private var heldRead = false
    private var hasUnflushedWrites = false
    /// Whether GET, MGET and EXISTS are answered from the read buffer (`executeInPlace`).
    private let answersInPlace: Bool
    /// The reply buffer of the last `answerBuffered` that wrote nothing into it, kept for the
    /// next: an awaited command (a SET) writes its reply later, and a fresh buffer on every
    /// read and every resume was 4 of a SET's allocations.
    private var spareReplyBuffer: ByteBuffer?

    init(
        reader: RESPRequestReader, executor: RESPCommandExecutor, state: RESPConnectionState, answersInPlace: Bool = true,
        submit: @escaping @Sendable (RESPJob) -> Bool
    ) {
        self.reader = reader
        self.executor = executor
        self.state = state
        self.answersInPlace = answersInPlace
        self.submit = submit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosing else { return }
        do {
            try unwrapInboundIn(data).withUnsafeReadableBytes { try reader.feed($0) }
        } catch {
            failProtocol(context: context, error)
            return
        }
        if !isAwaiting { answerBuffered(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        context.fireChannelInactive()
    }

    /// Holds the socket's reads while a command is awaited and more of the client's bytes are
    /// already buffered (see the type's comment): at most one read's worth waits behind the
    /// awaited command. A client that waits for each reply, as most do, has nothing buffered,
    /// so its socket stays registered for reads; holding it would cost two `epoll_ctl` calls
    /// per awaited command (measured: 2.0 per SET), to unregister and register again.
    func read(context: ChannelHandlerContext) {
        if isAwaiting, reader.bufferedByteCount > 0 {
            heldRead = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Answers buffered commands until one must be awaited or none is left.
    private func answerBuffered(context: ChannelHandlerContext) {
        var writer = RESPReplyWriter(buffer: takeReplyBuffer(context: context))
        defer {
            if writer.buffer.readableBytes > 0 {
                context.write(wrapOutboundOut(writer.buffer), promise: nil)
                hasUnflushedWrites = true
            } else {
                spareReplyBuffer = writer.buffer
            }
        }
        while !isAwaiting, !isClosing {
            let outcome: RESPCommandExecutor.Outcome
            // With `answersInPlace`, reads L1 answers (GET, MGET, EXISTS) are answered from the
            // read buffer; anything else, and anything in-place parsing leaves alone, goes
            // through `next()`.
            let state = self.state
            if answersInPlace, let answered = reader.nextInPlace({ executor.executeInPlace($0, state: state, into: &writer) }) {
                outcome = answered
            } else {
                let arguments: [[UInt8]]?
                do {
                    arguments = try reader.next()
                } catch {
                    context.write(wrapOutboundOut(writer.buffer), promise: nil)
                    writer.buffer.clear()
                    failProtocol(context: context, error)
                    return
                }
                guard let arguments else { return }
                if arguments.isEmpty { continue }
                outcome = executor.execute(arguments, state: &self.state, into: &writer)
            }
            switch outcome {
            case .replied:
                continue
            case .close:
                isClosing = true
                context.write(wrapOutboundOut(writer.buffer), promise: nil)
                writer.buffer.clear()
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            case .later(let work):
                isAwaiting = true
                startAwaiting(work, context: context)
            }
        }
    }

    /// An empty reply buffer: the spare one when there is one, else a new one.
    private func takeReplyBuffer(context: ChannelHandlerContext) -> ByteBuffer {
        guard var buffer = spareReplyBuffer else { return context.channel.allocator.buffer(capacity: 256) }
        spareReplyBuffer = nil
        buffer.clear()
        return buffer
    }

    private func startAwaiting(_ work: @escaping @Sendable () async -> ByteBuffer, context: ChannelHandlerContext) {
        let connection = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let accepted = submit(RESPJob {
            let reply = await work()
            connection.eventLoop.execute {
                connection.value.handler.resume(with: reply, context: connection.value.context)
            }
        })
        if !accepted {
            var writer = RESPReplyWriter(buffer: context.channel.allocator.buffer(capacity: 64))
            writer.error("ERR the node is shutting down")
            isClosing = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(writer.buffer)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func resume(with reply: ByteBuffer, context: ChannelHandlerContext) {
        isAwaiting = false
        guard isActive, !isClosing else { return }
        context.write(wrapOutboundOut(reply), promise: nil)
        hasUnflushedWrites = true
        answerBuffered(context: context)
        flushIfNeeded(context: context)
        if heldRead, !isAwaiting {
            heldRead = false
            context.read()
        }
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        if hasUnflushedWrites {
            hasUnflushedWrites = false
            context.flush()
        }
    }

    /// Redis answers a request it cannot parse with one error and closes the connection.
    private func failProtocol(context: ChannelHandlerContext, _ error: any Error) {
        isClosing = true
        var writer = RESPReplyWriter(buffer: context.channel.allocator.buffer(capacity: 128))
        writer.error("ERR \(error)")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(writer.buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
