/// Which key of a command decides its slot in a Redis Cluster.
///
/// Commands without keys (PING, INFO, SCRIPT LOAD...) go to any primary. A command with keys in
/// several slots is sent by its first key, and Redis answers CROSSSLOT.
enum ClusterCommandKeys {
    /// The slot of the command's first key, or nil when it has none.
    static func slot(of arguments: [RedisArgument]) -> Int? {
        guard let key = firstKey(of: arguments) else { return nil }
        return ClusterHashSlot.slot(of: key)
    }

    static func firstKey(of arguments: [RedisArgument]) -> [UInt8]? {
        guard let command = arguments.first else { return nil }
        let name = command.description.uppercased()
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 3, let count = Int(arguments[2].description), count > 0 else { return nil }
            return arguments[3].bytes
        case "XREAD", "XREADGROUP":
            guard let streams = arguments.firstIndex(where: { $0.description.uppercased() == "STREAMS" }),
                streams + 1 < arguments.count
            else { return nil }
            return arguments[streams + 1].bytes
        case "OBJECT", "MEMORY":
            return arguments.count > 2 ? arguments[2].bytes : nil
        case "PING", "ECHO", "INFO", "SCRIPT", "CLUSTER", "CLIENT", "CONFIG", "COMMAND", "TIME", "DBSIZE", "FLUSHALL",
            "FLUSHDB", "AUTH", "HELLO", "SELECT", "PUBLISH", "PUBSUB", "FUNCTION", "LATENCY", "SLOWLOG", "ROLE", "LASTSAVE",
            "WAIT", "READONLY", "READWRITE", "ASKING", "ACL", "DEBUG", "SWAPDB", "RANDOMKEY", "SCAN", "KEYS", "SAVE", "BGSAVE":
            return nil
        default:
            return arguments.count > 1 ? arguments[1].bytes : nil
        }
    }
}
