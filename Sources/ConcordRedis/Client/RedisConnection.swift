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

    // MARK: Sending

    /// Sends one command and returns its raw reply (a server error is `.error`, not thrown).
    func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        let deadline = NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: 1, deadline: deadline) { RESPEncoder.encode(arguments, into: &$0) }
        }
    }

    func send(_ command: RedisArgument, _ arguments: [RedisArgument]) async throws -> RESPValue {
        let deadline = NIODeadline.now() + commandTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, replies: 1, deadline: deadline) { RESPEncoder.encode(command, arguments, into: &$0) }
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
        encode: (inout ByteBuffer) -> Void
    ) {
        let command = PendingCommand(continuation: continuation, deadline: deadline, replies: replies, skippedReplies: skippedReplies)
        switch queue.enqueue(command, allocator: channel.allocator, encode: encode) {
        case .queued:
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
                    let handler = try RedisChannelHandler(queue: queue, onMessage: onMessage, logger: logger)
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
        do {
            handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw RedisError(.connectionClosed, "connection closed while connecting", underlying: error)
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
final class RedisCommandQueue: Sendable {
    enum EnqueueResult {
        case queued
        case scheduleDrain
        case closed(RedisError)
    }

    private struct State {
        var buffer: ByteBuffer?
        var commands: [PendingCommand] = []
        var drainScheduled = false
        var closeError: RedisError?
    }

    private let state = Mutex(State())

    var closeError: RedisError? { state.withLock { $0.closeError } }

    @inline(__always)
    func enqueue(
        _ command: PendingCommand,
        allocator: ByteBufferAllocator,
        encode: (inout ByteBuffer) -> Void
    ) -> EnqueueResult {
        state.withLock { state in
            if let error = state.closeError { return .closed(error) }
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

    /// Takes the queued bytes and moves the queued commands into `commands` (which must be empty).
    func take(into commands: inout [PendingCommand]) -> ByteBuffer? {
        state.withLock { state in
            state.drainScheduled = false
            swap(&state.commands, &commands)
            defer { state.buffer = nil }
            return state.buffer
        }
    }

    /// Refuses further commands; returns those not yet taken. The first close error wins.
    func close(_ error: RedisError) -> [PendingCommand] {
        state.withLock { state in
            if state.closeError == nil { state.closeError = error }
            state.buffer = nil
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
