/// What a bearer token allows: reading the cache, writing it, or reading the metrics. A
/// request's identity is the set of scopes its token grants.
public struct APIScope: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// GET of keys and `/v1/stats`.
    public static let read = APIScope(rawValue: 1 << 0)
    /// PUT, DELETE and `/v1/invalidate`; an admin token reads too.
    public static let admin = APIScope(rawValue: 1 << 1)
    /// `/metrics`, when `--metrics-token-file` is set.
    public static let metrics = APIScope(rawValue: 1 << 2)
}
