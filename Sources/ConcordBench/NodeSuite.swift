import ConcordProcess
import Foundation

/// The `node` suite: the node's HTTP API under wrk next to nginx serving the same bytes from a
/// static file (one worker), with the same wrk parameters, alternating in the same run; and a
/// hit's median latency at one connection next to `redis-benchmark -c 1` GET's against
/// redis-server, the round trip a sidecar hit has to beat.
///
/// The latency target is measured with `OneInFlightClient` (one thread, one blocking socket),
/// because wrk's own cost per request is larger than redis-benchmark's; the same client's RESP
/// GET against redis-server is shown next to it as the control that the client is as light as
/// redis-benchmark. wrk's median stays as a row of its own.
struct NodeSuite: Sendable {
    /// How much to measure.
    struct Configuration: Sendable {
        /// Seconds per wrk run.
        var seconds = 3
        /// Each figure is measured this many times on each side, alternating.
        var rounds = 3
        /// Requests per redis-benchmark run for the latency reference.
        var redisRequests = 30_000
        /// Each one-in-flight client run stops at this many measured requests or this long,
        /// whichever comes first.
        var leanBudget = BenchBudget(maxCount: 30_000, maxDuration: .seconds(3))
        /// The `concord` executable to start the node from; nil for this one.
        var concordExecutable: String?

        init() {}

        /// One short round of each, for a smoke test.
        static var quick: Configuration {
            var configuration = Configuration()
            configuration.seconds = 1
            configuration.rounds = 1
            configuration.redisRequests = 5_000
            configuration.leanBudget = BenchBudget(maxCount: 5_000, maxDuration: .milliseconds(500))
            return configuration
        }
    }

    var configuration: Configuration

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The value both servers return, 22 bytes as in the first measurements.
    static let value = "concord-bench-value-22"

    func run() async throws -> [BenchResult] {
        guard let nginxExecutable = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: FileManager.default.isExecutableFile(atPath:)) ?? ExecutableSearch.locate("nginx") else {
            throw BenchError("nginx is not installed (run scripts/setup.sh, which installs nginx-light)")
        }
        return try await BenchServices.withServer { redis in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-bench-nginx-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("root/v1/cache"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try Data(Self.value.utf8).write(to: directory.appendingPathComponent("root/v1/cache/bench"))
            try Data("{\"status\":\"ok\"}".utf8).write(to: directory.appendingPathComponent("root/health"))
            let nginxPort = try FreePort.next()
            let nodePort = try FreePort.next()
            let nginxConfiguration = """
                worker_processes 1;
                daemon off;
                pid \(directory.path)/nginx.pid;
                error_log \(directory.path)/error.log error;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    # One connection for the whole run, as the node keeps it (nginx closes after 1,000 requests by default).
                    keepalive_requests 100000000;
                    client_body_temp_path \(directory.path)/body;
                    proxy_temp_path \(directory.path)/proxy;
                    fastcgi_temp_path \(directory.path)/fastcgi;
                    uwsgi_temp_path \(directory.path)/uwsgi;
                    scgi_temp_path \(directory.path)/scgi;
                    default_type application/octet-stream;
                    server { listen 127.0.0.1:\(nginxPort); root \(directory.path)/root; }
                }
                """
            try Data(nginxConfiguration.utf8).write(to: directory.appendingPathComponent("nginx.conf"))
            let nginx = try ChildProcess.launch(
                name: "nginx", executable: nginxExecutable,
                arguments: ["-c", directory.appendingPathComponent("nginx.conf").path, "-p", directory.path])
            let node: NodeProcess
            do {
                node = try NodeProcess.launch(
                    name: "bench-http", executable: configuration.concordExecutable ?? NodeProcess.currentExecutable(),
                    arguments: [
                        "node", "--id", "bench-http", "--port", String(nodePort), "--redis", redis.url,
                        "--log-level", "error", "--duration", "1h",
                    ])
            } catch {
                _ = await nginx.stop(grace: .seconds(5))
                throw error
            }
            do {
                let results = try await measure(redis: redis, nginxPort: nginxPort, nodePort: nodePort)
                await node.stop(grace: .seconds(5))
                _ = await nginx.stop(grace: .seconds(5))
                return results
            } catch {
                await node.stop(grace: .seconds(5))
                _ = await nginx.stop(grace: .seconds(5))
                throw error
            }
        }
    }

