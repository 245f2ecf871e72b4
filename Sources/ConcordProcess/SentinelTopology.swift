import Concord
import ConcordRedis
import Foundation

/// A master, its replicas and a group of Sentinels on free 127.0.0.1 ports, for tests, local
/// clusters and chaos runs: the smallest set-up in which Redis fails over by itself.
///
/// Every process is a `RedisServer` (Sentinels run `redis-server --sentinel`), so each can be
/// killed, paused and restarted like any test server. Control commands go through `redis-cli`
/// on the plaintext ports, which stay open next to the TLS ones.
public final class SentinelTopology: Sendable {
    /// How to start the topology.
    public struct Options: Sendable {
        public var masterName: String
        public var replicas: Int
        public var sentinels: Int
        public var quorum: Int
        /// How long the master may not answer before a Sentinel thinks it down.
        public var downAfter: Duration
        public var failoverTimeout: Duration
        /// `requirepass` of the master and replicas.
        public var password: String?
        /// `requirepass` of the Sentinels.
        public var sentinelPassword: String?
        /// Set: every server and Sentinel also listens with TLS, and replication and Sentinel's
        /// links use it; the URL is `rediss+sentinel://` on the Sentinels' TLS ports.
        public var tls: RedisServer.Options.TLS?

        public init(
            masterName: String = "mymaster",
            replicas: Int = 1,
            sentinels: Int = 3,
            quorum: Int = 2,
            downAfter: Duration = .milliseconds(1000),
            failoverTimeout: Duration = .seconds(5),
            password: String? = nil,
            sentinelPassword: String? = nil,
            tls: RedisServer.Options.TLS? = nil
        ) {
            self.masterName = masterName
            self.replicas = replicas
            self.sentinels = sentinels
            self.quorum = quorum
            self.downAfter = downAfter
            self.failoverTimeout = failoverTimeout
            self.password = password
            self.sentinelPassword = sentinelPassword
            self.tls = tls
        }
    }

    public let options: Options
    /// The data servers; the first was the master at start.
    public let servers: [RedisServer]
    public let sentinels: [RedisServer]

    private init(options: Options, servers: [RedisServer], sentinels: [RedisServer]) {
        self.options = options
        self.servers = servers
        self.sentinels = sentinels
    }

    deinit {
        stop()
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,.../masterName` (or `rediss+sentinel://` on
    /// the TLS ports), with the data servers' password when they have one.
    public var url: String {
        let scheme = options.tls == nil ? "redis+sentinel" : "rediss+sentinel"
        let credentials = options.password.map { ":\(Self.percentEncoded($0))@" } ?? ""
        let hosts = sentinels.map { "127.0.0.1:\(clientPort(of: $0))" }.joined(separator: ",")
        return "\(scheme)://\(credentials)\(hosts)/\(options.masterName)"
    }

    /// A client configuration that reaches the master through these Sentinels.
    public func configuration(tls: RedisConfiguration.TLS? = nil) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        if let tls { configuration.tls = tls }
        configuration.sentinel?.username = nil
        configuration.sentinel?.password = options.sentinelPassword
        return configuration
    }

    /// The port clients use: the TLS port when there is one.
    public func clientPort(of server: RedisServer) -> Int {
        server.tlsPort ?? server.port
    }

    // MARK: Starting

    /// Starts the master, its replicas (each in sync) and the Sentinels (each aware of the
    /// others and of every replica), and returns once a failover could happen.
    public static func start(_ options: Options = .init(), timeout: Duration = .seconds(30)) async throws -> SentinelTopology {
        var started: [RedisServer] = []
        do {
            let master = try await RedisServer.start(serverOptions(options, replicaOf: nil))
            started.append(master)
            var servers = [master]
            for _ in 0..<options.replicas {
                let replica = try await RedisServer.start(serverOptions(options, replicaOf: master))
                started.append(replica)
                servers.append(replica)
            }
            var sentinels: [RedisServer] = []
            for _ in 0..<options.sentinels {
                var sentinelOptions = RedisServer.Options(
                    requirePassword: options.sentinelPassword, tls: options.tls,
                    sentinel: .init(
                        masterName: options.masterName, masterPort: master.tlsPort ?? master.port, quorum: options.quorum,
                        downAfter: options.downAfter, failoverTimeout: options.failoverTimeout, masterPassword: options.password))
                sentinelOptions.extraConfig = ["sentinel resolve-hostnames no"]
                let sentinel = try await RedisServer.start(sentinelOptions)
                started.append(sentinel)
                sentinels.append(sentinel)
            }
            let topology = SentinelTopology(options: options, servers: servers, sentinels: sentinels)
            try await topology.waitUntilReady(timeout: timeout)
            return topology
        } catch {
            for server in started { server.stop() }
            throw error
        }
    }

    static func serverOptions(_ options: Options, replicaOf master: RedisServer?) -> RedisServer.Options {
        var serverOptions = RedisServer.Options(requirePassword: options.password, tls: options.tls)
        // A replica (re)joining gets its full sync at once instead of after the default 5 s
        // wait for other replicas: failovers and heals then take seconds, not tens of seconds.
        serverOptions.extraConfig.append("repl-diskless-sync-delay 0")
        if let password = options.password {
            serverOptions.extraConfig.append("masterauth \"\(password)\"")
        }
        if let master {
            serverOptions.extraConfig.append("replicaof 127.0.0.1 \(master.tlsPort ?? master.port)")
        }
        return serverOptions
    }

