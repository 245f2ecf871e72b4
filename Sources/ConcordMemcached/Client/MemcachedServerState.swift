import ConcordRedis

/// The connection state of one memcached server, as published by its reconnect supervisor.
public enum MemcachedServerState: Sendable, CustomStringConvertible, SupervisedConnectionState {
    /// A TCP connect and the first round trip are in progress.
    case connecting
    /// The server answered; requests flow.
    case connected
    /// The connection failed or was lost, and why.
    case disconnected(MemcachedError)
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
