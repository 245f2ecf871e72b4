/// What a versioned change does.
public enum MutationKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// A new value for a key.
    case set = 1
    /// The key is gone (a tombstone stays in L2 so older writes cannot come back).
    case remove = 2
    /// The key's value is stale: still servable by fail-safe, no longer fresh.
    case expire = 3
    /// Every entry carrying the tag is gone.
    case removeTag = 4
    /// Every entry is gone.
    case clearRemove = 5
    /// Every entry is stale.
    case clearExpire = 6

    public var description: String {
        switch self {
        case .set: "set"
        case .remove: "remove"
        case .expire: "expire"
        case .removeTag: "removeTag"
        case .clearRemove: "clearRemove"
        case .clearExpire: "clearExpire"
        }
    }

    /// Whether the mutation names one key (rather than a tag or every key).
    public var isKeyed: Bool { self == .set || self == .remove || self == .expire }
}
