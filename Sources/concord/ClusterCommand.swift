import ArgumentParser
import ConcordNode
import ConcordProcess
import ConcordRedis
import Foundation
import Synchronization
import UnixSignals

/// `concord cluster`: a local cluster of N nodes (and a Redis when none is given), with their
/// logs on one screen, stopped together on Ctrl-C or SIGTERM.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run N local nodes on consecutive ports, and a redis-server (or a Sentinel set-up) when no --redis is given.",
        discussion: """
        Each node is a `concord node` child process. Their output is shown prefixed with the node \
        id. Ctrl-C or SIGTERM stops every process this command started; if a node exits on its \
        own, the others are stopped too and the command fails. Arguments after -- are passed to \
        every node, e.g. `concord cluster --nodes 3 -- --duration 10s`. With --topology sentinel \
        it starts a master, a replica and three Sentinels (redis-server --sentinel), and the nodes \
        find the master through the Sentinels (redis+sentinel://). With --topology cluster it \
        starts a Redis Cluster of three primaries and three replicas (redis-server \
        --cluster-enabled yes, created with redis-cli --cluster create), and the nodes reach it \
        through redis+cluster:// with every cluster node as a seed.
        """
    )

    @Option(help: "How many nodes")
    var nodes: Int = 3

    @Option(name: .customLong("base-port"), help: "Port of node n1; node nK listens on base-port + K - 1")
    var basePort: Int = 7001

    @Option(help: "Use this Redis instead of starting one (env CONCORD_REDIS; a password belongs in --redis-password-file after --, not here)")
    var redis: String?

    @Option(help: "What to start when no --redis is given: standalone (one redis-server), sentinel (master, replica, three Sentinels) or cluster (Redis Cluster: three primaries, three replicas)")
    var topology: String = "standalone"
    @Option(help: "Where L2 lives: redis (default), memcached (starts a local memcached; Redis carries only the backplane), or a memcached:// server list")
    var l2: String = "redis"

    @Option(help: "Origin for every node: sqlite:PATH")
    var origin: String?

    @Option(help: "Address the nodes listen on")
    var bind: String = "127.0.0.1"

    @Option(name: .customLong("start-timeout"), help: "How long each node may take to start listening")
    var startTimeout: String = "60s"

    @Argument(parsing: .postTerminator, help: "Extra `concord node` options for every node")
    var nodeArguments: [String] = []

    func validate() throws {
        guard (1...64).contains(nodes) else { throw ValidationError("--nodes must be between 1 and 64") }
        guard basePort >= 1, basePort + nodes - 1 <= 65_535 else { throw ValidationError("--base-port leaves no room for \(nodes) nodes") }
        guard DurationSyntax.parse(startTimeout) != nil else { throw ValidationError("--start-timeout: '\(startTimeout)' is not a duration") }
        guard ["standalone", "sentinel", "cluster"].contains(topology) else {
            throw ValidationError("--topology must be standalone, sentinel or cluster")
        }
        if topology != "standalone", redis != nil { throw ValidationError("--topology \(topology) starts its own Redis; leave out --redis") }
        guard ["redis", "memcached"].contains(l2) || l2.hasPrefix("memcached://") else {
            throw ValidationError("--l2 must be redis, memcached or a memcached:// URL, not '\(l2)'")
        }
    }

    func run() async throws {
        let console = Console()
        // Trap the signals before any child exists, so none can arrive unhandled in between.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let children = ChildProcesses()

        var server: RedisServer?
        var sentinel: SentinelTopology?
        var redisCluster: ClusterTopology?
        var memcached: MemcachedServer?
        let outcome: Result<String, any Error>
        do {
            var memcachedURL: String?
            if l2 == "memcached" {
                let started = try await MemcachedServer.start()
                memcached = started
                memcachedURL = started.url
                console.line("memcached \(started.url)  (memcached pid \(started.processIdentifier.map(String.init) ?? "?"))")
            } else if l2.hasPrefix("memcached://") {
                memcachedURL = l2
            }
            let redisURL: String
            if let given = redis ?? ProcessInfo.processInfo.environment["CONCORD_REDIS"].flatMap({ $0.isEmpty ? nil : $0 }) {
                redisURL = given
                console.line("redis   \(RedisConfiguration.redacted(url: given))")
            } else if topology == "sentinel" {
                let started = try await SentinelTopology.start()
                sentinel = started
                redisURL = started.url
                console.line("sentinel  \(redisURL)")
                for (index, process) in started.servers.enumerated() {
                    console.line("redis-\(index == 0 ? "master " : "replica") 127.0.0.1:\(process.port)  (pid \(process.processIdentifier.map(String.init) ?? "?"))")
                }
                for process in started.sentinels {
                    console.line("sentinel-port \(process.port)  (pid \(process.processIdentifier.map(String.init) ?? "?"))")
                }
            } else if topology == "cluster" {
                let started = try await ClusterTopology.start()
                redisCluster = started
                redisURL = started.url
                console.line("cluster   \(redisURL)")
                let primaries = try await started.livePrimaries()
                for process in started.servers {
                    let role = primaries.contains { $0 === process } ? "primary" : "replica"
                    console.line("redis-\(role) 127.0.0.1:\(process.port)  (pid \(process.processIdentifier.map(String.init) ?? "?"))")
                }
            } else {
                let started = try await RedisServer.start()
                server = started
                redisURL = started.url
                console.line("redis   \(redisURL)  (redis-server pid \(started.processIdentifier.map(String.init) ?? "?"), data in \(started.directory.path))")
            }
            try await startNodes(redisURL: redisURL, memcachedURL: memcachedURL, children: children, console: console)
            printTable(children.all, console: console)
            console.line("Ctrl-C stops the cluster.")
            outcome = .success(try await waitForStop(signals: signals, children: children))
        } catch {
            outcome = .failure(error)
        }

        // Every path ends here: stop what was started, nodes first (they flush to Redis), then Redis.
        await children.stopAll(console: console)
        server?.stop()
        sentinel?.stop()
        redisCluster?.stop()
        memcached?.stop()
        switch outcome {
        case .success(let reason):
            console.line("cluster stopped (\(reason))")
        case .failure(let error):
            throw error
        }
    }

    private func startNodes(redisURL: String, memcachedURL: String?, children: ChildProcesses, console: Console) async throws {
        let executable = NodeProcess.currentExecutable()
        var shared = ["--bind", bind, "--parent-pid", String(getpid())]
        if let memcachedURL { shared += ["--l2", memcachedURL] }
        if let origin { shared += ["--origin", origin] }
        // The Redis URL may carry credentials: it goes through the environment, which only the
        // child's user can read, never through argv, which `ps` shows to everyone.
        var environment = ProcessInfo.processInfo.environment
        environment[NodeOption.redis.environmentVariable] = redisURL
        for index in 1...nodes {
            let id = "n\(index)"
            let arguments = ["node", "--id", id, "--port", String(basePort + index - 1)] + shared + nodeArguments
            let child = try NodeProcess.launch(name: id, executable: executable, arguments: arguments, environment: environment) { line in
                console.line("[\(id)] \(line)")
            }
            children.add(child)
        }
        let timeout = DurationSyntax.parse(startTimeout) ?? .seconds(60)
        for child in children.all {
            do {
                _ = try await child.waitUntilListening(timeout: timeout)
            } catch {
                throw CommandFailure("node \(child.name) did not start; see its output above")
            }
        }
    }

    private func printTable(_ nodes: [NodeProcess], console: Console) {
        let host = bind.contains(":") ? "[\(bind)]" : bind
        var lines = ["", "NODE  URL                          PID"]
        for node in nodes {
            let url = "http://\(host):\(node.port ?? 0)"
            lines.append(node.name.padding(toLength: 6, withPad: " ", startingAt: 0) + url.padding(toLength: 29, withPad: " ", startingAt: 0) + String(node.processIdentifier))
        }
        lines.append("")
        console.line(lines.joined(separator: "\n"))
    }

    /// Waits for Ctrl-C/SIGTERM (a normal stop) or for a node to exit (a failure).
    private func waitForStop(signals: UnixSignalsSequence, children: ChildProcesses) async throws -> String {
        enum Event: Sendable {
            case signal(String)
            case nodeExited(String, Int32)
            case graceOver
        }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let stop = await withTaskGroup(of: Void.self) { group -> Event? in
            group.addTask {
                for await signal in signals {
                    continuation.yield(.signal("\(signal)"))
                    return
                }
            }
            for child in children.all {
                group.addTask {
                    if let status = try? await child.waitForExit() { continuation.yield(.nodeExited(child.name, status)) }
                }
            }
            var iterator = events.makeAsyncIterator()
            var first = await iterator.next()
            if case .nodeExited = first {
                // Ctrl-C in a terminal signals the whole process group, so the nodes may stop
                // just before this process sees its own SIGINT: that is still a normal stop.
                group.addTask {
                    try? await Task.sleep(for: .seconds(1))
                    continuation.yield(.graceOver)
                }
                while let next = await iterator.next() {
                    if case .signal = next { first = next; break }
                    if case .graceOver = next { break }
                }
            }
            group.cancelAll()
            continuation.finish()
            return first
        }
        switch stop {
        case .signal(let name)?:
            return "received \(name)"
        case .nodeExited(let name, let status)?:
            throw CommandFailure("node \(name) exited with status \(status); stopped the cluster")
        case .graceOver?, nil:
            return "signal stream ended"
        }
    }
}

/// The children started so far, stopped together. (An exit path that skips `stopAll` still
/// leaves none behind: `ConcordProcess` SIGKILLs every child not yet reaped at process exit.)
final class ChildProcesses: Sendable {
    private let children = Mutex<[NodeProcess]>([])

    var all: [NodeProcess] { children.withLock { $0 } }

    func add(_ child: NodeProcess) {
        children.withLock { $0.append(child) }
    }

    /// SIGTERM to all at once, SIGKILL to any still running after the grace period.
    func stopAll(console: Console) async {
        let running = all.filter(\.isRunning)
        guard !running.isEmpty else { return }
        console.line("stopping \(running.map(\.name).joined(separator: ", "))")
        await withTaskGroup(of: Void.self) { group in
            for child in running {
                group.addTask { await child.stop(grace: .seconds(10)) }
            }
        }
    }
}

/// Serializes output lines from many children so they do not interleave mid-line.
final class Console: Sendable {
    private let lock = Mutex(())

    func line(_ text: String) {
        lock.withLock { _ in
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }
}
