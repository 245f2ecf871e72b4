import Concord
extension RedisClient {
    /// Whether backplane messages go by sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`): in a Redis
    /// Cluster, which Concord requires to be Redis 7+. A plain PUBLISH there would cross the
    /// cluster bus to every node.
    public var usesShardedPubSub: Bool { configuration.cluster != nil }

    /// Sends a command to the primary that owns its key's slot and follows the cluster's
    /// answers (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) up to `maxRedirects` times.
    func sendRouted(_ arguments: [RedisArgument], through cluster: ClusterRouter) async throws -> RESPValue {
        let slot = ClusterCommandKeys.slot(of: arguments)
        var machine = ClusterRequestStateMachine(
            maxRedirects: cluster.cluster.maxRedirects,
            backoff: RetryBackoff(base: cluster.cluster.retryBackoffBase, cap: cluster.cluster.retryBackoffCap))
        var random = SystemRandomNumberGenerator()
        var (driver, endpoint) = try await cluster.route(slot: slot)
        var asking = false
        while true {
            let action: ClusterRequestStateMachine.Action
            do {
                let connection = try await driver.connection()
                let reply = asking ? try await connection.sendAsking(arguments) : try await connection.send(arguments)
                action = machine.receive(reply, answeredBy: endpoint.host, random: &random)
            } catch let error as RedisError {
                action = machine.couldNotSend(error, random: &random)
            }
            asking = false
            switch action {
            case .complete(let reply):
                return try Self.checked(reply)
            case .moved(let movedSlot, let owner):
                cluster.learn(slot: movedSlot, movedTo: owner)
                (driver, endpoint) = (cluster.driver(for: owner), owner)
            case .ask(let owner):
                (driver, endpoint) = (cluster.driver(for: owner), owner)
                asking = true
            case .retry(let delay, let refresh):
                if refresh { cluster.requestRefresh() }
                try await Task.sleep(for: delay)
                (driver, endpoint) = try await cluster.route(slot: slot)
            case .fail(let error):
                throw error
            }
        }
    }
}
