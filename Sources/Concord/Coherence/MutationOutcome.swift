/// What applying a mutation to L2 did.
public enum MutationOutcome: Sendable, Equatable {
    /// Stored, and announced with this sequence number when it was published.
    case applied(sequence: UInt64?)
    /// Not stored: L2 already holds this newer version for the key, or (for a set) a newer
    /// clear or removal of one of its tags, which would hide it.
    case superseded(by: CacheVersion)
}
