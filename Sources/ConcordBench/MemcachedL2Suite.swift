import ConcordMemcached
import ConcordProcess
import Foundation
import Logging

/// The `l2` suite with `--l2 memcached`: GET (`mg`) throughput of Concord's `MemcachedClient`
/// with 1 and 50 concurrent callers, next to a plain C client (`MemcachedReferenceClient`) with as
/// many connections and one request in flight on each, against the same memcached, key and value.
///
/// As with Redis, the two differ in kind: the reference opens one connection per client and
/// waits for each response; Concord multiplexes every caller on one connection per server and
/// pipelines whatever is queued.
struct MemcachedL2Suite: Sendable {
    var configuration: L2Suite.Configuration
    var logger: Logger

    static let key = "concord-bench-key"

    init(configuration: L2Suite.Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.l2.memcached")) {
        self.configuration = configuration
        self.logger = logger
    }

    func run() async throws -> [BenchResult] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let reference = try await MemcachedReferenceClient.build(in: directory)
        let server: MemcachedServer
        do {
            server = try await MemcachedServer.start()
        } catch {
            throw BenchError("cannot start memcached (run scripts/setup.sh): \(error)")
        }
        defer { server.stop() }
        let client = MemcachedClient(
            configuration: MemcachedConfiguration(servers: [.init(host: server.host, port: server.port)]), logger: logger)
        return try await BenchServices.withRunning([{ try await client.run() }]) {
            try await client.waitUntilConnected(timeout: .seconds(5))
            let value = [UInt8](repeating: UInt8(ascii: "x"), count: configuration.valueSize)
            _ = try await client.set(Self.key, value: value)
            var results: [BenchResult] = []
            for concurrency in configuration.concurrencies {
                results.append(try await measure(concurrency: concurrency, client: client, reference: reference, port: server.port))
            }
            return results
        }
    }

    private func measure(concurrency: Int, client: MemcachedClient, reference: String, port: Int) async throws -> BenchResult {
        let budget = BenchBudget(maxCount: configuration.maxOperationsPerRound, maxDuration: configuration.roundDuration)
        let warmUp = BenchBudget(maxCount: 2_000, maxDuration: .milliseconds(100))
        _ = try await concordRate(client: client, concurrency: concurrency, budget: warmUp)
        _ = try await MemcachedReferenceClient.rate(
            executable: reference, port: port, key: Self.key, clients: concurrency, maxRequests: 2_000, maxDuration: .milliseconds(100))
        var concord: [Double] = []
        var referenceRates: [Double] = []
        var ratios: [Double] = []
        for round in 0..<configuration.rounds {
            // The order of the sides alternates with the round, so neither always runs first.
            var rates = [0.0, 0.0]
            for step in 0..<2 {
                if (step + round) % 2 == 0 {
                    rates[0] = try await concordRate(client: client, concurrency: concurrency, budget: budget)
                } else {
                    rates[1] = try await MemcachedReferenceClient.rate(
                        executable: reference, port: port, key: Self.key, clients: concurrency,
                        maxRequests: configuration.maxOperationsPerRound, maxDuration: configuration.roundDuration)
                }
            }
            concord.append(rates[0])
            referenceRates.append(rates[1])
            ratios.append(rates[0] / rates[1])
        }
        let target = concurrency == 1 ? 0.9 : 1.5
        let ratio = BenchResult.Summary(ratios).median
        let plural = concurrency == 1 ? "" : "s"
        return BenchResult(
            suite: "l2",
            name: "memcached mg, \(concurrency) concurrent caller\(plural)",
            value: BenchResult.Summary(concord),
            unit: "ops/s",
            reference: BenchResult.Summary(referenceRates),
            ratio: ratio,
            target: "ratio >= \(target)",
            met: ratio >= target,
            note: "reference: a C client, \(concurrency) connection\(plural) with one `mg key v` in flight each (poll loop), \(configuration.valueSize)-byte value; Concord: MemcachedClient.get on one pipelined connection"
        )
    }

    /// `mg`s per second from `concurrency` tasks sharing the client, within the budget.
    func concordRate(client: MemcachedClient, concurrency: Int, budget: BenchBudget) async throws -> Double {
        let perTask = max(1, budget.maxCount / concurrency)
        let begin = BenchClock.nanoseconds()
        let deadline = begin &+ BenchClock.nanoseconds(budget.maxDuration)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while done < perTask {
                        for _ in 0..<16 {
                            guard try await client.get(Self.key) != nil else { throw BenchError("the benchmark key vanished from memcached") }
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
}
