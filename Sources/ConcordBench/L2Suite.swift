import ConcordRedis
import ConcordProcess
import Foundation
import Logging

/// The `l2` suite: GET throughput of Concord's `RedisClient` with 1 and 50 concurrent callers,
/// next to `redis-benchmark -t get` with as many connections and no pipelining, on the same
/// server, key and value.
///
/// The two differ in what they are: redis-benchmark opens one connection per client and waits
/// for each reply before sending the next; Concord multiplexes every caller on one connection
/// and pipelines whatever is queued. At 1 caller both are bound by the round trip; at 50,
/// Concord's batching should win.
struct L2Suite: Sendable {
    /// What to measure and for how long.
    struct Configuration: Sendable {
        var concurrencies = [1, 50]
        var rounds = 3
        /// Each side of each round runs for about this long.
        var roundDuration: Duration = .seconds(1)
        var maxOperationsPerRound = 5_000_000
        /// The value stored under the key both sides read, in bytes.
        var valueSize = 64
        /// Also measures GETs over TLS against the same client without TLS, on one server (which
        /// listens both ways), rounds alternating: the cost of TLS, with certificates made for the run.
        var tls = false
        /// Also measures GETs through the Redis Cluster client, on a cluster of three primaries,
        /// after the standalone server, in the same run; redis-benchmark then reads the same key
        /// from the primary that owns its slot.
        var cluster = false

        init() {}

        static var quick: Configuration {
            var configuration = Configuration()
            configuration.rounds = 1
            configuration.roundDuration = .milliseconds(250)
            return configuration
        }
    }

