/// A Redis Cluster answer that sends a command elsewhere or asks it to wait, parsed from an error reply.
public enum ClusterRedirection: Sendable, Equatable {
    /// `MOVED slot host:port`: the slot lives there now; update the map.
    case moved(slot: Int, to: RedisConfiguration.Cluster.Endpoint)
    /// `ASK slot host:port`: this one command goes there, after `ASKING`, while the slot migrates.
    case ask(slot: Int, to: RedisConfiguration.Cluster.Endpoint)
    /// `TRYAGAIN`: a multi-key command hit a slot mid-migration; retry shortly.
    case tryAgain
    /// `CLUSTERDOWN`: the cluster cannot serve the slot right now (a failover in progress).
    case clusterDown

    /// nil for an error that is not a redirection; throws `.protocolError` for a MOVED or ASK
    /// whose slot or address is unreadable. An empty host (`MOVED 12 :7001`) means the host of
    /// the node that answered, `answeredBy`.
    public init?(errorMessage message: String, answeredBy: String) throws(RedisError) {
        let words = message.split(separator: " ", omittingEmptySubsequences: true)
        guard let kind = words.first else { return nil }
        switch kind {
        case "MOVED", "ASK":
            guard words.count >= 3, let slot = Int(words[1]), (0..<ClusterHashSlot.count).contains(slot),
                let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]),
                (1...65_535).contains(port)
            else {
                throw RedisError(.protocolError, "unreadable cluster redirection: \(message.prefix(200))")
            }
            var host = String(words[2][..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let endpoint = RedisConfiguration.Cluster.Endpoint(host: host.isEmpty ? answeredBy : host, port: port)
            self = kind == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        case "TRYAGAIN":
            self = .tryAgain
        case "CLUSTERDOWN":
            self = .clusterDown
        default:
            return nil
        }
    }
}