    /// Waits until every Sentinel sees the master, every replica and every other Sentinel.
    public func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let ready = await Retry.until(backoff: .fixed(.milliseconds(100)), limit: .duration(timeout)) {
            var ready = true
            for sentinel in sentinels {
                let fields = try? await masterState(from: sentinel)
                let replicas = fields?["num-slaves"].flatMap { Int($0) } ?? 0
                let others = fields?["num-other-sentinels"].flatMap { Int($0) } ?? 0
                if replicas < options.replicas || others < sentinels.count - 1 || fields?["flags"] != "master" {
                    ready = false
                    break
                }
                // Counted is not enough: a Sentinel promotes only a replica it is linked to and
                // has had INFO from (it answers NOGOODSLAVE before that), which comes a tick
                // after the master's INFO names the replica.
                let promotable = (try? await replicaStates(from: sentinel))?.filter(Self.isPromotable).count ?? 0
                if promotable < options.replicas {
                    ready = false
                    break
                }
            }
            return ready
        }
        try Task.checkCancellation()
        if ready { return }
        throw RedisServerError("the Sentinels did not all see the master, \(options.replicas) replica(s) and each other within \(timeout)")
    }

    // MARK: Inspecting

    /// `SENTINEL master <name>` from `sentinel`, as a field → value map.
    public func masterState(from sentinel: RedisServer) async throws -> [String: String] {
        let lines = try await cli(sentinel, ["SENTINEL", "master", options.masterName])
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < lines.count {
            fields[lines[index]] = lines[index + 1]
            index += 2
        }
        return fields
    }

    /// `SENTINEL replicas <name>` from `sentinel`: one field → value map per replica it knows.
    public func replicaStates(from sentinel: RedisServer) async throws -> [[String: String]] {
        // Empty values (a run id not yet known) are kept so that fields and values stay paired.
        let lines = try await cli(sentinel, ["SENTINEL", "replicas", options.masterName], keepingEmptyLines: true)
        var replicas: [[String: String]] = []
        var index = 0
        while index + 1 < lines.count {
            if lines[index] == "name" { replicas.append([:]) }
            if !replicas.isEmpty { replicas[replicas.count - 1][lines[index]] = lines[index + 1] }
            index += 2
        }
        return replicas
    }

    /// Whether a Sentinel would pick this replica in a failover: linked, not down, and its INFO
    /// (which carries the run id) received.
    static func isPromotable(_ replica: [String: String]) -> Bool {
        replica["flags"] == "slave" && !(replica["runid"] ?? "").isEmpty
    }

    /// The port the Sentinels currently give for the master, from the first that answers.
    public func masterPort() async throws -> Int {
        var lastError: (any Error)?
        for sentinel in sentinels where sentinel.processIdentifier != nil {
            do {
                let lines = try await cli(sentinel, ["SENTINEL", "get-master-addr-by-name", options.masterName])
                if lines.count == 2, let port = Int(lines[1]) { return port }
            } catch {
                lastError = error
            }
        }
        throw RedisServerError("no Sentinel named the master: \(lastError.map { "\($0)" } ?? "no answer")")
    }

    /// The server the Sentinels currently name as master.
    public func master() async throws -> RedisServer {
        let port = try await masterPort()
        guard let server = servers.first(where: { clientPort(of: $0) == port }) else {
            throw RedisServerError("the Sentinels name port \(port), which is none of this topology's servers")
        }
        return server
    }

    /// `ROLE` of `server`'s first field: "master" or "slave"; nil while it does not answer.
    public func role(of server: RedisServer) async -> String? {
        guard server.processIdentifier != nil else { return nil }
        return try? await cli(server, ["ROLE"]).first
    }

    /// Waits until the Sentinels name a master other than `previous`, and that server says ROLE master.
    @discardableResult
    public func waitForNewMaster(replacing previous: RedisServer, timeout: Duration = .seconds(30)) async throws -> RedisServer {
        try await TopologyWait.value(timeout: timeout, orFail: "no new master replaced port \(clientPort(of: previous)) within \(timeout)") {
            guard let current = try? await master(), current !== previous, await role(of: current) == "master" else { return nil }
            return current
        }
    }

    /// Waits until the topology is whole again: every running Sentinel names the same master,
    /// which says ROLE master, and every other server replicates from it with its link up.
    public func waitUntilWhole(timeout: Duration = .seconds(60)) async throws {
        try await TopologyWait.untilNoProblem("the Sentinel topology was not whole", timeout: timeout) { await wholeness() }
    }

    /// nil when whole; otherwise what is still missing.
    private func wholeness() async -> String? {
        var named = Set<Int>()
        for sentinel in sentinels where sentinel.processIdentifier != nil {
            guard let lines = try? await cli(sentinel, ["SENTINEL", "get-master-addr-by-name", options.masterName]),
                lines.count == 2, let port = Int(lines[1])
            else { return "Sentinel \(sentinel.port) names no master" }
            named.insert(port)
        }
        guard named.count == 1, let port = named.first else { return "the Sentinels disagree on the master: \(named.sorted())" }
        guard let master = servers.first(where: { clientPort(of: $0) == port }) else { return "the master's port \(port) is unknown" }
        guard await role(of: master) == "master" else { return "port \(port) is named master but its ROLE is not master" }
        for server in servers where server !== master {
            guard server.processIdentifier != nil else { return "server \(clientPort(of: server)) is not running" }
            guard let info = try? await cli(server, ["INFO", "replication"]) else { return "server \(clientPort(of: server)) does not answer" }
            let fields = Dictionary(
                info.compactMap { line -> (String, String)? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2 else { return nil }
                    return (String(parts[0]), parts[1].trimmingCharacters(in: .whitespacesAndNewlines))
                }, uniquingKeysWith: { first, _ in first })
            guard fields["role"] == "slave", fields["master_port"] == "\(port)", fields["master_link_status"] == "up" else {
                return "server \(clientPort(of: server)) is not yet an in-sync replica of \(port)"
            }
        }
        return nil
    }

    // MARK: Faults

    /// `SENTINEL FAILOVER`: a graceful failover that needs no agreement; returns the new master.
    @discardableResult
    public func failover(timeout: Duration = .seconds(30)) async throws -> RedisServer {
        let previous = try await master()
        // NOGOODSLAVE (no replica linked and reported yet, e.g. one just restarted) or INPROG
        // (an earlier failover still running): the failover can be asked for again.
        struct Passing: Error { let error: any Error }
        do {
            return try await Retry.run(backoff: .fixed(.milliseconds(100)), limit: .duration(timeout), isRetryable: { $0 is Passing }) { _ in
                var lastError: (any Error)?
                var passing = false
                for sentinel in sentinels where sentinel.processIdentifier != nil {
                    do {
                        let reply = try await cli(sentinel, ["SENTINEL", "FAILOVER", options.masterName])
                        guard reply.first == "OK" else {
                            let text = reply.joined(separator: " ")
                            if text.hasPrefix("NOGOODSLAVE") || text.hasPrefix("INPROG") { passing = true }
                            throw RedisServerError("SENTINEL FAILOVER: \(text)")
                        }
                        return try await waitForNewMaster(replacing: previous, timeout: timeout)
                    } catch {
                        lastError = error
                    }
                }
                let error = lastError ?? RedisServerError("no Sentinel running")
                throw passing ? Passing(error: error) : error
            }
        } catch let passing as Passing {
            throw passing.error
        }
    }

    /// Brings a killed server back as a replica of the current master, as an operator (or a
    /// process supervisor plus Sentinel) would: it rejoins with the master's data.
    public func restartAsReplica(_ server: RedisServer) async throws {
        let current = try await master()
        try await server.restart(extraConfig: ["replicaof 127.0.0.1 \(clientPort(of: current))"])
    }

    /// Runs `redis-cli` against `server`'s plaintext port and returns its output lines.
    public func cli(_ server: RedisServer, _ arguments: [String], keepingEmptyLines: Bool = false) async throws -> [String] {
        let password = sentinels.contains(where: { $0 === server }) ? options.sentinelPassword : options.password
        return try await RedisServer.cli(port: server.port, password: password, arguments, keepingEmptyLines: keepingEmptyLines)
    }

    /// Stops every process. Idempotent.
    public func stop() {
        for sentinel in sentinels { sentinel.stop() }
        for server in servers { server.stop() }
    }

    private static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

