import ConcordProcess
import Foundation

/// The `node` suite: the node's HTTP API under wrk next to nginx serving the same bytes from a
/// static file (one worker), with the same wrk parameters, alternating in the same run; and a
/// hit's median latency at one connection next to `redis-benchmark -c 1` GET's against
/// redis-server, the round trip a sidecar hit has to beat.
struct NodeSuite: Sendable {
    /// How much to measure.
    struct Configuration: Sendable {
        /// Seconds per wrk run.
        var seconds = 3
        /// Each figure is measured this many times on each side, alternating.
        var rounds = 3
        /// Requests per redis-benchmark run for the latency reference.
        var redisRequests = 30_000
        /// The `concord` executable to start the node from; nil for this one.
        var concordExecutable: String?

        init() {}

        /// One short round of each, for a smoke test.
        static var quick: Configuration {
            var configuration = Configuration()
            configuration.seconds = 1
            configuration.rounds = 1
            configuration.redisRequests = 5_000
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

        // The round trip to Redis that a sidecar hit must beat.
        _ = try await LoadGenerator.redisBenchmark(port: redis.port, test: "set", clients: 1, pipeline: 1, requests: 10)
        var redisLatency: [Double] = []
        for _ in 0..<configuration.rounds {
            redisLatency.append(try await LoadGenerator.redisBenchmark(port: redis.port, test: "get", clients: 1, pipeline: 1, requests: configuration.redisRequests).p50Microseconds)
        }
        let hit = BenchResult.Summary(hitLatency)
        let round = BenchResult.Summary(redisLatency)
        results.append(BenchResult(
            suite: "node", name: "GET L1 hit p50, 1 connection", value: hit, unit: "µs", reference: round,
            ratio: hit.median / round.median, target: "< redis-benchmark -c 1 GET p50", met: hit.median < round.median,
            note: "wrk's median at -c1 against redis-benchmark -c 1 -t get's p50 (redis-benchmark reports in steps of 8 µs or more)"))
        return results
    }

    /// Stores the bench value through the node's HTTP API (`concord set`), so that GETs hit L1.
    func put(port: Int, key: String, value: String) async throws {
        let output = try await HelperProgram.run(
            configuration.concordExecutable ?? NodeProcess.currentExecutable(),
            ["set", key, value, "--node", "http://127.0.0.1:\(port)"], timeout: .seconds(30))
        guard output.status == 0 else { throw BenchError("concord set on the node failed: \(output.standardError)") }
    }
}
