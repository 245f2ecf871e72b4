import ConcordRedis
import Synchronization

/// The states one Redis connection went through, with when each was seen, so the recovery
/// suite can tell which backoff delay was in force when the server came back.
final class ConnectionStateLog: Sendable {
    /// One backoff period: published at `start`, next attempt at `end` (bench clock ns).
    struct Backoff: Sendable {
        var start: UInt64
        var end: UInt64
        /// Consecutive failures before this one (0 for the first backoff after a connection).
        var attempt: Int
        var delay: UInt64 { end &- start }
    }

    private struct State {
        var backoffs: [Backoff] = []
        var failuresSinceConnected = 0
        var connectedAt: [UInt64] = []
    }

    let name: String
    private let state = Mutex(State())

    init(name: String) {
        self.name = name
    }

    /// Records every state of `states` until the stream ends or the task is cancelled.
    func record(_ states: AsyncStream<RedisConnectionState>) async {
        for await connectionState in states {
            let now = BenchClock.nanoseconds()
            switch connectionState {
            case .backingOff(let until):
                let remaining = ContinuousClock.now.duration(to: until)
                let end = remaining > .zero ? now &+ BenchClock.nanoseconds(remaining) : now
                state.withLock { state in
                    state.backoffs.append(Backoff(start: now, end: end, attempt: state.failuresSinceConnected))
                    state.failuresSinceConnected += 1
                }
            case .connected:
                state.withLock { state in
                    state.failuresSinceConnected = 0
                    state.connectedAt.append(now)
                }
            case .connecting, .disconnected:
                break
            }
        }
    }

    /// The backoff whose wait was running when the server came back at `instant`: the first
    /// one that ends at or after it. Nil when the connection was not backing off then.
    func backoff(inForceAt instant: UInt64) -> Backoff? {
        state.withLock { state in state.backoffs.first { $0.end >= instant && $0.start <= instant &+ 1_000_000_000 } }
    }

    /// When the connection was first (re)established after `instant`.
    func connected(after instant: UInt64) -> UInt64? {
        state.withLock { state in state.connectedAt.first { $0 >= instant } }
    }
}
