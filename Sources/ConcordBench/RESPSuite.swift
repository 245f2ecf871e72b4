import ConcordProcess
import Foundation

/// The `resp` suite: `redis-benchmark` against a `concord node --resp-port` and against
/// redis-server itself, alternating in the same run with the same parameters. GET reads a key
/// the node holds in L1 (hits); SET writes through the node (L2 write, then publish).
struct RESPSuite: Sendable {
    /// How much to measure.
    struct Configuration: Sendable {
        /// Requests per redis-benchmark run.
        var requests = 200_000
        /// Each figure is measured this many times on each side, alternating.
        var rounds = 3
        /// The `concord` executable to start the node from; nil for this one.
        var concordExecutable: String?

        init() {}

        /// One short round of each, for a smoke test.
        static var quick: Configuration {
            var configuration = Configuration()
            configuration.requests = 20_000
            configuration.rounds = 1
            return configuration
        }
    }

    var configuration: Configuration

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// One comparison: the redis-benchmark test, its parameters, and the target ratio.
    struct Case {
        var name: String
        var test: String
        var clients: Int
        var pipeline: Int
        var requestScale: Int
        var target: Double
    }

    static let cases = [
        Case(name: "GET on L1 hits, -c 50", test: "get", clients: 50, pipeline: 1, requestScale: 1, target: 1.0),
        Case(name: "GET on L1 hits, -c 50 -P 16", test: "get", clients: 50, pipeline: 16, requestScale: 8, target: 1.0),
        Case(name: "SET, -c 50", test: "set", clients: 50, pipeline: 1, requestScale: 1, target: 0.5),
    ]

    func run() async throws -> [BenchResult] {
        try await BenchServices.withServer { redis in
            let httpPort = try FreePort.next()
            let respPort = try FreePort.next()
            let node = try NodeProcess.launch(
                name: "bench-resp", executable: configuration.concordExecutable ?? NodeProcess.currentExecutable(),
                arguments: [
                    "node", "--id", "bench-resp", "--port", String(httpPort), "--resp-port", String(respPort),
                    "--redis", redis.url, "--log-level", "error", "--duration", "1h",
                ])
            do {
                let results = try await measure(redis: redis, respPort: respPort)
                await node.stop(grace: .seconds(5))
                return results
            } catch {
                await node.stop(grace: .seconds(5))
                throw error
            }
        }
    }

    private func measure(redis: RedisServer, respPort: Int) async throws -> [BenchResult] {
        try await BenchPort.waitUntilAccepting(respPort)
        // The key redis-benchmark reads (`key:__rand_int__` without -r), on both sides.
        for port in [respPort, redis.port] {
            _ = try await LoadGenerator.redisBenchmark(port: port, test: "set", clients: 1, pipeline: 1, requests: 100)
        }
        var results: [BenchResult] = []
        for item in Self.cases {
            var concord: [Double] = []
            var reference: [Double] = []
            var ratios: [Double] = []
            let requests = configuration.requests * item.requestScale
            for _ in 0..<configuration.rounds {
                let server = try await LoadGenerator.redisBenchmark(port: redis.port, test: item.test, clients: item.clients, pipeline: item.pipeline, requests: requests)
                let front = try await LoadGenerator.redisBenchmark(port: respPort, test: item.test, clients: item.clients, pipeline: item.pipeline, requests: requests)
                reference.append(server.requestsPerSecond)
                concord.append(front.requestsPerSecond)
                ratios.append(front.requestsPerSecond / server.requestsPerSecond)
            }
            let ratio = BenchResult.Summary(ratios).median
            results.append(BenchResult(
                suite: "resp", name: item.name, value: .init(concord), unit: "ops/s",
                reference: .init(reference), ratio: ratio,
                target: "ratio >= \(BenchFormat.number(item.target, digits: 1))", met: ratio >= item.target,
                note: "redis-benchmark -t \(item.test) -c \(item.clients) -P \(item.pipeline) -n \(requests), against the node's RESP port and against redis-server (the node's own L2), alternating; per-round ratios \(ratios.map { BenchFormat.number($0, digits: 2) }.joined(separator: ", "))"))
        }
        return results
    }
}
