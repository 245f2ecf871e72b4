import Concord
import ConcordNode
import ConcordProcess
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The test bed of one chaos run: a redis-server, one fault proxy per node in front of it, and
/// the `concord node` processes, each reaching Redis only through its own proxy; or, on the
/// Sentinel topology, a master, a replica and three Sentinels that the nodes reach directly.
/// Everything it starts is released by `shutdown()`, which is safe to call after a partial start.
final class ChaosCluster: Sendable {
    /// Everything started so far (internal so the extensions in the other ChaosCluster files reach it).
    struct State {
        var redis: RedisServer?
        var sentinel: SentinelTopology?
        var redisCluster: ClusterTopology?
        /// The memcached servers of a run with Memcached as L2, and the proxy in front of each,
        /// which every node shares (so all nodes name the servers alike and agree on placement).
        var memcached: [MemcachedServer] = []
        var memcachedProxies: [FaultProxy] = []
        var proxies: [FaultProxy] = []
        var nodes: [Node] = []
        var processes: [String: ChildProcess] = [:]
    }

    let supervisor: ProcessSupervisor
    let executable: String
    let logDirectory: URL
    /// Holds the current redis-server pid for the watchdog.
    let redisPIDFile: URL
    let logger: Logger
    /// With `--network netns`: the namespaces the nodes run in.
    let network: NetnsNetwork?
    let state = Mutex(State())

    init(
        supervisor: ProcessSupervisor, executable: String, logDirectory: URL, workDirectory: URL, logger: Logger,
        network: NetnsNetwork? = nil
    ) {
        self.network = network
        self.supervisor = supervisor
        self.executable = executable
        self.logDirectory = logDirectory
        self.redisPIDFile = workDirectory.appendingPathComponent("redis.pid")
        self.logger = logger
    }

    var redis: RedisServer {
        guard let redis = state.withLock({ $0.redis }) else { preconditionFailure("Redis was not started") }
        return redis
    }

    /// The Sentinel topology's processes; only on that topology.
    var sentinel: SentinelTopology {
        guard let sentinel = state.withLock({ $0.sentinel }) else { preconditionFailure("the Sentinel topology was not started") }
        return sentinel
    }

    /// The Redis Cluster's processes; only on the cluster topology.
    var redisCluster: ClusterTopology {
        guard let cluster = state.withLock({ $0.redisCluster }) else { preconditionFailure("the Redis Cluster was not started") }
        return cluster
    }

    var nodes: [Node] { state.withLock { $0.nodes } }

    var memcachedServers: [MemcachedServer] { state.withLock { $0.memcached } }
    var memcachedProxies: [FaultProxy] { state.withLock { $0.memcachedProxies } }

    // MARK: Starting

