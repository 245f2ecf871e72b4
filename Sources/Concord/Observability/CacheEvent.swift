import Synchronization

/// Something that happened in the cache, for callers that watch `HybridCache.events()`.
public enum CacheEvent: Sendable, Equatable {
    case hit(key: String, source: CacheValueSource, stale: Bool)
    case miss(key: String)
    case factoryCalled(key: String)
    case factoryFailed(key: String, error: String)
    case factoryTimedOut(key: String, soft: Bool)
    case backgroundFactoryCompleted(key: String)
    case failSafeActivated(key: String)
    case eagerRefreshStarted(key: String)
    case distributedError(operation: String, error: String)
    case pendingWriteQueued(key: String)
    case pendingWriteDropped(key: String)
    case pendingWritesFlushed(count: Int)
    case backplaneConnected
    case backplaneDisconnected(reason: String)
    case messageApplied(kind: MutationKind, key: String, source: String)
    case messageIgnored(reason: String)
    case gapDetected(from: UInt64, through: UInt64)
    case replayed(count: Int)
    case fullExpiry(reason: String)
}
