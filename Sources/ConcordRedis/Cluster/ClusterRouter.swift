import Concord
import Logging
import NIOCore
import Synchronization

/// The client side of Redis Cluster: the slot map, one pipelined connection (a
/// `ConnectionDriver`) per primary that owns slots, and the topology refresh.
///
/// The map is elected from the seeds at start and asked again every `topologyRefreshInterval`,
/// or at once after a MOVED (which also fixes that one slot immediately), a CLUSTERDOWN or a
/// primary that cannot be reached. Drivers for new primaries are handed to `run()` through a
/// stream, so every connection loop runs inside the client's own task group.
final class ClusterRouter: Sendable {
    private struct Node {
        let endpoint: RedisConfiguration.Cluster.Endpoint
        let driver: ConnectionDriver
        var connected = false
    }

    private struct State {
        var map: ClusterSlotMap?
        /// Per slot, the index in `nodes` of its primary; -1 while no shard claims it.
        var owners = [Int32](repeating: -1, count: ClusterHashSlot.count)
        var nodes: [Node] = []
        var nodeIndex: [RedisConfiguration.Cluster.Endpoint: Int] = [:]
        var topologyWaiters: [Int: UnsafeContinuation<Void, any Error>] = [:]
        var nextWaiterID = 0
        var refreshRequested = false
        var refreshWaiter: UnsafeContinuation<Void, Never>?
        var lastError: RedisError?
        var shutdown = false
    }

    let configuration: RedisConfiguration
    let cluster: RedisConfiguration.Cluster
    private let logger: Logger
    private let eventLoop: any EventLoop
    private let state = Mutex(State())
    let states = Broadcaster<RedisConnectionState>(replayLatest: true, bufferSize: 64)
    private let newDrivers: AsyncStream<ConnectionDriver>
    private let newDriversContinuation: AsyncStream<ConnectionDriver>.Continuation

    init(configuration: RedisConfiguration, cluster: RedisConfiguration.Cluster, logger: Logger, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.cluster = cluster
        self.logger = logger
        self.eventLoop = eventLoop
        (newDrivers, newDriversContinuation) = AsyncStream.makeStream(of: ConnectionDriver.self)
    }

    var isConnected: Bool { state.withLock { $0.nodes.contains(where: \.connected) } }

    /// Primaries with a command connection (one pipelined connection each).
    var connectionCount: Int { state.withLock { $0.nodes.filter(\.connected).count } }

    /// The slot map in use, nil before the first discovery.
    var slotMap: ClusterSlotMap? { state.withLock { $0.map } }

    /// The primary currently routed to for `slot`.
    func primary(forSlot slot: Int) -> RedisConfiguration.Cluster.Endpoint? {
        state.withLock { state in
            let index = state.owners[slot]
            return index < 0 ? nil : state.nodes[Int(index)].endpoint
        }
    }

    // MARK: Routing

    /// The driver of the primary that owns `slot` (any primary for nil); waits for the first
    /// topology for up to `connectTimeout + commandTimeout` (or `waitForConnectionTimeout` if longer).
    func route(slot: Int?) async throws -> (ConnectionDriver, RedisConfiguration.Cluster.Endpoint) {
        if let found = try lookup(slot: slot) { return found }
        let timeout = max(configuration.waitForConnectionTimeout, configuration.connectTimeout + configuration.commandTimeout)
        try await waitForTopology(timeout: timeout)
        guard let found = try lookup(slot: slot) else {
            throw RedisError(.clusterUnreachable, "no cluster topology yet", underlying: state.withLock { $0.lastError })
        }
        return found
    }

    /// The driver for `endpoint`, created (and handed to `run()`) when new.
    func driver(for endpoint: RedisConfiguration.Cluster.Endpoint) -> ConnectionDriver {
        state.withLock { state in state.nodes[nodeIndex(endpoint, in: &state)].driver }
    }

