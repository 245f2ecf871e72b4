/// A value stored in the memory cache together with its cost and expiry.
///
/// `expiresAt` is a hard deadline. `idleTimeout` is time-to-idle: each hit pushes the idle
/// deadline to `now + idleTimeout`, but never past `expiresAt`. An item is live while `now` is
/// before both deadlines, so it reads as a miss from `expiresAt` on.
public struct MemoryCacheItem<Value> {
    public var value: Value
    /// What the item counts against `MemoryCacheConfiguration.maxCost`; a negative cost counts
    /// as 0.
    public var cost: Int
    public var expiresAt: CacheInstant?
    public var idleTimeout: Duration?

    @inlinable
    public init(
        value: Value,
        cost: Int = 1,
        expiresAt: CacheInstant? = nil,
        idleTimeout: Duration? = nil
    ) {
        self.value = value
        self.cost = cost
        self.expiresAt = expiresAt
        self.idleTimeout = idleTimeout
    }
}

extension MemoryCacheItem: Sendable where Value: Sendable {}
