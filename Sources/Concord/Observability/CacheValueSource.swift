import Synchronization

/// Where a value came from.
public enum CacheValueSource: String, Sendable, Equatable, Codable {
    case memory
    case distributed
    case factory
}
