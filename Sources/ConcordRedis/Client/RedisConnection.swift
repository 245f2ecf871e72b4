#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One TCP connection to Redis that pipelines every concurrent caller, with replies matched FIFO.
///
/// Callers never hop to an actor or to the event loop to submit: a command is encoded straight
/// into a shared buffer under a Mutex, and the first caller of a batch schedules a single drain on
/// the event loop, which writes and flushes everything queued so far in one syscall. Under load,
/// many callers share each write; alone, a caller pays one `execute` and one write, or only the
/// write when it already runs on the connection's loop and nothing is in flight.
///
/// A command without a reply after `commandTimeout` poisons the connection: later replies could
/// no longer be matched to callers, so every pending caller fails and the channel closes. The
/// same happens on a protocol error or when the server closes the socket.
final class RedisConnection: Sendable {
    let channel: any Channel
    let id: Int
    private let queue: RedisCommandQueue
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let commandTimeout: TimeAmount
    /// Built once so that scheduling a drain allocates no closure context.
    private let drainTask: @Sendable () -> Void

    private init(channel: any Channel, id: Int, queue: RedisCommandQueue, handler: NIOLoopBound<RedisChannelHandler>, commandTimeout: TimeAmount) {
        self.channel = channel
        self.id = id
        self.queue = queue
        self.handler = handler
        self.commandTimeout = commandTimeout
        self.drainTask = { handler.value.drain() }
    }

    var eventLoop: any EventLoop { channel.eventLoop }
    /// Commands written and not answered yet; read it on the connection's event loop only.
    var inFlightCountOnLoop: Int { handler.value.inFlightCount }
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
    /// Why the connection stopped accepting commands, once it has.
    var closeError: RedisError? { queue.closeError }
    /// Commands their callers wrote to the socket themselves on this connection.
    var directWriteCount: Int { queue.directWriteCount.load(ordering: .relaxed) }

    // MARK: Sending

