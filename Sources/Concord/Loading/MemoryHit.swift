/// A fresh L1 value, already counted and announced; only the cast to the caller's type is left,
/// which inlined callers do specialized.
@usableFromInline
struct MemoryHit: Sendable {
    @usableFromInline
    var value: any Sendable
    @usableFromInline
    var isStale: Bool
    @usableFromInline
    var version: CacheVersion

    /// The hit as `Value`. The key is needed only for the type-mismatch error, so a caller that
    /// holds the key as bytes builds its `String` only then.
    @inlinable
    func result<Value: Sendable>(key: @autoclosure () -> String, as type: Value.Type) throws -> CacheResult<Value> {
        guard let value = HybridCache.cast(value, to: Value.self) else {
            throw HybridCache.typeMismatch(key: key(), found: self.value, expected: Value.self)
        }
        return CacheResult(value: value, source: .memory, isStale: isStale, version: version)
    }
}
