import Logging
import NIOCore

/// Asks cluster nodes for the topology and elects one view, on short-lived connections that
/// use the client's own credentials, TLS settings and timeouts.
enum ClusterDiscovery {
    /// At most this many nodes are asked at once, so a large cluster's refresh stays cheap.
    static let maxNodesAsked = 12

    /// `base` pointed at one cluster node.
    static func configuration(_ base: RedisConfiguration, for endpoint: RedisConfiguration.Cluster.Endpoint) -> RedisConfiguration {
        var configuration = base
        configuration.host = endpoint.host
        configuration.port = endpoint.port
        configuration.cluster = nil
        configuration.sentinel = nil
        configuration.database = 0
        return configuration
    }

    /// Asks the seeds and the nodes of `known` (seeds first, without duplicates) and elects.
    static func discover(
        base: RedisConfiguration,
        seeds: [RedisConfiguration.Cluster.Endpoint],
        known: ClusterSlotMap?,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws(RedisError) -> ClusterSlotMap {
        var nodes: [RedisConfiguration.Cluster.Endpoint] = []
        for node in (known?.nodes ?? []) + seeds where !nodes.contains(node) {
            nodes.append(node)
        }
        let asked = Array(nodes.prefix(maxNodesAsked))
        let answers = await withTaskGroup(of: ClusterTopologyElection.Answer.self) { group in
            for node in asked {
                group.addTask { await ask(node, base: base, eventLoop: eventLoop, logger: logger) }
            }
            var answers: [ClusterTopologyElection.Answer] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        return try ClusterTopologyElection.elect(answers)
    }

    /// One node's view: `CLUSTER SHARDS`, or `CLUSTER SLOTS` where SHARDS is unknown (before Redis 7).
    static func ask(
        _ node: RedisConfiguration.Cluster.Endpoint,
        base: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger
    ) async -> ClusterTopologyElection.Answer {
        do {
            let connection = try await RedisConnection.connect(
                configuration: configuration(base, for: node), eventLoop: eventLoop, logger: logger)
            defer { connection.close(RedisError(.connectionClosed, "topology lookup done")) }
            let map = try await topology(on: connection, askedHost: node.host, tls: base.tls != nil)
            return .init(node: node, result: .success(map))
        } catch let error as RedisError {
            return .init(node: node, result: .failure(error))
        } catch {
            return .init(node: node, result: .failure(RedisError(.connectionClosed, "topology lookup on \(node) failed", underlying: error)))
        }
    }

    static func topology(on connection: RedisConnection, askedHost: String, tls: Bool) async throws -> ClusterSlotMap {
        let shards = try await connection.send(["CLUSTER", "SHARDS"])
        if case .error(let message) = shards {
            let lowered = message.lowercased()
            if lowered.contains("cluster support disabled") {
                throw RedisError(.clusterTopologyInvalid, "\(askedHost) is not a cluster node: \(message.prefix(200))")
            }
            guard lowered.contains("unknown subcommand") || lowered.contains("unknown command") else {
                if message.hasPrefix("NOAUTH") || message.hasPrefix("NOPERM") {
                    throw RedisError(.authenticationFailed, message)
                }
                throw RedisError(.server, message)
            }
            let slots = try await connection.send(["CLUSTER", "SLOTS"])
            if case .error(let message) = slots { throw RedisError(.server, message) }
            return try ClusterSlotMap.parseSlots(slots, askedHost: askedHost)
        }
        return try ClusterSlotMap.parseShards(shards, askedHost: askedHost, tls: tls)
    }
}