    private func measure(redis: RedisServer, nginxPort: Int, nodePort: Int) async throws -> [BenchResult] {
        try await BenchPort.waitUntilAccepting(nginxPort)
        try await BenchPort.waitUntilAccepting(nodePort)
        try await put(port: nodePort, key: "bench", value: Self.value)
        var results: [BenchResult] = []
        var hitLatency: [Double] = []
        for (name, path, connections, target) in [
            ("GET L1 hit, 1 connection", "/v1/cache/bench", 1, 0.5),
            ("GET L1 hit, 50 connections", "/v1/cache/bench", 50, 0.5),
            ("GET /health, 1 connection", "/health", 1, 0.5),
        ] {
            var concord: [Double] = []
            var reference: [Double] = []
            var ratios: [Double] = []
            for _ in 0..<configuration.rounds {
                let server = try await LoadGenerator.wrk(url: "http://127.0.0.1:\(nginxPort)\(path)", connections: connections, seconds: configuration.seconds)
                let front = try await LoadGenerator.wrk(url: "http://127.0.0.1:\(nodePort)\(path)", connections: connections, seconds: configuration.seconds)
                reference.append(server.requestsPerSecond)
                concord.append(front.requestsPerSecond)
                ratios.append(front.requestsPerSecond / server.requestsPerSecond)
                if path == "/v1/cache/bench", connections == 1 { hitLatency.append(front.p50Microseconds) }
            }
            let ratio = BenchResult.Summary(ratios).median
            results.append(BenchResult(
                suite: "node", name: name, value: .init(concord), unit: "req/s", reference: .init(reference), ratio: ratio,
                target: "ratio >= \(BenchFormat.number(target, digits: 1))", met: ratio >= target,
                note: "wrk -t1 -c\(connections) -d\(configuration.seconds)s, node vs nginx (1 worker, static file of the same \(Self.value.utf8.count) bytes), alternating; per-round ratios \(ratios.map { BenchFormat.number($0, digits: 2) }.joined(separator: ", "))"))
        }

        results += try await measureLatency(redis: redis, nginxPort: nginxPort, nodePort: nodePort, wrkHitLatency: hitLatency)
        return results
    }

    /// The key redis-benchmark's GET reads (it does not randomize keys unless told to).
    static let redisBenchmarkKey = "key:__rand_int__"

