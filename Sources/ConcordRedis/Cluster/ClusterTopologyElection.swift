/// Picks the slot map to route by from what several nodes answered: the view that more than
/// half of the answering nodes share (compared by routing only, so a replica list still
/// settling does not split the vote), or a typed error.
///
/// Nodes disagree for a moment while a slot migrates or a shard fails over; a majority then
/// still names one view, and the MOVED answers correct whatever it lags behind on.
public enum ClusterTopologyElection {
    /// What one node answered when asked for the topology.
    public struct Answer: Sendable {
        public var node: RedisConfiguration.Cluster.Endpoint
        public var result: Result<ClusterSlotMap, RedisError>

        public init(node: RedisConfiguration.Cluster.Endpoint, result: Result<ClusterSlotMap, RedisError>) {
            self.node = node
            self.result = result
        }
    }

    /// The elected map. Throws `.clusterTopologyInconsistent` when no view has a majority of the
    /// answers, `.clusterTopologyInvalid` when every answer was malformed, and otherwise (no node
    /// answered) `.clusterUnreachable`, or the configuration error every node failed with.
    public static func elect(_ answers: [Answer]) throws(RedisError) -> ClusterSlotMap {
        var maps: [ClusterSlotMap] = []
        var failures: [RedisError] = []
        for answer in answers {
            switch answer.result {
            case .success(let map): maps.append(map)
            case .failure(let error): failures.append(error)
            }
        }
        guard !maps.isEmpty else {
            let asked = answers.map(\.node.description).joined(separator: ", ")
            if let first = failures.first, failures.allSatisfy({ $0.code == first.code }),
                first.isConfigurationProblem || first.code == .clusterTopologyInvalid
            {
                throw RedisError(first.code, "every cluster node failed the same way (asked \(asked)): \(first.message)", underlying: first)
            }
            throw RedisError(.clusterUnreachable, "no cluster node answered with a topology (asked \(asked))", underlying: failures.last)
        }
        var votes: [[ClusterSlotMap.Route]: (count: Int, map: ClusterSlotMap)] = [:]
        for map in maps {
            let routing = map.routing
            // The first map of a view stands for it; prefer one from CLUSTER SHARDS, which says more.
            if var vote = votes[routing] {
                vote.count += 1
                if !vote.map.fromShards, map.fromShards { vote.map = map }
                votes[routing] = vote
            } else {
                votes[routing] = (1, map)
            }
        }
        let best = votes.values.max { $0.count < $1.count }!
        guard best.count * 2 > maps.count else {
            throw RedisError(
                .clusterTopologyInconsistent,
                "the cluster nodes disagree on the slot map: \(votes.count) different views among \(maps.count) answers, none held by a majority")
        }
        return best.map
    }
}