    /// nil while there is no topology; throws when the topology leaves `slot` unserved.
    private func lookup(slot: Int?) throws(RedisError) -> (ConnectionDriver, RedisConfiguration.Cluster.Endpoint)? {
        try state.withLock { state throws(RedisError) in
            guard state.map != nil else { return nil }
            var index: Int32
            if let slot {
                index = state.owners[slot]
                guard index >= 0 else {
                    throw RedisError(.server, "CLUSTERDOWN slot \(slot) is not served by any shard of the cluster")
                }
            } else {
                let primaries = state.map?.shards.compactMap { state.nodeIndex[$0.primary] } ?? []
                guard let any = primaries.randomElement() else { return nil }
                index = Int32(any)
            }
            let node = state.nodes[Int(index)]
            return (node.driver, node.endpoint)
        }
    }

    /// A MOVED answer: the slot is served by `endpoint` from now on.
    func learn(slot: Int, movedTo endpoint: RedisConfiguration.Cluster.Endpoint) {
        state.withLock { state in
            state.owners[slot] = Int32(nodeIndex(endpoint, in: &state))
        }
        requestRefresh()
    }

    private func nodeIndex(_ endpoint: RedisConfiguration.Cluster.Endpoint, in state: inout State) -> Int {
        if let index = state.nodeIndex[endpoint] { return index }
        let driver = ConnectionDriver(
            configuration: ClusterDiscovery.configuration(configuration, for: endpoint), logger: logger, eventLoop: eventLoop, role: "client")
        state.nodes.append(Node(endpoint: endpoint, driver: driver))
        state.nodeIndex[endpoint] = state.nodes.count - 1
        newDriversContinuation.yield(driver)
        return state.nodes.count - 1
    }

