import Concord
import ConcordRedis
import ConcordProcess
import Logging
import Synchronization

/// The `stampede` suite: how many times the factory runs when many callers ask for the same
/// cold key at once through `getOrSet` (L1 + L2 + backplane on real Redis, `run()` active).
/// The ideal, and the target, is exactly one call whatever the number of callers.
struct StampedeSuite: Sendable {
    /// What to measure.
    struct Configuration: Sendable {
        var concurrencies = [10, 100, 1_000, 10_000]
        var rounds = 5
        /// How long the factory takes: a database read, long enough for every caller to arrive.
        var factoryDelay: Duration = .milliseconds(20)
        /// A round that has not finished after this is reported as failed.
        var roundTimeout: Duration = .seconds(30)

        init() {}

        static var quick: Configuration {
            var configuration = Configuration()
            configuration.rounds = 2
            return configuration
        }
    }

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.stampede")) {
        self.configuration = configuration
        self.logger = logger
    }

    func run() async throws -> [BenchResult] {
        try await BenchServices.withServer { server in
            let node = try BenchNode(id: "stampede", cacheName: "bench-stampede", server: server, logger: logger)
            return try await BenchServices.withRunning([{ try await node.cache.run() }]) {
                guard try await BenchServices.waitUntil(timeout: .seconds(15), { node.cache.isBackplaneConnected }) else {
                    throw BenchError("the stampede node did not connect to the backplane within 15 s")
                }
                var results: [BenchResult] = []
                for concurrency in configuration.concurrencies {
                    var calls: [Double] = []
                    var joined = 0
                    var fromMemory = 0
                    var elapsed: [Double] = []
                    for round in 0..<configuration.rounds {
                        let outcome = try await stampede(node.cache, key: "stampede-\(concurrency)-\(round)", callers: concurrency)
                        calls.append(Double(outcome.factoryCalls))
                        joined += outcome.servedByFactory
                        fromMemory += outcome.servedFromMemory
                        elapsed.append(outcome.milliseconds)
                    }
                    let summary = BenchResult.Summary(calls)
                    let time = BenchResult.Summary(elapsed)
                    let callers = concurrency * configuration.rounds
                    results.append(BenchResult(
                        suite: "stampede",
                        name: "factory calls, \(concurrency) concurrent cold getOrSet",
                        value: summary,
                        unit: "calls",
                        reference: .init(exactly: 1),
                        ratio: summary.median,
                        target: "exactly 1",
                        met: summary.min == 1 && summary.max == 1,
                        note: "\(joined) of \(callers) callers shared the flight, \(fromMemory) hit L1 after it; "
                            + "round \(BenchFormat.adaptive(time.median)) ms (\(BenchFormat.adaptive(time.min))–\(BenchFormat.adaptive(time.max)))"
                    ))
                }
                return results
            }
        }
    }

    struct Outcome {
        var factoryCalls: Int
        var servedByFactory: Int
        var servedFromMemory: Int
        var milliseconds: Double
    }

    /// Releases `callers` tasks at once on one cold key and counts the factory's calls.
    func stampede(_ cache: HybridCache, key: String, callers: Int) async throws -> Outcome {
        let calls = FactoryCounter()
        let gate = StartGate()
        let delay = configuration.factoryDelay
        let timeout = configuration.roundTimeout
        return try await withThrowingTaskGroup(of: CacheValueSource?.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    await gate.wait()
                    let result = try await cache.getOrSetResult(key, as: String.self) { _ in
                        calls.count.add(1, ordering: .relaxed)
                        try await Task.sleep(for: delay)
                        return "loaded"
                    }
                    return result.source
                }
            }
            group.addTask {
                // The round's time bound: a hung flight fails the round instead of the whole run.
                try await Task.sleep(for: timeout)
                throw BenchError("a stampede round of \(callers) callers did not finish within \(timeout)")
            }
            guard try await BenchServices.waitUntil(timeout: timeout, interval: .milliseconds(1), { gate.waiting >= callers }) else {
                group.cancelAll()
                throw BenchError("\(callers) stampede callers did not all start within \(timeout)")
            }
            let begin = BenchClock.nanoseconds()
            gate.open()
            var outcome = Outcome(factoryCalls: 0, servedByFactory: 0, servedFromMemory: 0, milliseconds: 0)
            var finished = 0
            while finished < callers, let source = try await group.next() {
                finished += 1
                if source == .memory { outcome.servedFromMemory += 1 } else { outcome.servedByFactory += 1 }
            }
            outcome.milliseconds = Double(BenchClock.nanoseconds() &- begin) / 1e6
            group.cancelAll()
            outcome.factoryCalls = calls.count.load(ordering: .relaxed)
            return outcome
        }
    }
}

/// Counts factory calls from the callers' tasks.
final class FactoryCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// Holds tasks until `open()`, so that a stampede's callers start together rather than in the
/// order they were created.
final class StartGate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var waiting: Int { state.withLock { $0.waiters.count } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let proceed = state.withLock { state -> Bool in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