    /// Sends one command and returns its raw reply (a server error is `.error`, not thrown).
    func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        let deadline = NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: 1, deadline: deadline, mayWriteDirectly: true) { RESPEncoder.encode(arguments, into: &$0) }
        }
    }

    func send(_ command: RedisArgument, _ arguments: [RedisArgument]) async throws -> RESPValue {
        let deadline = NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: 1, deadline: deadline, mayWriteDirectly: true) { RESPEncoder.encode(command, arguments, into: &$0) }
        }
    }

    /// Sends `ASKING` and the command back to back, so no other caller's command can come
    /// between them and take the one-shot ASKING flag; resolves with the command's reply.
    func sendAsking(_ arguments: [RedisArgument]) async throws -> RESPValue {
        let deadline = NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: 1, deadline: deadline, skipping: 1) { buffer in
                RESPEncoder.encode(["ASKING"], into: &buffer)
                RESPEncoder.encode(arguments, into: &buffer)
            }
        }
    }

    /// Sends a command that Redis answers with `replies` separate replies (SUBSCRIBE a b c), resolved with the
    /// last one, or with the first error.
    func send(_ arguments: [RedisArgument], replies: Int, deadline: NIODeadline? = nil) async throws -> RESPValue {
        let deadline = deadline ?? NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: replies, deadline: deadline) { RESPEncoder.encode(arguments, into: &$0) }
        }
    }

    /// Queues a command without waiting; for callers that must order the submission with their
    /// own state under their own lock (the subscriber). Redis's reply(ies) resume `continuation`.
    func submit(_ arguments: [RedisArgument], replies: Int, continuation: UnsafeContinuation<RESPValue, any Error>) {
        submit(continuation, replies: replies, deadline: NIODeadline.now() + commandTimeout) {
            RESPEncoder.encode(arguments, into: &$0)
        }
    }

    @inline(__always)
    private func submit(
        _ continuation: UnsafeContinuation<RESPValue, any Error>,
        replies: Int,
        deadline: NIODeadline,
        skipping skippedReplies: Int = 0,
        mayWriteDirectly: Bool = false,
        encode: (inout ByteBuffer) -> Void
    ) {
        let command = PendingCommand(continuation: continuation, deadline: deadline, replies: replies, skippedReplies: skippedReplies)
        // Off the loop, an idle connection takes the command from the caller's own thread: a drain
        // scheduled on the loop would cost a wake-up of the loop before the command even leaves.
        let direct = mayWriteDirectly && !eventLoop.inEventLoop
        switch queue.enqueue(command, allocator: channel.allocator, writeDirectly: direct, encode: encode) {
        case .queued, .written:
            break
        case .scheduleDrain:
            // On the connection's own loop with nothing in flight, the command goes out at once:
            // a drain scheduled from here would run only after every task already queued on the
            // loop, and with group commit those are the previous batch's writers answering their
            // clients while Redis waits idle for the next batch. A busy connection still batches.
            if eventLoop.inEventLoop, handler.value.isIdle {
                handler.value.drain()
            } else {
                eventLoop.execute(drainTask)
            }
        case .closed(let error):
            continuation.resume(throwing: RedisError(.notConnected, "connection is closed", underlying: error))
        }
    }

    // MARK: Closing

    /// Fails every pending caller with `error` and closes the channel.
    func close(_ error: RedisError) {
        eventLoop.execute {
            self.handler.value.failAll(error)
            self.channel.close(promise: nil)
        }
    }

    // MARK: Connecting

    private static let ids = Atomic<Int>(0)

    /// Connects (and, with `tls`, finishes the TLS handshake), then authenticates, selects the
    /// database and names the client, all within `connectTimeout`.
    static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let id = ids.add(1, ordering: .relaxed).newValue
        let connectTimeout = TimeAmount(configuration.connectTimeout)
        let deadline = NIODeadline.now() + connectTimeout
        let queue = RedisCommandQueue()
        let logger = logger.with(connectionID: id)
        let endpoint = configuration.endpointDescription
        let tlsContext = try configuration.tls.map { tls throws(RedisError) in try RedisTLSContext.makeContext(tls) }
        let handshakePromise = tlsContext == nil ? nil : eventLoop.makePromise(of: Void.self)

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext, let tls = configuration.tls, let handshakePromise {
                        let tlsHandler = try RedisTLSContext.makeHandler(tls, context: tlsContext, host: configuration.host)
                        try channel.pipeline.syncOperations.addHandler(tlsHandler)
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshakePromise))
                    }
                    let handler = try RedisChannelHandler(
                        queue: queue, onMessage: onMessage, logger: logger, commandTimeout: TimeAmount(configuration.commandTimeout))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }

        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            handshakePromise?.fail(error)
            if let error = error as? RedisError { throw error }
            if case .connectTimeout = error as? ChannelError {
                throw RedisError(
                    .timeout, "connect to \(endpoint) timed out after \(configuration.connectTimeout)",
                    underlying: error)
            }
            throw RedisError(.connectionRefused, "cannot connect to \(endpoint)", underlying: error)
        }

        if let handshakePromise {
            try await waitForTLSHandshake(handshakePromise, channel: channel, deadline: deadline, configuration: configuration)
        }

        let handler: NIOLoopBound<RedisChannelHandler>
        // Callers off the loop may write commands themselves, through a copy of the socket's
        // descriptor; not over TLS (the bytes must go through the TLS handler) and not on a
        // subscriber's connection (pushes arrive there without a command).
        let writesDirectly = tlsContext == nil && onMessage == nil && configuration.directWrites
        do {
            handler = try await channel.eventLoop.submit {
                if writesDirectly, channel.isActive,
                   let copy = ConnectedSocketCopy.duplicate(local: channel.localAddress, remote: channel.remoteAddress)
                {
                    queue.adoptDirectSocket(copy)
                }
                return NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            let closed = RedisError(.connectionClosed, "connection closed while connecting", underlying: error)
            // Also closes the descriptor's copy, if one was taken, which would keep the socket open.
            _ = queue.close(closed)
            channel.close(promise: nil)
            throw closed
        }

        let connection = RedisConnection(
            channel: channel, id: id, queue: queue, handler: handler, commandTimeout: TimeAmount(configuration.commandTimeout))
        do {
            try await connection.handshake(configuration, deadline: deadline)
        } catch {
            connection.close(RedisError(.connectionClosed, "handshake failed", underlying: error))
            // With TLS 1.3 the server checks the client's certificate after the client finished
            // its side of the handshake, so a refused certificate surfaces on the first reply.
            if configuration.tls != nil, let tlsError = RedisTLSContext.classify(error, endpoint: endpoint) { throw tlsError }
            throw error
        }
        logger.debug("connected", metadata: ["concord.redis.host": "\(endpoint)", "concord.redis.tls": "\(configuration.tls != nil)"])
        return connection
    }

    /// Waits for the TLS handshake until `deadline`; a handshake that does not finish in time
    /// (a server that accepts TCP but never answers TLS) is `.tlsHandshakeTimeout`.
    private static func waitForTLSHandshake(
        _ promise: EventLoopPromise<Void>,
        channel: any Channel,
        deadline: NIODeadline,
        configuration: RedisConfiguration
    ) async throws(RedisError) {
        let endpoint = configuration.endpointDescription
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(RedisError(.tlsHandshakeTimeout, "TLS handshake with \(endpoint) did not finish within \(configuration.connectTimeout)"))
        }
        do {
            try await promise.futureResult.get()
            timer.cancel()
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            if let error = error as? RedisError { throw error }
            throw RedisTLSContext.classify(error, endpoint: endpoint)
                ?? RedisError(.tlsHandshakeFailed, "TLS handshake with \(endpoint) failed: the connection closed", underlying: error)
        }
    }

    /// AUTH, SELECT and CLIENT SETNAME; a bare PING when none applies, so "connected" always means
    /// the server answered (a SIGSTOPped server still accepts TCP connections).
    private func handshake(_ configuration: RedisConfiguration, deadline: NIODeadline) async throws(RedisError) {
        if let password = configuration.password {
            var auth: [RedisArgument] = ["AUTH"]
            if let username = configuration.username { auth.append(.init(username)) }
            auth.append(.init(password))
            let reply = try await handshakeCommand(auth, deadline: deadline)
            if case .error(let message) = reply {
                throw RedisError(.authenticationFailed, message)
            }
        }
        var sentAny = configuration.password != nil
        if configuration.database != 0 {
            try await expectOK(try await handshakeCommand(["SELECT", .init(configuration.database)], deadline: deadline))
            sentAny = true
        }
        if let name = configuration.clientName {
            try await expectOK(try await handshakeCommand(["CLIENT", "SETNAME", .init(name)], deadline: deadline))
            sentAny = true
        }
        if !sentAny {
            try await expectOK(try await handshakeCommand(["PING"], deadline: deadline))
        }
    }

    private func expectOK(_ reply: RESPValue) async throws(RedisError) {
        if case .error(let message) = reply {
            if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                throw RedisError(.authenticationFailed, message)
            }
            throw RedisError(.server, message)
        }
    }

    private func handshakeCommand(_ arguments: [RedisArgument], deadline: NIODeadline) async throws(RedisError) -> RESPValue {
        do {
            return try await send(arguments, replies: 1, deadline: deadline)
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionClosed, "handshake failed", underlying: error)
        }
    }
}

