import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One proxied TCP connection: the accepted client channel, the channel to the upstream server,
/// and the two relays between them.
///
/// Both channels live on the same event loop and every method runs on it, so the mutable state
/// needs no lock; `@unchecked Sendable` only lets the proxy hop onto that loop to reach it.
final class ProxyConnection: @unchecked Sendable {
    enum Side: Sendable {
        case client
        case server
    }

    /// What waits in a relay's queue: data, or a stream event that must keep its place after it.
    private enum Item {
        case data(ByteBuffer)
        case shutdownOutput
        case closeConnection
    }

    /// One direction's queue and read control.
    private struct Relay {
        var queue = CircularBuffer<(item: Item, deliverAt: UInt64)>()
        var queuedBytes = 0
        var planner = DeliveryPlanner()
        var scheduled: Scheduled<Void>?
        /// A read was withheld because the queue is full or the sink cannot take more.
        var sourcePaused = false
        /// The source half-closed or closed; nothing more will be read from it.
        var sourceEnded = false
        /// The sink's output has been shut down (half-close delivered).
        var sinkShut = false
        /// Bytes counted against the limitData toxic with this id.
        var limit: (toxicID: UInt64, bytes: Int)?
        /// A limitData close is queued; ignore further input.
        var closing = false
    }

    let id: Int
    let eventLoop: any EventLoop
    let client: any Channel
    private(set) var server: (any Channel)?
    private let proxy: FaultProxyCore
    private let logger: Logger
    private var relays = [Relay(), Relay()]
    private var closed = false
    private var timers: [Scheduled<Void>] = []
    private var rng = SystemRandomNumberGenerator()
    private let openedAt: UInt64
    /// Completes when the upstream channel is closed, failed to connect, or was never opened.
    private let serverDone: EventLoopPromise<Void>
    private var serverDoneCompleted = false
    /// An upstream connect is in flight; its result will settle `serverDone`.
    private var connecting = false

    /// Completes when both sockets of this connection are closed.
    var closeFuture: EventLoopFuture<Void> {
        client.closeFuture.flatMap { self.serverDone.futureResult }
    }

    init(id: Int, client: any Channel, proxy: FaultProxyCore, logger: Logger) {
        self.id = id
        self.client = client
        self.eventLoop = client.eventLoop
        self.proxy = proxy
        self.openedAt = NIODeadline.now().uptimeNanoseconds
        self.serverDone = client.eventLoop.makePromise()
        var logger = logger
        logger[metadataKey: "concord.proxy.connection"] = "\(id)"
        self.logger = logger
    }

    // MARK: Lifecycle

