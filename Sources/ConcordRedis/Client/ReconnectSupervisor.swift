import Concord
/// The states a reconnect supervisor publishes; `RedisConnectionState` and the Memcached client's
/// per-server state conform, so both clients share one supervisor.
package protocol SupervisedConnectionState {
    associatedtype Failure: Error
    static var connecting: Self { get }
    static var connected: Self { get }
    static func disconnected(_ error: Failure) -> Self
    static func backingOff(until: ContinuousClock.Instant) -> Self
}

extension RedisConnectionState: SupervisedConnectionState {}

/// The reconnect state machine: a plain value with no I/O, driven by `ConnectionDriver` and kept behind a Mutex.
///
/// It decides when to connect and how long to back off, remembers the last failure (so callers
/// can be told *why* there is no connection), and says which state to publish at each step.
package struct ReconnectSupervisor<Random: RandomNumberGenerator, Published: SupervisedConnectionState> {
    package enum State {
        case idle
        case connecting
        case connected
        case backingOff(until: ContinuousClock.Instant)
        case shutdown
    }

    package private(set) var state: State = .idle
    /// Failures since the last successful connection; picks the backoff bound.
    package private(set) var consecutiveFailures = 0
    package private(set) var lastError: Published.Failure?
    /// Connection attempts made since the machine was created.
    package private(set) var attempts = 0
    package let backoff: RetryBackoff
    private var random: Random

    package init(backoff: RetryBackoff, random: Random, publishing: Published.Type) {
        self.backoff = backoff
        self.random = random
    }

    /// Starts an attempt; nil when shut down (the driver must stop).
    package mutating func startConnecting() -> Published? {
        switch state {
        case .idle, .backingOff, .connecting:
            state = .connecting
            attempts += 1
            return .connecting
        case .connected:
            preconditionFailure("startConnecting while connected")
        case .shutdown:
            return nil
        }
    }

    /// The handshake finished: the backoff resets.
    package mutating func connected() -> Published? {
        guard case .connecting = state else { return nil }
        state = .connected
        consecutiveFailures = 0
        lastError = nil
        return .connected
    }

    /// An attempt failed or an established connection was lost. Returns the states to publish
    /// and how long to wait before `startConnecting()`; nil when shut down.
    package mutating func failed(
        _ error: Published.Failure,
        now: ContinuousClock.Instant
    ) -> (publish: [Published], delay: Duration)? {
        switch state {
        case .shutdown:
            return nil
        case .idle, .connecting, .connected, .backingOff:
            let delay = backoff.delay(attempt: consecutiveFailures, using: &random)
            consecutiveFailures += 1
            lastError = error
            let until = now.advanced(by: delay)
            state = .backingOff(until: until)
            return ([.disconnected(error), .backingOff(until: until)], delay)
        }
    }

    /// Stops for good; returns true the first time.
    package mutating func shutdown() -> Bool {
        if case .shutdown = state { return false }
        state = .shutdown
        return true
    }

    package var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    package var isShutdown: Bool {
        if case .shutdown = state { return true }
        return false
    }
}

extension ReconnectSupervisor where Published == RedisConnectionState {
    /// The Redis client's supervisor.
    init(backoff: RetryBackoff, random: Random) {
        self.init(backoff: backoff, random: random, publishing: RedisConnectionState.self)
    }
}
