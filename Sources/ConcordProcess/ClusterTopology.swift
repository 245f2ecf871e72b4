import ConcordRedis
import Foundation

/// A Redis Cluster of primaries and replicas on free 127.0.0.1 ports, for tests, local clusters
/// and chaos runs; created with `redis-cli --cluster create` like an operator would.
///
/// Every node is a `RedisServer` with `cluster-enabled yes` and its own cluster bus port, so each
/// can be killed and restarted (it keeps its `nodes.conf` and rejoins). Control commands and the
/// faults (slot migration, failover) go through `redis-cli`.
public final class ClusterTopology: Sendable {
    /// How to start the cluster.
    public struct Options: Sendable {
        public var primaries: Int
        public var replicasPerPrimary: Int
        /// `cluster-node-timeout`: how long a primary may not answer before it is failed over.
        public var nodeTimeout: Duration
        /// `requirepass` (and `masterauth`) of every node.
        public var password: String?

        public init(primaries: Int = 3, replicasPerPrimary: Int = 1, nodeTimeout: Duration = .milliseconds(1000), password: String? = nil) {
            self.primaries = primaries
            self.replicasPerPrimary = replicasPerPrimary
            self.nodeTimeout = nodeTimeout
            self.password = password
        }
    }

    /// One line of `CLUSTER NODES`.
    public struct NodeLine: Sendable, Equatable {
        public var id: String
        public var port: Int
        public var flags: Set<String>
        /// The primary's id for a replica, nil for a primary.
        public var primaryID: String?
        /// Slots served (ranges); slots being imported or migrated (`[…]`) are not counted.
        public var slots: [ClosedRange<Int>]

        public var isPrimary: Bool { flags.contains("master") }
        public var isFailed: Bool { flags.contains("fail") || flags.contains("fail?") }
    }

    public let options: Options
    /// Every node; the first `primaries` were the primaries at start.
    public let servers: [RedisServer]

    private init(options: Options, servers: [RedisServer]) {
        self.options = options
        self.servers = servers
    }