    /// Installs an elected map: every slot points at its shard's primary.
    func install(_ map: ClusterSlotMap) {
        let waiters = state.withLock { state -> [UnsafeContinuation<Void, any Error>] in
            var owners = [Int32](repeating: -1, count: ClusterHashSlot.count)
            for shard in map.shards {
                let index = Int32(nodeIndex(shard.primary, in: &state))
                for range in shard.slots {
                    for slot in range { owners[slot] = index }
                }
            }
            state.owners = owners
            state.map = map
            state.lastError = nil
            defer { state.topologyWaiters = [:] }
            return Array(state.topologyWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Waiting for the topology

    private func waitForTopology(timeout: Duration) async throws {
        let id = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enum Outcome { case ready, failed(RedisError), waiting }
                let outcome: Outcome = state.withLock { state in
                    if state.map != nil { return .ready }
                    if state.shutdown { return .failed(RedisError(.notConnected, "the Redis client has shut down")) }
                    if let error = state.lastError, error.isConfigurationProblem || error.code == .clusterTopologyInvalid {
                        return .failed(error)
                    }
                    state.topologyWaiters[id] = continuation
                    return .waiting
                }
                switch outcome {
                case .ready: continuation.resume()
                case .failed(let error): continuation.resume(throwing: error)
                case .waiting: eventLoop.scheduleTask(in: TimeAmount(timeout)) { self.expireWaiter(id, error: nil) }
                }
            }
        } onCancel: {
            self.expireWaiter(id, error: CancellationError())
        }
    }

    private func expireWaiter(_ id: Int, error: (any Error)?) {
        let expired = state.withLock { state -> (UnsafeContinuation<Void, any Error>, RedisError?)? in
            guard let waiter = state.topologyWaiters.removeValue(forKey: id) else { return nil }
            return (waiter, state.lastError)
        }
        guard let (waiter, lastError) = expired else { return }
        let seeds = cluster.seeds.map(\.description).joined(separator: ",")
        waiter.resume(throwing: error ?? RedisError(
            lastError?.isConfigurationProblem == true ? lastError!.code : .notConnected,
            "no Redis Cluster topology from \(seeds) yet", underlying: lastError))
    }

    private func failWaiters(_ error: RedisError) {
        let waiters = state.withLock { state in
            defer { state.topologyWaiters = [:] }
            return Array(state.topologyWaiters.values)
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    // MARK: Refreshing

    /// Asks for a topology refresh soon; many requests before it runs make one refresh.
    func requestRefresh() {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.refreshRequested = true
            defer { state.refreshWaiter = nil }
            return state.refreshWaiter
        }
        waiter?.resume()
    }

    private func waitForRefreshRequest(timeout: Duration) async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.refreshRequested || state.shutdown { return true }
                    state.refreshWaiter = continuation
                    return false
                }
                if now {
                    continuation.resume()
                } else {
                    eventLoop.scheduleTask(in: TimeAmount(timeout)) { self.wakeRefresh() }
                }
            }
        } onCancel: {
            self.wakeRefresh()
        }
        state.withLock { $0.refreshRequested = false }
    }

    private func wakeRefresh() {
        let waiter = state.withLock { state in
            defer { state.refreshWaiter = nil }
            return state.refreshWaiter
        }
        waiter?.resume()
    }

    // MARK: Running

    /// Discovers and refreshes the topology, and runs every primary's connection loop, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.refreshLoop() }
            for await driver in newDrivers {
                group.addTask { await self.runDriver(driver) }
            }
        }
        let waiters = state.withLock { state in
            state.shutdown = true
            defer { state.topologyWaiters = [:] }
            return Array(state.topologyWaiters.values)
        }
        for waiter in waiters { waiter.resume(throwing: RedisError(.notConnected, "the Redis client has shut down")) }
        states.publish(.disconnected(RedisError(.notConnected, "the Redis client has shut down")))
        states.finish()
    }

    private func refreshLoop() async {
        // The drivers' stream ends with this loop, which ends on cancellation.
        defer { newDriversContinuation.finish() }
        let backoff = RetryBackoff(base: configuration.reconnect.backoffBase, cap: configuration.reconnect.backoffCap)
        var random = SystemRandomNumberGenerator()
        var failures = 0
        while !Task.isCancelled {
            let known = slotMap
            do {
                let map = try await ClusterDiscovery.discover(
                    base: configuration, seeds: cluster.seeds, known: known, eventLoop: eventLoop, logger: logger)
                if map != known {
                    logger.info(
                        "cluster topology",
                        metadata: [
                            "concord.redis.shards": "\(map.shards.count)",
                            "concord.redis.primaries": "\(map.shards.map(\.primary.description).joined(separator: ","))",
                            "concord.redis.unassigned": "\(map.unassignedSlots)",
                        ])
                }
                install(map)
                failures = 0
            } catch {
                state.withLock { $0.lastError = error }
                // Retrying will not fix a wrong password or seeds that are no cluster: say so now.
                if error.isConfigurationProblem || error.code == .clusterTopologyInvalid { failWaiters(error) }
                logger.log(
                    level: failures == 0 ? .warning : .debug, "cluster topology refresh failed",
                    metadata: ["concord.redis.error": "\(error)"])
                failures += 1
            }
            if Task.isCancelled { break }
            let wait = failures == 0 ? cluster.topologyRefreshInterval : backoff.delay(attempt: failures - 1, using: &random)
            await waitForRefreshRequest(timeout: wait)
            // A burst of MOVED answers (a slot migrating under load) makes one refresh, not one each.
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func runDriver(_ driver: ConnectionDriver) async {
        let driverStates = driver.states.makeStream()
        await withDiscardingTaskGroup { group in
            group.addTask { await driver.run() }
            group.addTask {
                for await driverState in driverStates {
                    self.driver(driver, changedTo: driverState)
                }
            }
        }
    }

    /// The client counts as connected while any primary is: a `.connected` from any primary is
    /// passed on (the cache flushes queued writes on it), `.disconnected` once none is left.
    private func driver(_ driver: ConnectionDriver, changedTo driverState: RedisConnectionState) {
        let publish: RedisConnectionState? = state.withLock { state in
            guard let index = state.nodes.firstIndex(where: { $0.driver === driver }) else { return nil }
            switch driverState {
            case .connected:
                state.nodes[index].connected = true
                return .connected
            case .disconnected(let error):
                let wasConnected = state.nodes[index].connected
                state.nodes[index].connected = false
                return wasConnected && !state.nodes.contains(where: \.connected) ? .disconnected(error) : nil
            case .connecting, .backingOff:
                return nil
            }
        }
        if case .disconnected = driverState { requestRefresh() }
        if let publish { states.publish(publish) }
    }
}
