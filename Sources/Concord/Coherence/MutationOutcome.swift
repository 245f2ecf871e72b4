/// What applying a mutation to L2 did.
public enum MutationOutcome: Sendable, Equatable {
    /// Stored, and announced with this sequence number when it was published.
    case applied(sequence: UInt64?)
    /// Not stored: L2 already holds this newer version for the key.
    case superseded(by: CacheVersion)
}
