import Concord

/// The Redis keys and channel of one cache: `concord:{cacheName}:…`. The braces make every key
/// of a cache hash to one Redis Cluster slot, so the multi-key scripts stay legal there.
public struct RedisNamespace: Sendable, Hashable {
    /// `concord:{cacheName}`.
    public let prefix: String

    public init(cacheName: String) {
        prefix = "concord:{\(cacheName)}"
    }

    func entry(_ key: String) -> String { prefix + ":e:" + key }
    /// A tag removal's field in the head (`t:<tag>`, its version).
    static func tagField(_ tag: String) -> String { "t:" + tag }
    /// The head: one hash `{epoch, seq}`, the newest clears `{r, x}` and tag removals
    /// `{t:<tag>}`, so Redis can only lose (or evict) them together, and a lost head always
    /// shows up as a new epoch.
    var head: String { prefix + ":head" }
    /// When each tag removal in the head may be dropped (a sorted set: field → Redis time in
    /// milliseconds), so the head does not grow with every tag ever removed.
    var tagExpiries: String { prefix + ":tx" }
    var log: String { prefix + ":log" }
    /// The pub/sub channel.
    public var channel: String { prefix + ":bp" }
}