    /// Starts Redis, the proxies and the nodes, and returns once every node answers `/health`
    /// and reports ready (its backplane, or without one its Redis connection, is up).
    func start(
        nodeCount: Int, topology: ChaosTopology = .standalone, originPath: String, settings: ChaosConfiguration.NodeSettings,
        clientConfiguration: NodeClient.Configuration, memcachedServers: Int = 0
    ) async throws {
        if topology == .sentinel {
            try await startSentinel(nodeCount: nodeCount, originPath: originPath, settings: settings, clientConfiguration: clientConfiguration)
            return
        }
        if topology == .cluster {
            try await startRedisCluster(nodeCount: nodeCount, originPath: originPath, settings: settings, clientConfiguration: clientConfiguration)
            return
        }
        let redis: RedisServer
        do {
            var options = RedisServer.Options()
            if let network {
                // Also on the bridge, for the nodes in their namespaces; the harness keeps loopback.
                options.extraConfig += ["bind 127.0.0.1 \(network.redisAddress)", "protected-mode no"]
            }
            redis = try await RedisServer.start(options)
        } catch {
            throw ChaosError(.setupFailed, "cannot start redis-server (is it installed? scripts/setup.sh installs it)", underlying: error)
        }
        state.withLock { $0.redis = redis }
        logger.info("redis-server started", metadata: ["concord.port": "\(redis.port)"])
        try startRedisWatchdog()

        // Every run signs its invalidations, so a `forge` fault shows whether unsigned and
        // wrongly signed messages are kept out. The key lives in the run's temp dir only.
        let keyFile = redisPIDFile.deletingLastPathComponent().appendingPathComponent("backplane.key")
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0 ... .max)) }.joined()
        do {
            try Data((key + "\n").utf8).write(to: keyFile, options: .atomic)
        } catch {
            throw ChaosError(.io, "cannot write the backplane key file", underlying: error)
        }

        var l2Arguments: [String] = []
        if memcachedServers > 0 {
            var endpoints: [String] = []
            for _ in 0..<memcachedServers {
                let server: MemcachedServer
                do {
                    server = try await MemcachedServer.start()
                } catch {
                    throw ChaosError(.setupFailed, "cannot start memcached (is it installed? scripts/setup.sh installs it)", underlying: error)
                }
                state.withLock { $0.memcached.append(server) }
                recordRedisPID()
                let proxy = try await FaultProxy.start(upstream: .init(host: server.host, port: server.port), logger: logger)
                state.withLock { $0.memcachedProxies.append(proxy) }
                endpoints.append("127.0.0.1:\(proxy.port)")
            }
            logger.info("memcached started", metadata: ["concord.servers": "\(endpoints)"])
            l2Arguments = ["--l2", "memcached://" + endpoints.joined(separator: ",")]
        }

        let ports = try await FreePort.distinct(nodeCount)
        for index in 0..<nodeCount {
            let id = "n\(index + 1)"
            var proxy: FaultProxy?
            var redisURL = "redis://\(network?.redisAddress ?? "127.0.0.1"):\(redis.port)"
            var host = "127.0.0.1"
            if let network {
                host = network.links[index].controlAddress
            } else {
                var proxyLogger = logger
                proxyLogger[metadataKey: "concord.node"] = .string(id)
                let started = try await FaultProxy.start(upstream: .init(host: redis.host, port: redis.port), logger: proxyLogger)
                state.withLock { $0.proxies.append(started) }
                proxy = started
                redisURL = "redis://127.0.0.1:\(started.port)"
            }
            let arguments = [
                "node", "--id", id, "--bind", host, "--port", "\(ports[index])", "--redis", redisURL,
                "--origin", "sqlite:\(originPath)", "--cache-name", "chaos",
                // Nodes end by themselves when the harness is gone, even after a SIGKILL of it.
                "--parent-pid", "\(getpid())",
                "--backplane-key-file", keyFile.path,
            ] + l2Arguments + settings.arguments
            let node = Node(
                index: index, id: id, port: ports[index], proxy: proxy,
                client: NodeClient(host: host, port: ports[index], configuration: clientConfiguration, logger: logger),
                arguments: arguments, host: host)
            state.withLock { $0.nodes.append(node) }
        }
        try await startNodesFirstTime(clientConfiguration: clientConfiguration)
    }

    /// The Sentinel topology: a master, a replica and three Sentinels, and nodes that find the
    /// master through the Sentinels (no proxies: the Sentinels hand out the servers' own addresses).
    private func startSentinel(
        nodeCount: Int, originPath: String, settings: ChaosConfiguration.NodeSettings, clientConfiguration: NodeClient.Configuration
    ) async throws {
        let topology: SentinelTopology
        do {
            topology = try await SentinelTopology.start()
        } catch {
            throw ChaosError(.setupFailed, "cannot start the Sentinel topology (scripts/setup.sh installs redis-server and redis-sentinel)", underlying: error)
        }
        state.withLock { $0.sentinel = topology }
        logger.info("Sentinel topology started", metadata: ["concord.url": "\(topology.url)"])
        try startRedisWatchdog()
        try await startDirectNodes(
            nodeCount: nodeCount, redisURL: topology.url, originPath: originPath, settings: settings, clientConfiguration: clientConfiguration)
    }

    /// The cluster topology: a Redis Cluster of three primaries and three replicas, and nodes
    /// that reach it through `redis+cluster://` (no proxies: the cluster hands out its nodes' own addresses).
    private func startRedisCluster(
        nodeCount: Int, originPath: String, settings: ChaosConfiguration.NodeSettings, clientConfiguration: NodeClient.Configuration
    ) async throws {
        let topology: ClusterTopology
        do {
            topology = try await ClusterTopology.start()
        } catch {
            throw ChaosError(.setupFailed, "cannot start the Redis Cluster (scripts/setup.sh installs redis-server and redis-tools)", underlying: error)
        }
        state.withLock { $0.redisCluster = topology }
        logger.info("Redis Cluster started", metadata: ["concord.url": "\(topology.url)"])
        try startRedisWatchdog()
        try await startDirectNodes(
            nodeCount: nodeCount, redisURL: topology.url, originPath: originPath, settings: settings, clientConfiguration: clientConfiguration)
    }

    /// Nodes that reach Redis at `redisURL` without proxies.
    private func startDirectNodes(
        nodeCount: Int, redisURL: String, originPath: String, settings: ChaosConfiguration.NodeSettings,
        clientConfiguration: NodeClient.Configuration
    ) async throws {
        let ports = try await FreePort.distinct(nodeCount)
        for index in 0..<nodeCount {
            let id = "n\(index + 1)"
            let arguments = [
                "node", "--id", id, "--port", "\(ports[index])", "--redis", redisURL,
                "--origin", "sqlite:\(originPath)", "--cache-name", "chaos", "--parent-pid", "\(getpid())",
            ] + settings.arguments
            let node = Node(
                index: index, id: id, port: ports[index], proxy: nil,
                client: NodeClient(port: ports[index], configuration: clientConfiguration, logger: logger),
                arguments: arguments, host: "127.0.0.1")
            state.withLock { $0.nodes.append(node) }
        }
        try await startNodesFirstTime(clientConfiguration: clientConfiguration)
    }

    /// Starts every node for the first time, all at once, and waits until all are ready. A node
    /// whose port was taken before it could bind it is moved to another free port and started
    /// again (no one uses its port yet); restarts later keep the port.
    private func startNodesFirstTime(clientConfiguration: NodeClient.Configuration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask {
                    try await Retry.run(backoff: .fixed(.zero), limit: .attempts(8), isRetryable: { $0 is PortTaken }) { attempt in
                        if attempt > 0 { try self.moveToFreePort(node.index, clientConfiguration: clientConfiguration) }
                        try await self.startNode(node.index, firstStart: true)
                    }
                }
            }
            try await group.waitForAll()
        }
        try await waitUntilReady(timeout: .seconds(30))
    }

    /// Gives node `index` a new free port (before it has ever run).
    private func moveToFreePort(_ index: Int, clientConfiguration: NodeClient.Configuration) throws {
        let port = try FreePort.next()
        let old = state.withLock { state -> Node in
            let old = state.nodes[index]
            state.nodes[index] = old.moved(to: port, clientConfiguration: clientConfiguration, logger: logger)
            return old
        }
        old.client.shutdown()
        logger.info("node port taken before it bound it; moved", metadata: ["concord.node": "\(old.id)", "concord.port": "\(port)"])
    }

    /// Launches node `index` (again), with `extraArguments` after its own, and waits for its
    /// `/health`. On its `firstStart` it throws `PortTaken` when its port was taken before it
    /// bound it (the caller moves it); a restart keeps its port, so there that is a setup failure.
    func startNode(_ index: Int, extraArguments: [String] = [], timeout: Duration = .seconds(60), firstStart: Bool = false) async throws {
        let node = nodes[index]
        let logFile = logDirectory.appendingPathComponent("\(node.id).log")
        let logOffset = (try? FileManager.default.attributesOfItem(atPath: logFile.path)[.size] as? Int) ?? 0
        let (program, arguments) = network?.launch(node: index, executable: executable, arguments: node.arguments + extraArguments) ?? (executable, node.arguments + extraArguments)
        let child = try supervisor.launch(name: node.id, executable: program, arguments: arguments, logFile: logFile)
        state.withLock { $0.processes[node.id] = child }
        recordNodePIDs()
        struct NotAnswering: Error {}
        do {
            try await Retry.run(backoff: .fixed(.milliseconds(50)), limit: .duration(timeout), isRetryable: { $0 is NotAnswering }) { _ in
                if let status = child.exitStatus {
                    if Self.text(of: logFile, from: logOffset).contains("Address already in use") { throw PortTaken() }
                    throw ChaosError(.setupFailed, "node \(node.id) exited with status \(status) during start:\n\(Self.tail(of: logFile))")
                }
                guard (try? await node.client.health()) == true else { throw NotAnswering() }
            }
        } catch is NotAnswering {
            throw ChaosError(.setupFailed, "node \(node.id) did not answer /health within \(timeout):\n\(Self.tail(of: logFile))")
        } catch is PortTaken where !firstStart {
            throw ChaosError(.setupFailed, "node \(node.id) could not bind its port \(node.port) again:\n\(Self.tail(of: logFile))")
        }
    }

    /// Waits until every node answers `/ready`.
    func waitUntilReady(timeout: Duration) async throws {
        var waiting = nodes.map(\.index)
        let allReady = await Retry.until(backoff: .fixed(.milliseconds(100)), limit: .duration(timeout)) {
            var still: [Int] = []
            for index in waiting where (try? await nodes[index].client.ready()) != true {
                still.append(index)
            }
            waiting = still
            return waiting.isEmpty
        }
        try Task.checkCancellation()
        guard allReady else {
            throw ChaosError(.setupFailed, "nodes \(waiting.map { nodes[$0].id }.joined(separator: ", ")) not ready within \(timeout)")
        }
    }

    /// SIGKILLs node `index` and waits until it is gone.
    func killNode(_ index: Int) async {
        let id = nodes[index].id
        guard let child = state.withLock({ $0.processes[id] }) else { return }
        await child.kill()
    }

    /// The running processes to sample (nodes by id, and "redis"), with their current pids.
    func runningProcesses() -> [(name: String, pid: Int32)] {
        state.withLock { state in
            var running: [(name: String, pid: Int32)] = state.nodes.compactMap { node in
                guard let child = state.processes[node.id], child.isRunning else { return nil }
                return (node.id, child.processIdentifier)
            }
            if let pid = state.redis?.processIdentifier { running.append(("redis", pid)) }
            return running
        }
    }

    /// Nodes whose process has exited although nobody killed it.
    func unexpectedExits(except killed: Set<String> = []) -> [String: Int32] {
        state.withLock { state in
            var exits: [String: Int32] = [:]
            for (id, child) in state.processes where !killed.contains(id) {
                if let status = child.exitStatus { exits[id] = status }
            }
            return exits
        }
    }

    // MARK: Stopping

    /// Stops nodes, proxies and Redis; safe after a partial start and safe to call twice.
    func shutdown() async {
        let (redis, sentinel, proxies, nodes, memcached) = state.withLock {
            ($0.redis, $0.sentinel, $0.proxies + $0.memcachedProxies, $0.nodes, $0.memcached)
        }
        await supervisor.stopAll(grace: .seconds(3))
        for node in nodes { node.client.shutdown() }
        for proxy in proxies { await proxy.stop() }
        redis?.stop()
        sentinel?.stop()
        state.withLock { $0.redisCluster }?.stop()
        network?.teardown()
        for server in memcached { server.stop() }
    }

    /// For signal handlers: SIGKILL to every child and to Redis, without waiting on anything async.
    func emergencyStop() {
        supervisor.killAllNow()
        state.withLock { $0.redis }?.stop()
        state.withLock { $0.sentinel }?.stop()
        state.withLock { $0.redisCluster }?.stop()
        network?.teardown()
        for server in state.withLock({ $0.memcached }) { server.stop() }
    }
}
