/// Why an entry left the memory cache, as reported to the removal listener.
public enum RemovalCause: Hashable, Sendable {
    /// Removed by `remove`, `removeAll`, or an `update` that returned `.remove`.
    case explicit
    /// Superseded by a `set` of the same key.
    case replaced
    /// Its `expiresAt` or idle deadline passed.
    case expired
    /// Evicted to respect the entry or cost bound, or rejected because it alone exceeds it.
    case evicted

    /// Whether the cache removed the entry on its own rather than because a caller asked.
    public var wasAutomatic: Bool {
        switch self {
        case .expired, .evicted: true
        case .explicit, .replaced: false
        }
    }
}