/// A caller waiting for its reply(ies).
struct PendingCommand: Sendable {
    let continuation: UnsafeContinuation<RESPValue, any Error>
    let deadline: NIODeadline
    var replies: Int
    /// Replies to discard, whatever they are, before counting `replies` (the answer to a
    /// preceding ASKING sent in the same submission).
    var skippedReplies = 0
}

/// Commands submitted from any thread and not yet taken by the event loop.
///
/// A command may also be written here by its caller (`writeDirectly`), through a copy of the
/// socket's descriptor, when nothing else is outstanding on the connection: no command written
/// and unanswered, none queued, no drain scheduled. It then stays first in `commands`, with no
/// bytes in the buffer, until the loop takes it, so replies still match callers in order, and
/// anything submitted after it is written after it. Such a command is timed out by the loop's
/// deadline timer, which it cannot arm itself: commands are written directly only while the
/// timer is armed, and the timer stays armed while they are.
final class RedisCommandQueue: Sendable {
    enum EnqueueResult {
        case queued
        case scheduleDrain
        /// Written to the socket by the caller; the loop takes it when its reply comes.
        case written
        case closed(RedisError)
    }

    /// What the deadline timer does when it fires.
    enum DeadlineCheck {
        /// Check this deadline: the oldest command not yet taken by the loop.
        case oldest(NIODeadline)
        /// Nothing outstanding, but commands were written directly since the last check: fire
        /// again one command timeout from now.
        case stayArmed
        /// Nothing outstanding and no direct writes: stop; the next command goes through the loop.
        case disarm
    }

    private struct State {
        var buffer: ByteBuffer?
        var commands: [PendingCommand] = []
        var drainScheduled = false
        var closeError: RedisError?
        /// A copy of the socket's descriptor for direct writes; nil when there is none or once closed.
        var directSocket: Int32?
        /// When the loop's deadline timer fires; nil while it is not armed.
        var deadlineTimerAt: NIODeadline?
        var directWritesSinceCheck = 0
        /// Whether the first of `commands` was written by its caller.
        var firstIsWritten = false
    }

