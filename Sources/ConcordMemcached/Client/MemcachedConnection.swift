import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One TCP connection to one memcached server that pipelines every concurrent caller; responses
/// are matched FIFO, which the text protocol guarantees.
///
/// A request is encoded into a shared buffer under a Mutex and the first caller of a batch
/// schedules one drain on the event loop, so concurrent callers share writes. A request without
/// a response after `requestTimeout` poisons the connection (later responses could no longer be
/// matched): every pending caller fails with `.timeout` and the channel closes. The same happens
/// on a protocol error or when the server closes the socket.
final class MemcachedConnection: Sendable {
    let channel: any Channel
    let id: Int
    private let queue: MemcachedRequestQueue
    private let handler: NIOLoopBound<MemcachedChannelHandler>
    private let requestTimeout: TimeAmount
    private let drainTask: @Sendable () -> Void

    private init(channel: any Channel, id: Int, queue: MemcachedRequestQueue, handler: NIOLoopBound<MemcachedChannelHandler>, requestTimeout: TimeAmount) {
        self.channel = channel
        self.id = id
        self.queue = queue
        self.handler = handler
        self.requestTimeout = requestTimeout
        self.drainTask = { handler.value.drain() }
    }

    var eventLoop: any EventLoop { channel.eventLoop }
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
    var closeError: MemcachedError? { queue.closeError }

    /// Sends one command; resolves with its one response.
    func send(_ command: MetaCommand, deadline: NIODeadline? = nil) async throws -> MetaResponse {
        let deadline = deadline ?? NIODeadline.now() + requestTimeout
        let responses = try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, untilNoop: false, deadline: deadline) { command.encode(into: &$0) }
        }
        guard let response = responses.first else {
            throw MemcachedError(.protocolError, "no response for \(command.verb.rawValue)")
        }
        return response
    }

    /// Sends `commands` followed by `mn` and resolves with every response before `MN`. Commands
    /// in quiet mode (`q`) answer only when they have something to say (a hit, a failure), so a
    /// batch of quiet gets costs one round trip and returns only the hits.
    func sendBatch(_ commands: [MetaCommand], deadline: NIODeadline? = nil) async throws -> [MetaResponse] {
        let deadline = deadline ?? NIODeadline.now() + requestTimeout
        return try await withUnsafeThrowingContinuation { continuation in
            submit(continuation, untilNoop: true, deadline: deadline) { buffer in
                for command in commands { command.encode(into: &buffer) }
                MetaCommand(.noop).encode(into: &buffer)
            }
        }
    }

    private func submit(
        _ continuation: UnsafeContinuation<[MetaResponse], any Error>,
        untilNoop: Bool,
        deadline: NIODeadline,
        encode: (inout ByteBuffer) -> Void
    ) {
        let request = PendingMetaRequest(continuation: continuation, deadline: deadline, untilNoop: untilNoop)
        switch queue.enqueue(request, allocator: channel.allocator, encode: encode) {
        case .queued:
            break
        case .scheduleDrain:
            eventLoop.execute(drainTask)
        case .closed(let error):
            continuation.resume(throwing: MemcachedError(.notConnected, "connection is closed", underlying: error))
        }
    }

    /// Fails every pending caller with `error` and closes the channel.
    func close(_ error: MemcachedError) {
        eventLoop.execute {
            self.handler.value.failAll(error)
            self.channel.close(promise: nil)
        }
    }

    private static let ids = Atomic<Int>(0)

    /// Connects and checks that the server answers (`mn` → `MN`) within `connectTimeout`: a
    /// SIGSTOPped server still accepts TCP connections, so "connected" must mean "answered".
    static func connect(
        host: String,
        port: Int,
        configuration: MemcachedConfiguration,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws(MemcachedError) -> MemcachedConnection {
        let id = ids.add(1, ordering: .relaxed).newValue
        let connectTimeout = TimeAmount(configuration.connectTimeout)
        let deadline = NIODeadline.now() + connectTimeout
        let queue = MemcachedRequestQueue()
        var logger = logger
        logger[metadataKey: "concord.memcached.connection"] = "\(id)"
        let handlerLogger = logger
        let maxValueSize = configuration.maxResponseValueBytes

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = MemcachedChannelHandler(queue: queue, logger: handlerLogger, maxValueSize: maxValueSize)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }

        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            if case .connectTimeout = error as? ChannelError {
                throw MemcachedError(.timeout, "connect to \(host):\(port) timed out after \(configuration.connectTimeout)", underlying: error)
            }
            throw MemcachedError(.connectionRefused, "cannot connect to memcached at \(host):\(port)", underlying: error)
        }

        let handler: NIOLoopBound<MemcachedChannelHandler>
        do {
            handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: MemcachedChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw MemcachedError(.connectionClosed, "connection closed while connecting", underlying: error)
        }

        let connection = MemcachedConnection(
            channel: channel, id: id, queue: queue, handler: handler, requestTimeout: TimeAmount(configuration.requestTimeout))
        do {
            let response = try await connection.send(MetaCommand(.noop), deadline: deadline)
            guard response.status == .noop else {
                throw MemcachedError(.protocolError, "memcached at \(host):\(port) answered \(response.status) to mn; it may not speak the meta protocol (1.6+)")
            }
        } catch {
            let failure = error as? MemcachedError ?? MemcachedError(.connectionClosed, "handshake failed", underlying: error)
            connection.close(MemcachedError(.connectionClosed, "handshake failed", underlying: failure))
            throw failure
        }
        logger.debug("connected", metadata: ["concord.memcached.server": "\(host):\(port)"])
        return connection
    }
}

/// A caller waiting for its response(s).
struct PendingMetaRequest: Sendable {
    let continuation: UnsafeContinuation<[MetaResponse], any Error>
    let deadline: NIODeadline
    /// Collects responses until `MN` (a quiet batch) instead of taking exactly one.
    let untilNoop: Bool
}

/// Requests submitted from any thread and not yet taken by the event loop.
final class MemcachedRequestQueue: Sendable {
    enum EnqueueResult {
        case queued
        case scheduleDrain
        case closed(MemcachedError)
    }

    private struct State {
        var buffer: ByteBuffer?
        var requests: [PendingMetaRequest] = []
        var drainScheduled = false
        var closeError: MemcachedError?
    }

    private let state = Mutex(State())

    var closeError: MemcachedError? { state.withLock { $0.closeError } }

    func enqueue(_ request: PendingMetaRequest, allocator: ByteBufferAllocator, encode: (inout ByteBuffer) -> Void) -> EnqueueResult {
        state.withLock { state in
            if let error = state.closeError { return .closed(error) }
            if state.buffer == nil { state.buffer = allocator.buffer(capacity: 512) }
            encode(&state.buffer!)
            state.requests.append(request)
            if state.drainScheduled { return .queued }
            state.drainScheduled = true
            return .scheduleDrain
        }
    }

    func take(into requests: inout [PendingMetaRequest]) -> ByteBuffer? {
        state.withLock { state in
            state.drainScheduled = false
            swap(&state.requests, &requests)
            defer { state.buffer = nil }
            return state.buffer
        }
    }

    func close(_ error: MemcachedError) -> [PendingMetaRequest] {
        state.withLock { state in
            if state.closeError == nil { state.closeError = error }
            state.buffer = nil
            defer { state.requests = [] }
            return state.requests
        }
    }
}
