import Concord
import Foundation

/// Everything a chaos run needs, with defaults for every field so `ChaosConfiguration()` is the
/// documented full run (five nodes, every fault, one minute).
package struct ChaosConfiguration: Sendable {
    /// The settings the harness starts every node with; the contract's bounds follow from them.
    package struct NodeSettings: Sendable, Hashable {
        /// Cut off longer than this, a node serves L1 values only as flagged fail-safe values.
        /// Shorter than the node default (5s) so that, within faults of a few seconds, reads
        /// actually cross into the cut-off regime and C4 is exercised, not just C3.
        package var maxDisconnectedStaleness: Duration = .seconds(2)
        package var reconnectBackoffBase: Duration = .milliseconds(100)
        /// Short, because the convergence bound is this plus the heartbeat plus Δ.
        package var reconnectBackoffCap: Duration = .seconds(1)
        /// How long a fail-safe value is served before the node tries again. The node default
        /// (30s) would keep a value activated during a fault past the convergence bound.
        package var failSafeThrottle: Duration = .seconds(1)
        /// The nodes' backplane heartbeat: the library default, which the node has no flag for.
        package var heartbeatInterval: Duration = HybridCacheConfiguration().heartbeatInterval
        /// The largest value a node accepts (`--max-value-bytes`); the workload's largest values
        /// come to half of it.
        package var maxValueBytes: Int = 1 << 20
        /// Nodes start without invalidation: the negative control, which must break C3.
        package var backplane: Bool = true
        /// More node flags, appended as given.
        package var extraArguments: [String] = []

        package init() {}

        /// The `concord node` flags these settings give (besides id, port, Redis and origin).
        package var arguments: [String] {
            var arguments = [
                "--max-disconnected-staleness", DurationText.format(maxDisconnectedStaleness),
                "--reconnect-backoff-base", DurationText.format(reconnectBackoffBase),
                "--reconnect-backoff-cap", DurationText.format(reconnectBackoffCap),
                "--fail-safe",
                "--fail-safe-throttle", DurationText.format(failSafeThrottle),
                "--max-value-bytes", "\(maxValueBytes)",
            ]
            if !backplane { arguments.append("--no-backplane") }
            return arguments + extraArguments
        }
    }

    /// Where the nodes keep L2: on the backplane's Redis, or on memcached servers started by the
    /// harness (Redis then carries only the backplane).
    package enum L2: String, Sendable, Hashable, CaseIterable {
        case redis
        case memcached
    }

    package var l2: L2 = .redis
    /// Memcached servers started for `l2 == .memcached`, each behind a fault proxy shared by all nodes.
    package var memcachedServerCount: Int = 2

    package var topology: ChaosTopology = .standalone
    package var nodeCount: Int = 5
    /// How long the workload runs; startup, settling, final reads and the report come on top.
    package var duration: Duration = .seconds(60)
    package var faults: [FaultKind] = FaultKind.all(memcached: false)
    /// How links are cut: the in-process proxy, or the kernel with each node in a namespace.
    package var network: ChaosNetwork = .proxy
    package var seed: UInt64 = 1
    package var reportDirectory: URL = URL(fileURLWithPath: "chaos-report", isDirectory: true)
    /// Δ: how long a healthy cluster may take to propagate an acknowledged write. Locally a
    /// PUBLISH reaches the other nodes in about a millisecond; the allowance is for a loaded
    /// two-core machine, where a node can be descheduled for hundreds of milliseconds. It stays
    /// far below the entry duration (30s), so a node that misses invalidations still breaks C3.
    package var delta: Duration = .seconds(1)
    package var node = NodeSettings()
    package var workload = Workload.Configuration()
    /// How faults are drawn; `kinds`, `nodeCount`, `span` and `healthyGap` are filled in from
    /// the fields above when the run starts.
    package var schedule = FaultSchedule.Parameters(kinds: [], nodeCount: 0, span: .zero)
    /// Healthy time after each heal beyond the convergence bound: probes finish and C3 is
    /// checked again before the next fault.
    package var healthyMargin: Duration = .seconds(2)
    /// The `concord` executable to start nodes with; nil means this very process's executable,
    /// so the harness and its nodes are the same build.
    package var executable: String?
    /// Print a progress line on stderr.
    package var showProgress: Bool = false
    /// How often every node's (and Redis's, and the harness's) resident memory and open
    /// descriptors are sampled, for the report's soak figures.
    package var resourceSampleInterval: Duration = .seconds(1)

    package init() {}

    /// A short run for CI: three nodes, five fault kinds of different families, faults of two to
    /// three seconds, the whole run (startup included) well under two minutes.
    package static func quick(l2: L2 = .redis) -> ChaosConfiguration {
        var configuration = ChaosConfiguration()
        configuration.l2 = l2
        configuration.nodeCount = 3
        configuration.duration = .seconds(45)
        configuration.faults = FaultKind.quick
        configuration.schedule.warmup = .seconds(2)
        configuration.schedule.hold = .seconds(2) ... .seconds(3)
        configuration.schedule.gapJitter = .seconds(1)
        configuration.healthyMargin = .seconds(1)
        configuration.workload.keyCount = 500
        configuration.resourceSampleInterval = .milliseconds(500)
        if l2 == .memcached {
            // One quick pass per backend in CI, and this one well under a minute.
            configuration.duration = .seconds(30)
            configuration.faults = FaultKind.quickMemcached
        }
        return configuration
    }

    /// `quick()` on the Sentinel topology: the three failover kinds, each once.
    package static func quickSentinel() -> ChaosConfiguration {
        var configuration = quick()
        configuration.topology = .sentinel
        configuration.duration = .seconds(30)
        configuration.faults = FaultKind.quickSentinel
        return configuration
    }

    /// `quick()` on the Redis Cluster: the three cluster faults, each once.
    package static func quickCluster() -> ChaosConfiguration {
        var configuration = quick()
        configuration.topology = .cluster
        configuration.duration = .seconds(30)
        configuration.faults = FaultKind.quickCluster
        return configuration
    }

    /// The contract's bounds for nodes started with these settings. Convergence after a heal
    /// needs a reconnect (at most the backoff cap), possibly a heartbeat to notice what the
    /// subscription missed, and then Δ to propagate.
    package var bounds: ContractBounds {
        ContractBounds(
            delta: delta,
            maxDisconnectedStaleness: node.maxDisconnectedStaleness,
            convergenceBound: node.reconnectBackoffCap + node.heartbeatInterval + delta)
    }

    /// The schedule parameters with this configuration's kinds, nodes, span and healthy gap.
    package var scheduleParameters: FaultSchedule.Parameters {
        var parameters = schedule
        parameters.kinds = faults
        parameters.nodeCount = nodeCount
        parameters.memcachedServerCount = memcachedServerCount
        parameters.span = duration
        parameters.healthyGap = bounds.convergenceBound + healthyMargin
        return parameters
    }

    /// Throws `ChaosError(.invalidArgument)` for settings no run can use.
    package func validate() throws {
        guard (1...64).contains(nodeCount) else { throw ChaosError(.invalidArgument, "--nodes must be 1–64, got \(nodeCount)") }
        guard duration >= .seconds(1) else { throw ChaosError(.invalidArgument, "--duration must be at least 1s") }
        guard delta > .zero else { throw ChaosError(.invalidArgument, "--delta must be positive") }
        guard workload.keyCount > 0, workload.writers > 0 else { throw ChaosError(.invalidArgument, "the workload needs keys and writers") }
        guard schedule.hold.lowerBound > .zero else { throw ChaosError(.invalidArgument, "faults must be held for some time") }
        if network == .netns {
            try NetnsNetwork.checkAvailable()
            let unsupported = faults.filter { !network.supports($0) }
            guard unsupported.isEmpty else {
                throw ChaosError(.invalidArgument, "--network netns cannot inject \(unsupported.map(\.rawValue).joined(separator: ", ")) (no packet delay or reset in the kernel toolkit here); leave them out or use --network proxy")
            }
        }
        guard workload.values.maxBytes <= node.maxValueBytes else {
            throw ChaosError(.invalidArgument, "the workload's largest value (\(workload.values.maxBytes) bytes) exceeds the nodes' --max-value-bytes (\(node.maxValueBytes))")
        }
        guard resourceSampleInterval >= .milliseconds(50) else { throw ChaosError(.invalidArgument, "the resource sample interval must be at least 50ms") }
        if l2 == .redis, let kind = faults.first(where: \.targetsMemcached) {
            throw ChaosError(.invalidArgument, "fault '\(kind)' needs --l2 memcached")
        }
        guard l2 == .redis || (1...8).contains(memcachedServerCount) else {
            throw ChaosError(.invalidArgument, "a Memcached run needs 1–8 memcached servers")
        }
        if topology != .standalone, l2 == .memcached {
            throw ChaosError(.invalidArgument, "--topology \(topology) runs with Redis as L2 only")
        }
        if topology != .standalone, network == .netns {
            throw ChaosError(.invalidArgument, "--topology \(topology) runs with --network proxy only (its nodes reach Redis on loopback)")
        }
        let available = FaultKind.available(in: topology, memcached: l2 == .memcached)
        if let unavailable = faults.first(where: { !available.contains($0) }) {
            throw ChaosError(
                .invalidArgument,
                "fault '\(unavailable)' cannot run on the \(topology) topology; it can run: \(available.map(\.rawValue).joined(separator: ", "))")
        }
    }
}