extension RedisServer {
    /// Runs `redis-cli -p port [args]` and returns its output lines; for control commands in
    /// tests and tools, not for traffic. The password goes through the environment. Empty
    /// lines (empty values) are dropped unless `keepingEmptyLines`. `timeout` bounds the whole
    /// run; commands that wait on the servers (`--cluster create` waits for the join) need more
    /// than the default on a loaded machine.
    public static func cli(
        port: Int, password: String?, _ arguments: [String], keepingEmptyLines: Bool = false,
        timeout: Duration = .seconds(10)
    ) async throws -> [String] {
        guard let executable = ExecutableSearch.locate("redis-cli") else {
            throw RedisServerError("redis-cli not found in PATH (install redis-tools)")
        }
        var environment: [String: String]?
        if let password {
            var variables = ProcessInfo.processInfo.environment
            variables["REDISCLI_AUTH"] = password
            environment = variables
        }
        let output = try await HelperProgram.run(
            executable, ["-h", "127.0.0.1", "-p", "\(port)"] + arguments, environment: environment, timeout: timeout)
        let text = output.standardOutput
        guard output.status == 0, !text.hasPrefix("Could not connect") else {
            throw RedisServerError("redis-cli \(arguments.joined(separator: " ")) on port \(port): \(text)\(output.standardError)")
        }
        // "\r\n" is one Character in Swift, so split on every kind of line end.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return keepingEmptyLines ? lines : lines.filter { !$0.isEmpty }
    }
}
