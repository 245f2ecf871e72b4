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
    var clear: String { prefix + ":clear" }
    var sequence: String { prefix + ":seq" }
    var log: String { prefix + ":log" }
    var epoch: String { prefix + ":epoch" }
    /// The pub/sub channel.
    public var channel: String { prefix + ":bp" }
}
