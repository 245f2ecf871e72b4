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
    func tag(_ tag: String) -> String { prefix + ":t:" + tag }
    var tagPrefix: String { prefix + ":t:" }
    /// The head: one hash `{epoch, seq}` and the newest clears `{r, x}`, so Redis can only lose
    /// (or evict) them together, and a lost head always shows up as a new epoch.
    var head: String { prefix + ":head" }
    var log: String { prefix + ":log" }
    /// The pub/sub channel.
    public var channel: String { prefix + ":bp" }
}