    /// Called when the accepted socket is active: refuse it when the proxy is down, otherwise arm
    /// the connection-level toxics and dial the upstream.
    func clientActive() {
        eventLoop.assertInEventLoop()
        let (upstream, downstream, isDown) = proxy.snapshot()
        if isDown || closed {
            logger.debug("proxy is down: refusing connection")
            close()
            return
        }
        for (direction, toxics) in [(FlowDirection.upstream, upstream), (.downstream, downstream)] {
            for toxic in toxics.all {
                arm(toxic, direction: direction)
            }
        }
        if closed { return }

        connecting = true
        proxy.connectUpstream(on: eventLoop, connection: self).whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let channel):
                self.serverConnected(channel)
            case .failure(let error):
                self.logger.debug("upstream connect failed", metadata: ["concord.error": "\(error)"])
                self.completeServerDone()
                self.close()
            }
        }
    }

    private func serverConnected(_ channel: any Channel) {
        eventLoop.assertInEventLoop()
        channel.closeFuture.whenComplete { _ in self.completeServerDone() }
        if closed {
            channel.close(promise: nil)
            return
        }
        server = channel
        client.read()
        channel.read()
    }

    private func completeServerDone() {
        guard !serverDoneCompleted else { return }
        serverDoneCompleted = true
        serverDone.succeed(())
    }

    /// Closes both sockets with FIN; queued data is dropped.
    func close() {
        eventLoop.assertInEventLoop()
        guard !closed else { return }
        closed = true
        for index in relays.indices {
            relays[index].scheduled?.cancel()
            relays[index].scheduled = nil
            relays[index].queue.removeAll()
            relays[index].queuedBytes = 0
        }
        for timer in timers { timer.cancel() }
        timers.removeAll()
        client.close(promise: nil)
        if let server {
            server.close(promise: nil)
        } else if !connecting {
            completeServerDone()
        }
    }

    /// Resets the socket(s) on `direction`'s receiving side with RST (SO_LINGER 0), then closes the rest.
    /// Downstream traffic is received by the client, upstream by the server.
    func reset(_ direction: ProxyDirection) {
        eventLoop.assertInEventLoop()
        guard !closed else { return }
        var targets: [any Channel] = []
        for flow in direction.concrete {
            switch flow {
            case .downstream: targets.append(client)
            case .upstream: if let server { targets.append(server) }
            }
        }
        logger.debug("resetting connection", metadata: ["concord.proxy.direction": "\(direction)"])
        for channel in targets {
            Self.setLingerZero(channel)
        }
        close()
    }

    private static func setLingerZero(_ channel: any Channel) {
        // A zero linger makes close(2) send RST instead of FIN, which is what a reset peer looks like.
        if let provider = channel as? any SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
    }

    /// Arms the timer a connection-level toxic needs (timeout close, delayed reset).
    func arm(_ toxic: ActiveToxic, direction: FlowDirection) {
        eventLoop.assertInEventLoop()
        guard !closed else { return }
        let delay: Duration
        switch toxic.toxic {
        case .resetPeer(let after):
            delay = after
        case .timeout(let closeAfter?):
            delay = closeAfter
        case .down:
            // Both ways down: the link is gone. One way: the connection stays, half deaf or half
            // mute; `received` drops what flows the downed way.
            let other: FlowDirection = direction == .upstream ? .downstream : .upstream
            if proxy.isActive(id: toxic.id, direction: other) || proxy.toxics(other).down != nil { close() }
            return
        default:
            return
        }
        let start = max(toxic.since, openedAt)
        let deadline = start &+ UInt64(max(0, DeliveryPlanner.nanoseconds(delay)))
        let fire: @Sendable () -> Void = { [self] in
            guard !closed, proxy.isActive(id: toxic.id, direction: direction) else { return }
            switch toxic.toxic {
            case .resetPeer:
                let other: FlowDirection = direction == .upstream ? .downstream : .upstream
                let both = proxy.isActive(id: toxic.id, direction: other)
                reset(both ? .both : (direction == .upstream ? .upstream : .downstream))
            default:
                logger.debug("timeout toxic closes connection")
                close()
            }
        }
        if deadline <= NIODeadline.now().uptimeNanoseconds {
            fire()
        } else {
            timers.append(eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) { fire() })
        }
    }

    // MARK: Relaying

    private func flow(from side: Side) -> FlowDirection {
        side == .client ? .upstream : .downstream
    }

    private func source(of direction: FlowDirection) -> (any Channel)? {
        direction == .upstream ? client : server
    }

    private func sink(of direction: FlowDirection) -> (any Channel)? {
        direction == .upstream ? server : client
    }

    func received(_ buffer: ByteBuffer, from side: Side) {
        eventLoop.assertInEventLoop()
        let direction = flow(from: side)
        guard !closed, !relays[direction.rawValue].closing else { return }
        let toxics = proxy.toxics(direction)
        if toxics.timeout != nil || toxics.down != nil {
            // Blackholed (or this way down): the bytes are swallowed, as a dead network path would.
            return
        }
        var buffer = buffer
        var closeAfterwards = false
        if let limit = toxics.limitData, case .limitData(let maxBytes) = limit.toxic {
            if relays[direction.rawValue].limit?.toxicID != limit.id {
                relays[direction.rawValue].limit = (limit.id, 0)
            }
            let counted = relays[direction.rawValue].limit!.bytes
            let remaining = max(0, maxBytes - counted)
            if buffer.readableBytes >= remaining {
                buffer = buffer.getSlice(at: buffer.readerIndex, length: remaining)!
                closeAfterwards = true
                relays[direction.rawValue].closing = true
            }
            relays[direction.rawValue].limit!.bytes += buffer.readableBytes
        }
        proxy.countBytes(buffer.readableBytes, direction: direction)
        let now = NIODeadline.now().uptimeNanoseconds
        let slices = relays[direction.rawValue].planner.plan(
            byteCount: buffer.readableBytes, now: now, toxics: toxics, using: &rng)
        for slice in slices {
            let piece = buffer.readSlice(length: slice.length)!
            relays[direction.rawValue].queue.append((.data(piece), slice.deliverAt))
            relays[direction.rawValue].queuedBytes += slice.length
        }
        if closeAfterwards {
            let at = relays[direction.rawValue].planner.markerTime(now: now)
            relays[direction.rawValue].queue.append((.closeConnection, at))
        }
        proxy.observeQueued(relays[direction.rawValue].queuedBytes)
        pump(direction)
    }

    func readComplete(_ side: Side) {
        eventLoop.assertInEventLoop()
        let direction = flow(from: side)
        if canRead(direction) {
            source(of: direction)?.read()
        } else {
            relays[direction.rawValue].sourcePaused = true
        }
    }

    func inputClosed(_ side: Side) {
        eventLoop.assertInEventLoop()
        let direction = flow(from: side)
        guard !closed, !relays[direction.rawValue].sourceEnded else { return }
        relays[direction.rawValue].sourceEnded = true
        logger.trace("half-close received", metadata: ["concord.side": "\(side)"])
        let at = relays[direction.rawValue].planner.markerTime(now: NIODeadline.now().uptimeNanoseconds)
        relays[direction.rawValue].queue.append((.shutdownOutput, at))
        pump(direction)
    }

    func writabilityChanged(_ side: Side) {
        eventLoop.assertInEventLoop()
        // The side whose writability changed is the sink of the flow going towards it.
        resumeIfPossible(side == .client ? .downstream : .upstream)
    }

    func inactive(_ side: Side) {
        eventLoop.assertInEventLoop()
        logger.trace("socket closed", metadata: ["concord.side": "\(side)"])
        guard !closed else { return }
        let direction = flow(from: side)
        let other: FlowDirection = direction == .upstream ? .downstream : .upstream
        // Nothing can be delivered to a closed socket; what it sent still goes out, then all closes.
        relays[other.rawValue].scheduled?.cancel()
        relays[other.rawValue].scheduled = nil
        relays[other.rawValue].queue.removeAll()
        relays[other.rawValue].queuedBytes = 0
        guard sink(of: direction) != nil else {
            close()
            return
        }
        relays[direction.rawValue].sourceEnded = true
        let at = relays[direction.rawValue].planner.markerTime(now: NIODeadline.now().uptimeNanoseconds)
        relays[direction.rawValue].queue.append((.closeConnection, at))
        pump(direction)
    }

    func failed(_ side: Side, error: any Error) {
        eventLoop.assertInEventLoop()
        logger.debug("proxied socket error", metadata: ["concord.side": "\(side)", "concord.error": "\(error)"])
        close()
    }

    private func canRead(_ direction: FlowDirection) -> Bool {
        let relay = relays[direction.rawValue]
        guard !closed, !relay.closing, !relay.sourceEnded, let sink = sink(of: direction) else { return false }
        return relay.queuedBytes < proxy.configuration.highWaterMark && sink.isWritable
    }

    private func resumeIfPossible(_ direction: FlowDirection) {
        guard relays[direction.rawValue].sourcePaused,
            relays[direction.rawValue].queuedBytes <= proxy.configuration.lowWaterMark,
            canRead(direction)
        else { return }
        relays[direction.rawValue].sourcePaused = false
        source(of: direction)?.read()
    }

    /// Writes every queued item that is due, then schedules itself for the next one.
    private func pump(_ direction: FlowDirection) {
        guard !closed, let sink = sink(of: direction) else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        var wrote = false
        while let head = relays[direction.rawValue].queue.first, head.deliverAt <= now {
            relays[direction.rawValue].queue.removeFirst()
            switch head.item {
            case .data(let buffer):
                relays[direction.rawValue].queuedBytes -= buffer.readableBytes
                sink.write(buffer, promise: nil)
                wrote = true
            case .shutdownOutput:
                if wrote { sink.flush() }
                wrote = false
                // A half-close goes out only after the bytes before it (NIO waits for pending writes).
                sink.close(mode: .output).whenComplete { result in
                    self.logger.trace("half-close delivered", metadata: ["concord.proxy.direction": "\(direction)", "concord.result": "\(result)"])
                    self.relays[direction.rawValue].sinkShut = true
                    let other: FlowDirection = direction == .upstream ? .downstream : .upstream
                    if self.relays[other.rawValue].sinkShut {
                        // Both halves finished: the connection is done.
                        self.close()
                    }
                }
            case .closeConnection:
                if wrote { sink.flush() }
                // Deliver what was written, then close everything.
                relays[direction.rawValue].closing = true
                sink.close(mode: .output).whenComplete { _ in self.close() }
                return
            }
        }
        if wrote { sink.flush() }
        if let head = relays[direction.rawValue].queue.first, relays[direction.rawValue].scheduled == nil {
            relays[direction.rawValue].scheduled = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(head.deliverAt)) {
                self.relays[direction.rawValue].scheduled = nil
                self.pump(direction)
            }
        }
        resumeIfPossible(direction)
    }
}