    /// The key redis-benchmark reads when not told to randomize keys.
    static let key = "key:__rand_int__"

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.l2")) {
        self.configuration = configuration
        self.logger = logger
    }

    func run() async throws -> [BenchResult] {
        let standalone = try await runStandalone()
        guard configuration.cluster, let tool = ExecutableSearch.locate("redis-benchmark") else { return standalone }
        let topology: ClusterTopology
        do {
            topology = try await ClusterTopology.start(.init(primaries: 3, replicasPerPrimary: 0))
        } catch {
            throw BenchError("cannot start a Redis Cluster (run scripts/setup.sh): \(error)")
        }
        defer { topology.stop() }
        let client = RedisClient(configuration: try topology.configuration(), logger: logger)
        let clustered = try await BenchServices.withRunning([{ try await client.run() }]) {
            try await client.waitUntilConnected(timeout: .seconds(5))
            let value = [UInt8](repeating: UInt8(ascii: "x"), count: configuration.valueSize)
            _ = try await client.send("SET", RedisArgument(Self.key), RedisArgument(value))
            let owner = try await topology.owner(ofSlot: ClusterHashSlot.slot(of: Self.key))
            var results: [BenchResult] = []
            for concurrency in configuration.concurrencies {
                results += try await measure(concurrency: concurrency, client: client, tool: tool, port: owner.port, label: " on Redis Cluster")
            }
            return results
        }
        return standalone + clustered
            + BenchResult.versus(clustered, standalone, suffix: " on Redis Cluster", suite: "l2", what: "Redis Cluster client against the standalone client")
    }

    private func runStandalone() async throws -> [BenchResult] {
        guard let tool = ExecutableSearch.locate("redis-benchmark") else {
            throw BenchError("redis-benchmark is not installed (it comes with redis-tools; run scripts/setup.sh)")
        }
        let certificates = configuration.tls ? try await TestCertificates.generate() : nil
        defer { certificates?.remove() }
        return try await BenchServices.withServer(RedisServer.Options(tls: certificates.map { RedisServer.Options.TLS($0) })) { server in
            let client = RedisClient(configuration: server.configuration(), logger: logger)
            let tlsClient = certificates.map { RedisClient(configuration: server.tlsConfiguration($0.clientTLS), logger: logger) }
            var services: [@Sendable () async throws -> Void] = [{ try await client.run() }]
            if let tlsClient { services.append { try await tlsClient.run() } }
            return try await BenchServices.withRunning(services) {
                try await client.waitUntilConnected(timeout: .seconds(5))
                try await tlsClient?.waitUntilConnected(timeout: .seconds(5))
                let value = [UInt8](repeating: UInt8(ascii: "x"), count: configuration.valueSize)
                _ = try await client.send("SET", RedisArgument(Self.key), RedisArgument(value))
                var results: [BenchResult] = []
                for concurrency in configuration.concurrencies {
                    results += try await measure(concurrency: concurrency, client: client, tool: tool, port: server.port)
                    if let tlsClient {
                        results.append(try await measureTLS(concurrency: concurrency, plain: client, tls: tlsClient))
                    }
                }
                return results
            }
        }
    }

    /// The same GET loop through a TLS client and through a plaintext one, alternating rounds.
    private func measureTLS(concurrency: Int, plain: RedisClient, tls: RedisClient) async throws -> BenchResult {
        let warmUp = BenchBudget(maxCount: 2_000, maxDuration: .milliseconds(100))
        _ = try await concordRate(client: tls, concurrency: concurrency, budget: warmUp)
        let budget = BenchBudget(maxCount: configuration.maxOperationsPerRound, maxDuration: configuration.roundDuration)
        var withTLS: [Double] = []
        var without: [Double] = []
        var ratios: [Double] = []
        for round in 0..<configuration.rounds {
            var rates = [0.0, 0.0]
            for step in 0..<2 {
                let side = (step + round) % 2
                rates[side] = try await concordRate(client: side == 0 ? tls : plain, concurrency: concurrency, budget: budget)
            }
            withTLS.append(rates[0])
            without.append(rates[1])
            ratios.append(rates[0] / rates[1])
        }
        let plural = concurrency == 1 ? "" : "s"
        return BenchResult(
            suite: "l2",
            name: "GET over TLS, \(concurrency) concurrent caller\(plural)",
            value: BenchResult.Summary(withTLS),
            unit: "ops/s",
            reference: BenchResult.Summary(without),
            ratio: BenchResult.Summary(ratios).median,
            target: "- (diagnostic)",
            met: nil,
            note: "reference: the same client without TLS, same server, rounds alternating; TLS 1.3 through swift-nio-ssl, P-256 certificates"
        )
    }

    private func measure(
        concurrency: Int,
        client: RedisClient,
        tool: String,
        port: Int,
        label: String = ""
    ) async throws -> [BenchResult] {
        // A short calibration run sizes redis-benchmark's request count to the round duration,
        // since it can only be bounded by count.
        let calibration = try await redisBenchmark(tool: tool, port: port, clients: concurrency, requests: max(2_000, 200 * concurrency))
        var requests = Int(calibration * Double(BenchClock.nanoseconds(configuration.roundDuration)) / 1e9)
        requests = min(max(requests, 1_000), configuration.maxOperationsPerRound)
        // Warm both clients' paths.
        let warmUp = BenchBudget(maxCount: 2_000, maxDuration: .milliseconds(100))
        _ = try await concordRate(client: client, concurrency: concurrency, budget: warmUp)
        _ = try await concordRate(client: client, concurrency: concurrency, budget: warmUp, executor: client.taskExecutor)

        var concord: [Double] = []
        var reference: [Double] = []
        var onLoopRates: [Double] = []
        var ratios: [Double] = []
        var onLoopRatios: [Double] = []
        let budget = BenchBudget(maxCount: configuration.maxOperationsPerRound, maxDuration: configuration.roundDuration)
        for round in 0..<configuration.rounds {
            // The order of the sides rotates with the round, so none always runs first.
            var rates = [0.0, 0.0, 0.0]
            for step in 0..<3 {
                let side = (step + round) % 3
                switch side {
                case 0: rates[0] = try await concordRate(client: client, concurrency: concurrency, budget: budget)
                case 1: rates[1] = try await redisBenchmark(tool: tool, port: port, clients: concurrency, requests: requests)
                default: rates[2] = try await concordRate(client: client, concurrency: concurrency, budget: budget, executor: client.taskExecutor)
                }
            }
            concord.append(rates[0])
            reference.append(rates[1])
            onLoopRates.append(rates[2])
            ratios.append(rates[0] / rates[1])
            onLoopRatios.append(rates[2] / rates[1])
        }
        let target = concurrency == 1 ? 0.9 : 1.5
        let ratio = BenchResult.Summary(ratios).median
        let plural = concurrency == 1 ? "" : "s"
        return [
            BenchResult(
                suite: "l2",
                name: "GET, \(concurrency) concurrent caller\(plural)\(label)",
                value: BenchResult.Summary(concord),
                unit: "ops/s",
                reference: BenchResult.Summary(reference),
                ratio: ratio,
                target: "ratio >= \(target)",
                met: ratio >= target,
                note: "reference: redis-benchmark -t get -c \(concurrency) -P 1, \(configuration.valueSize)-byte value; callers on Swift's global executor"
            ),
            BenchResult(
                suite: "l2",
                name: "GET, \(concurrency) caller\(plural) on the connection's event loop\(label)",
                value: BenchResult.Summary(onLoopRates),
                unit: "ops/s",
                reference: BenchResult.Summary(reference),
                ratio: BenchResult.Summary(onLoopRatios).median,
                target: "- (diagnostic)",
                met: nil,
                note: "the same client, callers run with executorPreference: client.taskExecutor (its event loop): no thread hand-off per command"
            ),
        ]
    }

    /// GETs per second from `concurrency` tasks sharing the client, within the budget.
    func concordRate(client: RedisClient, concurrency: Int, budget: BenchBudget, executor: (any TaskExecutor)? = nil) async throws -> Double {
        let perTask = max(1, budget.maxCount / concurrency)
        let begin = BenchClock.nanoseconds()
        let deadline = begin &+ BenchClock.nanoseconds(budget.maxDuration)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask(executorPreference: executor) {
                    var done = 0
                    while done < perTask {
                        for _ in 0..<16 {
                            let reply = try await client.send("GET", RedisArgument(Self.key))
                            guard !reply.isNull else { throw BenchError("the benchmark key vanished from Redis") }
                        }
                        done += 16
                        if BenchClock.nanoseconds() >= deadline { break }
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = BenchClock.nanoseconds() &- begin
        return Double(total) / (Double(elapsed) / 1e9)
    }

    /// `redis-benchmark -t get` requests per second.
    func redisBenchmark(tool: String, port: Int, clients: Int, requests: Int) async throws -> Double {
        let arguments = [
            "-h", "127.0.0.1", "-p", String(port), "-t", "get", "-c", String(clients), "-n", String(requests),
            "-P", "1", "-d", String(configuration.valueSize), "--csv",
        ]
        let timeout = configuration.roundDuration * 5 + .seconds(10)
        let output = try await HelperProgram.run(tool, arguments, timeout: timeout)
        guard output.status == 0 else {
            throw BenchError("redis-benchmark failed (status \(output.status)): \(output.standardError.prefix(300))")
        }
        // "test","rps",...  then  "GET","12345.67",...
        for line in output.standardOutput.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, fields[0].hasPrefix("GET"), let rate = Double(fields[1]), rate > 0 {
                return rate
            }
        }
        throw BenchError("could not read redis-benchmark's output: \(output.standardOutput.prefix(300))")
    }
}
