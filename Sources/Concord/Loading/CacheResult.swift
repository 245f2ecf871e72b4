/// A value with where it came from, its version, and whether it is stale (served by fail-safe).
public struct CacheResult<Value: Sendable>: Sendable {
    public var value: Value
    public var source: CacheValueSource
    public var isStale: Bool
    public var version: CacheVersion

    public init(value: Value, source: CacheValueSource, isStale: Bool, version: CacheVersion) {
        self.value = value
        self.source = source
        self.isStale = isStale
        self.version = version
    }
}
