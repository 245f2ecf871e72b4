/// The state of a Redis connection as published by the reconnect supervisor.
public enum RedisConnectionState: Sendable, CustomStringConvertible {
    /// A TCP connect and handshake are in progress.
    case connecting
    /// The handshake (and, for a subscriber, re-subscription) finished; commands flow.
    case connected
    /// The connection failed or was lost, and why.
    case disconnected(RedisError)
    /// Waiting before the next attempt.
    case backingOff(until: ContinuousClock.Instant)

    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .connected: "connected"
        case .disconnected(let error): "disconnected(\(error))"
        case .backingOff(let until): "backingOff(until: \(until))"
        }
    }
}