    deinit {
        stop()
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…` naming every node as a seed, with the password when there is one.
    public var url: String {
        let credentials = options.password.map { ":\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)@" } ?? ""
        return "redis+cluster://\(credentials)" + servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// A client configuration that reaches the cluster through every node as a seed.
    public func configuration() throws -> RedisConfiguration {
        try RedisConfiguration(url: url)
    }

    /// The slot all keys of the cache `cacheName` live in.
    public static func slot(ofCache cacheName: String) -> Int {
        ClusterHashSlot.slot(of: "concord:{\(cacheName)}")
    }

    // MARK: Starting

    /// Starts every node, creates the cluster and returns once every node reports `cluster_state:ok`.
    public static func start(_ options: Options = .init(), timeout: Duration = .seconds(60)) async throws -> ClusterTopology {
        guard options.primaries >= 3 else { throw RedisServerError("a Redis Cluster needs at least 3 primaries") }
        var started: [RedisServer] = []
        do {
            for _ in 0..<(options.primaries * (1 + options.replicasPerPrimary)) {
                // The bus port is picked before the server starts, so another process may take it
                // in between; a start that fails is tried again with a new one, a bounded number of times.
                var lastError: (any Error)?
                for _ in 0..<5 {
                    var serverOptions = RedisServer.Options(requirePassword: options.password)
                    serverOptions.extraConfig = [
                        "cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        "cluster-node-timeout \(options.nodeTimeout.wholeMilliseconds)",
                        // Redis's default bus port (port + 10000) may be taken or past 65535.
                        "cluster-port \(try FreePort.next())",
                        // A cache is one slot: one shard failing must not stop the other shards' caches.
                        "cluster-require-full-coverage no",
                        "repl-diskless-sync-delay 0",
                    ]
                    if let password = options.password {
                        serverOptions.extraConfig.append("masterauth \"\(password)\"")
                    }
                    do {
                        started.append(try await RedisServer.start(serverOptions))
                        lastError = nil
                        break
                    } catch {
                        lastError = error
                    }
                }
                if let lastError { throw lastError }
            }
            let topology = ClusterTopology(options: options, servers: started)
            var arguments = ["--cluster", "create"] + started.map { "127.0.0.1:\($0.port)" }
            arguments += ["--cluster-replicas", "\(options.replicasPerPrimary)", "--cluster-yes"]
            // The tool waits, a dot a second, until every node has joined: on a loaded machine
            // that alone can take longer than the default 10 s.
            _ = try await RedisServer.cli(port: started[0].port, password: options.password, arguments, timeout: timeout)
            try await topology.waitUntilWhole(timeout: timeout)
            return topology
        } catch {
            for server in started { server.stop() }
            throw error
        }
    }

    // MARK: Inspecting

    /// `CLUSTER NODES` as `server` sees it.
    public func nodes(from server: RedisServer) async throws -> [NodeLine] {
        try await cli(server, ["CLUSTER", "NODES"]).compactMap(Self.parseNodeLine)
    }

    static func parseNodeLine(_ line: String) -> NodeLine? {
        let fields = line.split(separator: " ")
        guard fields.count >= 8 else { return nil }
        let address = fields[1].split(separator: "@")[0]
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        var slots: [ClosedRange<Int>] = []
        for field in fields.dropFirst(8) where !field.hasPrefix("[") {
            let bounds = field.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2, bounds[0] <= bounds[1] { slots.append(bounds[0]...bounds[1]) }
            if bounds.count == 1 { slots.append(bounds[0]...bounds[0]) }
        }
        return NodeLine(
            id: String(fields[0]), port: port, flags: Set(fields[2].split(separator: ",").map(String.init)),
            primaryID: fields[3] == "-" ? nil : String(fields[3]), slots: slots)
    }

    /// The running servers.
    public var runningServers: [RedisServer] { servers.filter { $0.processIdentifier != nil } }

    /// The primary serving `slot`, as the running nodes' majority sees it.
    public func owner(ofSlot slot: Int) async throws -> RedisServer {
        var votes: [Int: Int] = [:]
        for server in runningServers {
            guard let lines = try? await nodes(from: server) else { continue }
            if let owner = lines.first(where: { $0.isPrimary && !$0.isFailed && $0.slots.contains(where: { $0.contains(slot) }) }) {
                votes[owner.port, default: 0] += 1
            }
        }
        guard let (port, _) = votes.max(by: { $0.value < $1.value }), let server = servers.first(where: { $0.port == port }) else {
            throw RedisServerError("no running node names a live primary for slot \(slot)")
        }
        return server
    }

    /// The running replicas of `primary`.
    public func replicas(of primary: RedisServer) async throws -> [RedisServer] {
        let lines = try await nodes(from: primary)
        guard let me = lines.first(where: { $0.flags.contains("myself") }) else { throw RedisServerError("CLUSTER NODES has no 'myself'") }
        let ports = lines.filter { $0.primaryID == me.id && !$0.isFailed }.map(\.port)
        return runningServers.filter { ports.contains($0.port) }
    }

    /// Waits until every running node says `cluster_state:ok`, all see the same live primaries
    /// serving all 16384 slots with no migration open, and every running replica's link is up.
    public func waitUntilWhole(timeout: Duration = .seconds(60)) async throws {
        try await TopologyWait.untilNoProblem("the Redis Cluster was not whole", timeout: timeout) { await wholeness() }
    }

    private func wholeness() async -> String? {
        var views: Set<[Int: [ClosedRange<Int>]]> = []
        for server in runningServers {
            guard let info = try? await cli(server, ["CLUSTER", "INFO"]), info.contains("cluster_state:ok") else {
                return "node \(server.port) does not report cluster_state:ok"
            }
            guard let lines = try? await nodes(from: server) else { return "node \(server.port) does not answer CLUSTER NODES" }
            let running = Set(runningServers.map(\.port))
            if let failed = lines.first(where: { $0.isFailed && running.contains($0.port) }) {
                return "node \(server.port) still flags running node \(failed.port) as failed"
            }
            if (try? await cli(server, ["CLUSTER", "NODES"]))?.contains(where: { $0.contains("->-") || $0.contains("-<-") }) == true {
                return "node \(server.port) has a slot migration open"
            }
            let owners = Dictionary(lines.filter { $0.isPrimary && !$0.slots.isEmpty }.map { ($0.port, $0.slots) }, uniquingKeysWith: { a, _ in a })
            let covered = owners.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
            guard covered == ClusterHashSlot.count else { return "node \(server.port) sees \(covered) of 16384 slots served" }
            views.insert(owners)
            if lines.first(where: { $0.flags.contains("myself") })?.isPrimary == false {
                guard let replication = try? await cli(server, ["INFO", "replication"]),
                    replication.contains(where: { $0.hasPrefix("master_link_status:up") })
                else { return "replica \(server.port) is not in sync" }
            }
        }
        guard views.count == 1 else { return "the nodes disagree on the slot owners (\(views.count) views)" }
        return nil
    }

    // MARK: Faults

    /// Moves `slot` with its keys to another primary (the next one after its owner, or `target`),
    /// as `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE in batches, then SETSLOT NODE
    /// on both and on every other primary. Returns the new owner.
    @discardableResult
    public func migrateSlot(_ slot: Int, to target: RedisServer? = nil) async throws -> RedisServer {
        let source = try await owner(ofSlot: slot)
        let primaries = try await livePrimaries()
        let destination: RedisServer
        if let target {
            destination = target
        } else {
            guard let index = primaries.firstIndex(where: { $0 === source }) else { throw RedisServerError("the owner is not a live primary") }
            destination = primaries[(index + 1) % primaries.count]
        }
        guard destination !== source else { return source }
        let sourceID = try await myID(source)
        let destinationID = try await myID(destination)
        try await expectOK(cli(destination, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID]))
        try await expectOK(cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", destinationID]))
        // Bounded: every round moves up to 100 keys, and a cache's slot holds a bounded set.
        for _ in 0..<10_000 {
            let keys = try await cli(source, ["CLUSTER", "GETKEYSINSLOT", "\(slot)", "100"])
            if keys.isEmpty { break }
            var migrate = ["MIGRATE", "127.0.0.1", "\(destination.port)", "", "0", "5000", "REPLACE"]
            if let password = options.password { migrate += ["AUTH", password] }
            migrate += ["KEYS"] + keys
            let reply = try await cli(source, migrate)
            guard reply.first == "OK" || reply.first == "NOKEY" else {
                throw RedisServerError("MIGRATE of slot \(slot) failed: \(reply.joined(separator: " "))")
            }
        }
        try await expectOK(cli(destination, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID]))
        try await expectOK(cli(source, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID]))
        for primary in primaries where primary !== source && primary !== destination {
            _ = try? await cli(primary, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID])
        }
        try await waitUntilWhole()
        return destination
    }

    /// `CLUSTER FAILOVER` on a replica of the primary that owns `slot`; returns once the replica
    /// serves the slot (and the cluster is whole again).
    @discardableResult
    public func failover(shardOf slot: Int, timeout: Duration = .seconds(30)) async throws -> RedisServer {
        let primary = try await owner(ofSlot: slot)
        let replica = try await firstReplica(of: primary, timeout: timeout)
        try await expectOK(cli(replica, ["CLUSTER", "FAILOVER"]))
        try await waitForOwner(of: slot, toBe: replica, timeout: timeout)
        try await waitUntilWhole(timeout: timeout)
        return replica
    }

    /// SIGKILLs the primary that owns `slot` and waits until the cluster promoted one of its
    /// replicas; returns the killed server (restart it with `rejoin`).
    @discardableResult
    public func killPrimary(ofSlot slot: Int, timeout: Duration = .seconds(30)) async throws -> RedisServer {
        let primary = try await owner(ofSlot: slot)
        _ = try await firstReplica(of: primary, timeout: timeout)
        primary.kill()
        _ = try await TopologyWait.value(timeout: timeout, orFail: "no replica took over slot \(slot) within \(timeout)") {
            () async -> RedisServer? in
            guard let owner = try? await owner(ofSlot: slot), owner !== primary else { return nil }
            return owner
        }
        return primary
    }

    /// Restarts a killed node on its ports with its `nodes.conf`: it rejoins as a replica of the
    /// primary that replaced it. Waits until the cluster is whole.
    public func rejoin(_ server: RedisServer, timeout: Duration = .seconds(60)) async throws {
        try await server.restart()
        try await waitUntilWhole(timeout: timeout)
    }

    /// A replica of `primary`, waiting for one while gossip catches up (after a failover the
    /// new primary learns its replica a moment later).
    private func firstReplica(of primary: RedisServer, timeout: Duration) async throws -> RedisServer {
        try await TopologyWait.value(timeout: timeout, orFail: "primary \(primary.port) has no running replica") {
            try? await replicas(of: primary).first
        }
    }

    /// The running primaries that serve slots, in the order of `servers`.
    public func livePrimaries() async throws -> [RedisServer] {
        guard let viewer = runningServers.first else { throw RedisServerError("no node is running") }
        let lines = try await nodes(from: viewer)
        let ports = Set(lines.filter { $0.isPrimary && !$0.isFailed && !$0.slots.isEmpty }.map(\.port))
        return runningServers.filter { ports.contains($0.port) }
    }

    private func waitForOwner(of slot: Int, toBe server: RedisServer, timeout: Duration) async throws {
        _ = try await TopologyWait.value(timeout: timeout, orFail: "node \(server.port) did not take over slot \(slot) within \(timeout)") {
            () async -> RedisServer? in
            guard let owner = try? await owner(ofSlot: slot), owner === server else { return nil }
            return owner
        }
    }

    private func myID(_ server: RedisServer) async throws -> String {
        guard let id = try await cli(server, ["CLUSTER", "MYID"]).first else { throw RedisServerError("CLUSTER MYID gave nothing") }
        return id
    }

    private func expectOK(_ lines: [String]) throws {
        guard lines.first == "OK" else { throw RedisServerError("expected OK, got \(lines.joined(separator: " "))") }
    }

    /// Runs `redis-cli` against `server` with the cluster's password.
    public func cli(_ server: RedisServer, _ arguments: [String]) async throws -> [String] {
        try await RedisServer.cli(port: server.port, password: options.password, arguments)
    }

    /// Stops every node. Idempotent.
    public func stop() {
        for server in servers { server.stop() }
    }
}

extension Duration {
    /// Whole milliseconds, for config lines.
    fileprivate var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