    private let state = Mutex(State())
    /// Commands enqueued and not yet answered (or failed); read without the lock by callers
    /// deciding whether they may write directly.
    private let outstanding = Atomic<Int>(0)
    /// Commands written directly so far (tests read it to know which path a command took).
    let directWriteCount = Atomic<Int>(0)

    var closeError: RedisError? { state.withLock { $0.closeError } }

    deinit {
        state.withLock { state in
            if let socket = state.directSocket { Glibc.close(socket) }
            state.directSocket = nil
        }
    }

    /// Takes ownership of a copy of the socket's descriptor, closed with the queue.
    func adoptDirectSocket(_ socket: Int32) {
        state.withLock { state in
            if state.closeError != nil || state.directSocket != nil {
                Glibc.close(socket)
                return
            }
            state.directSocket = socket
        }
    }

    @inline(__always)
    func enqueue(
        _ command: PendingCommand,
        allocator: ByteBufferAllocator,
        writeDirectly: Bool = false,
        encode: (inout ByteBuffer) -> Void
    ) -> EnqueueResult {
        state.withLock { state in
            if let error = state.closeError { return .closed(error) }
            outstanding.add(1, ordering: .relaxed)
            // The armed timer must fire no later than this command's deadline, since it is what
            // will find the command if its reply never comes.
            if writeDirectly, let socket = state.directSocket, let timerAt = state.deadlineTimerAt, timerAt <= command.deadline,
               !state.drainScheduled, state.commands.isEmpty, outstanding.load(ordering: .acquiring) == 1
            {
                var bytes = allocator.buffer(capacity: 512)
                encode(&bytes)
                state.commands.append(command)
                state.firstIsWritten = true
                state.directWritesSinceCheck += 1
                directWriteCount.add(1, ordering: .relaxed)
                // Non-blocking (the loop made the socket so), so this never waits.
                let sent = bytes.withUnsafeReadableBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if sent == bytes.readableBytes { return .written }
                // A full socket buffer or a broken link: the loop writes the rest, and meets the
                // error if there is one, exactly as for a command it wrote itself.
                if sent > 0 { bytes.moveReaderIndex(forwardBy: sent) }
                state.buffer = bytes
                state.drainScheduled = true
                return .scheduleDrain
            }
            if state.buffer == nil {
                state.buffer = allocator.buffer(capacity: 512)
            }
            encode(&state.buffer!)
            state.commands.append(command)
            if state.drainScheduled { return .queued }
            state.drainScheduled = true
            return .scheduleDrain
        }
    }

    /// A command left the loop's in-flight list with its reply.
    @inline(__always)
    func answered() {
        outstanding.subtract(1, ordering: .releasing)
    }

    /// Takes the queued bytes and moves the queued commands into `commands` (which must be empty).
    func take(into commands: inout [PendingCommand]) -> ByteBuffer? {
        state.withLock { state in
            state.drainScheduled = false
            state.firstIsWritten = false
            swap(&state.commands, &commands)
            defer { state.buffer = nil }
            return state.buffer
        }
    }

    /// Whether a command its caller wrote waits to be taken: a reply that comes while nothing is
    /// in flight on the loop is that command's.
    var hasWrittenCommand: Bool { state.withLock { $0.firstIsWritten } }

    /// The loop armed its deadline timer to fire at `deadline`.
    func deadlineTimerArmed(at deadline: NIODeadline) {
        state.withLock { $0.deadlineTimerAt = deadline }
    }

    /// The loop's deadline timer fired with nothing in flight on the loop.
    func deadlineCheck() -> DeadlineCheck {
        state.withLock { state in
            if let oldest = state.commands.first { return .oldest(oldest.deadline) }
            if state.directWritesSinceCheck > 0 {
                state.directWritesSinceCheck = 0
                return .stayArmed
            }
            state.deadlineTimerAt = nil
            return .disarm
        }
    }

    /// Refuses further commands; returns those not yet taken. The first close error wins.
    func close(_ error: RedisError) -> [PendingCommand] {
        state.withLock { state in
            if state.closeError == nil { state.closeError = error }
            state.buffer = nil
            if let socket = state.directSocket { Glibc.close(socket) }
            state.directSocket = nil
            state.deadlineTimerAt = nil
            state.firstIsWritten = false
            defer { state.commands = [] }
            return state.commands
        }
    }
}

extension Logger {
    func with(connectionID: Int) -> Logger {
        var logger = self
        logger[metadataKey: "concord.redis.connection"] = "\(connectionID)"
        return logger
    }
}
