extension HybridCache {
    /// `value as? Value`, with a fast path for the usual case where the value's dynamic type is
    /// exactly `Value`: a comparison of type metadata and a copy, where the general cast goes
    /// through the runtime's `swift_dynamicCast` (about 220 instructions for an `Int`). Other
    /// cases (optionals, class hierarchies, existentials) take the general cast.
    @inlinable
    @inline(__always)
    static func cast<Value>(_ value: any Sendable, to type: Value.Type) -> Value? {
        castOpened(value, to: type)
    }

    /// `Stored` is the existential's dynamic type, read from the existential itself: no runtime
    /// call (`type(of:)` on an existential is one). When it is `Value`, the bit cast is a copy.
    /// Always inlined: called, it ran unspecialized.
    @inlinable
    @inline(__always)
    static func castOpened<Stored: Sendable, Value>(_ value: Stored, to type: Value.Type) -> Value? {
        if Stored.self == Value.self {
            return unsafeBitCast(value, to: Value.self)
        }
        return value as? Value
    }

    /// The error for a cached value of another type than the caller asked for.
    @usableFromInline
    static func typeMismatch(key: String, found value: any Sendable, expected: Any.Type) -> CacheError {
        CacheError(.typeMismatch, "the value cached for '\(key)' is a \(type(of: value)), not a \(expected)")
    }
}
