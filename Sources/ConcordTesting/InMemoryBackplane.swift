@_spi(ConcordBackend) import Concord
import Synchronization

/// A backplane on an `InMemoryCacheStore`, with switches to cut one node off and to lose
/// messages, for tests of reconnect replay and gap filling.
public final class InMemoryBackplane: Backplane {
    private static let ids = Atomic<UInt64>(0)

    public let store: InMemoryCacheStore
    private let id: UInt64
    /// The running cache's sink; nil while `run(events:)` is not running, when events are dropped
    /// as a transport without a consumer would.
    private let sink = Mutex<BackplaneEventSink?>(nil)
    private let dropCounter = DropCounter()
    private let connected = Atomic<Bool>(false)

    public init(store: InMemoryCacheStore) {
        self.store = store
        self.id = Self.ids.add(1, ordering: .relaxed).newValue
    }

    public func publish(_ mutation: CacheMutation) async throws -> UInt64 {
        guard case .applied(let sequence?) = try store.apply(mutation, store: false, publish: true) else { return 0 }
        return sequence
    }

    public func head() async throws -> BackplaneHead { try store.head() }

    public var messageAuthenticator: (any MessageAuthenticator)? { store.authenticator }

    /// In process: publishing works without `run()` (nothing is received until it runs).
    public var isUsableWithoutRun: Bool { true }

    public func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead {
        try store.readLog(from: from, through: through)
    }

    public func run(events: BackplaneEventSink) async throws {
        sink.withLock { $0 = events }
        // A test may have connected before the cache ran; the cache still needs to hear it.
        if connected.load(ordering: .relaxed) { events(.subscribed) } else { reconnect() }
        let (wait, keepAlive) = AsyncStream<Void>.makeStream()
        await withTaskCancellationHandler {
            for await _ in wait {}
        } onCancel: {
            keepAlive.finish()
        }
        disconnect(reason: "stopped")
        sink.withLock { $0 = nil }
    }

    private func emit(_ event: BackplaneEvent) {
        sink.withLock { $0 }?(event)
    }

    /// Cuts this node's subscription: messages published meanwhile never reach it.
    public func disconnect(reason: String = "test disconnect") {
        guard connected.exchange(false, ordering: .relaxed) else { return }
        store.unsubscribe(id: id)
        emit(.disconnected(reason: reason))
    }

    /// Restores the subscription; the cache then replays what it missed.
    public func reconnect() {
        guard !connected.exchange(true, ordering: .relaxed) else { return }
        store.subscribe(id: id) { [self] event in
            if case .message = event, dropCounter.consumeOne() { return }
            emit(event)
        }
        emit(.subscribed)
    }

    /// Loses the next `count` messages for this node, as a flaky network would, leaving a gap.
    public func dropNextMessages(_ count: Int) {
        dropCounter.remaining.store(count, ordering: .relaxed)
    }
}


/// How many of the next messages a test backplane loses.
final class DropCounter: Sendable {
    let remaining = Atomic<Int>(0)

    /// True if this message is to be lost.
    func consumeOne() -> Bool {
        while true {
            let current = remaining.load(ordering: .relaxed)
            guard current > 0 else { return false }
            if remaining.compareExchange(expected: current, desired: current - 1, ordering: .relaxed).exchanged { return true }
        }
    }
}
