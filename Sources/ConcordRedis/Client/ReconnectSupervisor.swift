/// The reconnect state machine: a plain value with no I/O, driven by `ConnectionDriver` and kept behind a Mutex.
///
/// It decides when to connect and how long to back off, remembers the last failure (so callers
/// can be told *why* there is no connection), and says which state to publish at each step.
struct ReconnectSupervisor<Random: RandomNumberGenerator> {
    enum State {
        case idle
        case connecting
        case connected
        case backingOff(until: ContinuousClock.Instant)
        case shutdown
    }

    private(set) var state: State = .idle
    /// Failures since the last successful connection; picks the backoff bound.
    private(set) var consecutiveFailures = 0
    private(set) var lastError: RedisError?
    /// Connection attempts made since the machine was created.
    private(set) var attempts = 0
    let backoff: Backoff
    private var random: Random

    init(backoff: Backoff, random: Random) {
        self.backoff = backoff
        self.random = random
    }

    /// Starts an attempt; nil when shut down (the driver must stop).
    mutating func startConnecting() -> RedisConnectionState? {
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
    mutating func connected() -> RedisConnectionState? {
        guard case .connecting = state else { return nil }
        state = .connected
        consecutiveFailures = 0
        lastError = nil
        return .connected
    }

    /// An attempt failed or an established connection was lost. Returns the states to publish
    /// and how long to wait before `startConnecting()`; nil when shut down.
    mutating func failed(
        _ error: RedisError,
        now: ContinuousClock.Instant
    ) -> (publish: [RedisConnectionState], delay: Duration)? {
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
    mutating func shutdown() -> Bool {
        if case .shutdown = state { return false }
        state = .shutdown
        return true
    }

    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    var isShutdown: Bool {
        if case .shutdown = state { return true }
        return false
    }
}