    /// A hit's p50 at one connection, the round trip to Redis it must beat, and the controls.
    ///
    /// Each round runs four one-connection measurements back to back, in an order that rotates
    /// with the round: the one-in-flight client against the node (HTTP GET of the hit) and
    /// against nginx (the same bytes), the same client's RESP GET against redis-server, and
    /// `redis-benchmark -c 1 -t get` against the same redis-server.
    private func measureLatency(redis: RedisServer, nginxPort: Int, nodePort: Int, wrkHitLatency: [Double]) async throws -> [BenchResult] {
        // redis-benchmark's SET writes its 3-byte value under the key its GET reads.
        _ = try await LoadGenerator.redisBenchmark(port: redis.port, test: "set", clients: 1, pipeline: 1, requests: 10)
        let nodeClient = OneInFlightClient.http(port: nodePort, path: "/v1/cache/bench")
        let nginxClient = OneInFlightClient.http(port: nginxPort, path: "/v1/cache/bench")
        let redisClient = OneInFlightClient.respGet(port: redis.port, key: Self.redisBenchmarkKey)
        var node: [Double] = []
        var nginx: [Double] = []
        var lean: [Double] = []
        var benchmark: [Double] = []
        let budget = configuration.leanBudget
        for round in 0..<configuration.rounds {
            var figures = [0.0, 0.0, 0.0, 0.0]
            for step in 0..<4 {
                let side = (step + round) % 4
                switch side {
                case 0: figures[0] = try await measure(nodeClient, "the node", budget: budget)
                case 1: figures[1] = try await measure(nginxClient, "nginx", budget: budget)
                case 2: figures[2] = try await measure(redisClient, "redis-server", budget: budget)
                default:
                    figures[3] = try await LoadGenerator.redisBenchmark(
                        port: redis.port, test: "get", clients: 1, pipeline: 1, requests: configuration.redisRequests).p50Microseconds
                }
            }
            node.append(figures[0])
            nginx.append(figures[1])
            lean.append(figures[2])
            benchmark.append(figures[3])
        }
        func ratios(_ value: [Double], _ reference: [Double]) -> [Double] { zip(value, reference).map { $0 / $1 } }
        func median(_ values: [Double]) -> Double { BenchResult.Summary(values).median }
        func listed(_ values: [Double]) -> String { values.map { BenchFormat.number($0, digits: 2) }.joined(separator: ", ") }
        let target = ratios(node, benchmark)
        let control = ratios(lean, benchmark)
        let client = "one-in-flight client (one thread, one blocking socket, write request / read whole response, \(budget.maxCount) requests or \(budget.maxDuration) per run)"
        return [
            BenchResult(
                suite: "node", name: "GET L1 hit p50, 1 connection", value: .init(node), unit: "µs", reference: .init(benchmark),
                ratio: median(target), target: "< redis-benchmark -c 1 GET p50", met: median(target) < 1,
                note: "the node's hit through the \(client) against redis-benchmark -c 1 -t get's p50 on redis-server; per-round ratios \(listed(target)); the control row below is the client's own weight"),
            BenchResult(
                suite: "node", name: "control: RESP GET p50, 1 connection, same client against redis-server", value: .init(lean), unit: "µs",
                reference: .init(benchmark), ratio: median(control), target: "- (control: about 1 when the client weighs what redis-benchmark does)", met: nil,
                note: "the same one-in-flight client sending RESP GET \(Self.redisBenchmarkKey) to redis-server, against redis-benchmark -c 1 -t get on the same key and server; per-round ratios \(listed(control))"),
            BenchResult(
                suite: "node", name: "GET L1 hit p50 against RESP GET p50, both through the same client", value: .init(node), unit: "µs",
                reference: .init(lean), ratio: median(ratios(node, lean)), target: "- (diagnostic)", met: nil,
                note: "one client on both sides: the node's HTTP hit against redis-server's GET; per-round ratios \(listed(ratios(node, lean)))"),
            BenchResult(
                suite: "node", name: "GET L1 hit p50 against nginx, both through the same client", value: .init(node), unit: "µs",
                reference: .init(nginx), ratio: median(ratios(node, nginx)), target: "- (diagnostic)", met: nil,
                note: "nginx (1 worker) serving the same \(Self.value.utf8.count) bytes from a static file; per-round ratios \(listed(ratios(node, nginx)))"),
            BenchResult(
                suite: "node", name: "GET L1 hit p50, 1 connection, wrk", value: .init(wrkHitLatency), unit: "µs", reference: .init(benchmark),
                ratio: median(wrkHitLatency) / median(benchmark), target: "- (diagnostic)", met: nil,
                note: "wrk -t1 -c1's median (from the 1-connection throughput runs above) against redis-benchmark -c 1 -t get's p50: wrk's own cost per request is larger than redis-benchmark's, so this row is not the target"),
        ]
    }

    private func measure(_ client: OneInFlightClient, _ server: String, budget: BenchBudget) async throws -> Double {
        do {
            return try await client.measure(budget: budget).percentileMicroseconds(0.5)
        } catch let error as OneInFlightClientError {
            throw BenchError("one-in-flight client against \(server): \(error)")
        }
    }

    /// Stores the bench value through the node's HTTP API (`concord set`), so that GETs hit L1.
    func put(port: Int, key: String, value: String) async throws {
        let output = try await HelperProgram.run(
            configuration.concordExecutable ?? NodeProcess.currentExecutable(),
            ["set", key, value, "--node", "http://127.0.0.1:\(port)"], timeout: .seconds(30))
        guard output.status == 0 else { throw BenchError("concord set on the node failed: \(output.standardError)") }
    }
}
