/// The result of reading the invalidation log.
public enum BackplaneLogRead: Sendable, Equatable {
    /// Raw messages in sequence order.
    case messages([[UInt8]])
    /// The log no longer holds the first sequence asked for.
    case trimmed
}
