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

    @inlinable
    func result<Value: Sendable>(key: String, as type: Value.Type) throws -> CacheResult<Value> {
        guard let value = HybridCache.cast(value, to: Value.self) else {
            throw HybridCache.typeMismatch(key: key, found: self.value, expected: Value.self)
        }
        return CacheResult(value: value, source: .memory, isStale: isStale, version: version)
    }
}
