import Concord

/// The source of truth a node loads a key from on a miss. Behind a protocol so tests and
/// embedders can plug in their own; the node ships `SQLiteOrigin` and `HTTPOrigin`.
public protocol Origin: Sendable {
    /// The record for `key`, or nil when the origin has none. Throws when the origin cannot
    /// answer, which the node reports as 503 (or covers with a fail-safe value).
    func load(_ key: String) async throws -> OriginRecord?

    /// The value for `key` as the node's `getOrSet` factory loads it: the context holds the
    /// stale value, so an origin that can revalidate answers `context.notModified()`, and it may
    /// change the entry's options (its duration). Nil when the origin has no value. The default
    /// calls `load(_:)`.
    func load(_ key: String, context: FactoryContext<[UInt8]>) async throws -> [UInt8]?
}

extension Origin {
    public func load(_ key: String, context: FactoryContext<[UInt8]>) async throws -> [UInt8]? {
        try await load(key)?.value
    }
}
