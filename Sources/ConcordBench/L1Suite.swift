import Concord
import Logging
import Synchronization

/// The `l1` suite: the cost of an L1 hit through `HybridCache` (`getResult`, `getOrSet`) next to a
/// `Mutex`-guarded `Dictionary` holding the same keys and value type, with 1 and 2 tasks.
///
/// Rounds alternate Concord and the reference (and which goes first), so slow drift of a noisy
/// machine hits both; the ratio is the median of the per-round ratios.
///
/// One more pair shows what tracing costs an untraced cache: `getOrSet` as shipped (which checks
/// whether the cache traces) against the same call without that check, rounds alternating alike.
struct L1Suite: Sendable {
    /// What to measure and for how long.
    struct Configuration: Sendable {
        /// Keys read in turn, each an L1 hit. The working set grows with it: at the default, the
        /// reference's keys and values (24 bytes a key) fit a 512 KiB L2 cache and Concord's
        /// slots (key, entry and metadata, about 136 bytes) do not; at 1,000 keys both fit.
        /// `concord bench --l1-keys` sets it (docs/benchmarks.md has what the two showed).
        var keyCount = L1KeyCount.default
        var taskCounts = [1, 2]
        var rounds = 7
        /// Per measured loop (one task, one round, one side).
        var budget = BenchBudget(maxCount: 5_000_000, maxDuration: .milliseconds(250))

        init() {}

        /// A few rounds of short loops, for a smoke test.
        static var quick: Configuration {
            var configuration = Configuration()
            configuration.rounds = 3
            configuration.budget = BenchBudget(maxCount: 200_000, maxDuration: .milliseconds(40))
            return configuration
        }
    }

    /// The two read operations measured.
    enum Operation: String, Sendable, CaseIterable {
        case tryGet
        case getOrSet

        var targetRatio: Double { self == .tryGet ? 1.5 : 2.0 }
    }

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.l1")) {
        self.configuration = configuration
        self.logger = logger
    }

    func run() async throws -> [BenchResult] {
        // Keys of 11 bytes: short enough to be stored inline in a Swift String, as most real
        // cache keys of this kind ("user:123456") are; both sides hash the same strings.
        let keys = (0..<configuration.keyCount).map { "user:" + String(100_000 + $0) }
        var cacheConfiguration = HybridCacheConfiguration(cacheName: "bench-l1", nodeID: "bench-l1")
        cacheConfiguration.memory = MemoryCacheConfiguration(maxEntries: max(100_000, keys.count * 2))
        cacheConfiguration.defaultEntryOptions.duration = .seconds(3600)
        // L1 only: a hit never touches L2 or the backplane, and without a backplane the node
        // never counts as cut off, so this is the hit path of every topology.
        let cache = try HybridCache(configuration: cacheConfiguration, logger: logger)
        let reference = MutexDictionary()
        for (index, key) in keys.enumerated() {
            try await cache.set(key, index)
            reference.set(key, index)
        }
        for key in keys {
            guard try await cache.getResult(key, as: Int.self)?.source == .memory else {
                throw BenchError("the L1 suite's keys are not all L1 hits")
            }
        }

        let concordTryGet = HybridTryGet(cache: cache)
        let concordGetOrSet = HybridGetOrSet(cache: cache)
        var results: [BenchResult] = []
        for operation in Operation.allCases {
            for tasks in configuration.taskCounts {
                var concord: [Double] = []
                var referenceTimes: [Double] = []
                var ratios: [Double] = []
                for round in 0..<configuration.rounds {
                    let concordFirst = round % 2 == 0
                    var pair = (concord: 0.0, reference: 0.0)
                    for side in 0..<2 {
                        let measuringConcord = (side == 0) == concordFirst
                        let nanosecondsPerOperation: Double
                        switch (operation, measuringConcord) {
                        case (.tryGet, true):
                            nanosecondsPerOperation = try await Self.measure(concordTryGet, keys: keys, tasks: tasks, budget: configuration.budget)
                        case (.getOrSet, true):
                            nanosecondsPerOperation = try await Self.measure(concordGetOrSet, keys: keys, tasks: tasks, budget: configuration.budget)
                        case (.tryGet, false):
                            nanosecondsPerOperation = try await Self.measure(DictionaryGet(dictionary: reference), keys: keys, tasks: tasks, budget: configuration.budget)
                        case (.getOrSet, false):
                            nanosecondsPerOperation = try await Self.measure(DictionaryGetOrSet(dictionary: reference), keys: keys, tasks: tasks, budget: configuration.budget)
                        }
                        if measuringConcord { pair.concord = nanosecondsPerOperation } else { pair.reference = nanosecondsPerOperation }
                    }
                    concord.append(pair.concord)
                    referenceTimes.append(pair.reference)
                    ratios.append(pair.concord / pair.reference)
                }
                let ratio = BenchResult.Summary(ratios)
                results.append(BenchResult(
                    suite: "l1",
                    name: "\(operation.rawValue) hit, \(tasks) task\(tasks == 1 ? "" : "s")",
                    value: BenchResult.Summary(concord),
                    unit: "ns/op",
                    reference: BenchResult.Summary(referenceTimes),
                    ratio: ratio.median,
                    target: "ratio <= \(operation.targetRatio)",
                    met: ratio.median <= operation.targetRatio,
                    note: "reference: Mutex<[String: Int]>; \(keys.count) keys; ratio per round \(BenchFormat.number(ratio.min, digits: 2))–\(BenchFormat.number(ratio.max, digits: 2))"
                ))
            }
        }
        results += try await tracingCheckCost(cache: cache, keys: keys)
        return results
    }

    /// `getOrSet` hits with the tracing check (no tracer bootstrapped) against the same hits
    /// without it: the cost of the instrumentation on the hit path.
    private func tracingCheckCost(cache: HybridCache, keys: [String]) async throws -> [BenchResult] {
        let withCheck = HybridGetOrSet(cache: cache)
        let withoutCheck = HybridGetOrSetWithoutTracingCheck(cache: cache)
        var results: [BenchResult] = []
        for tasks in configuration.taskCounts {
            var instrumented: [Double] = []
            var plain: [Double] = []
            var ratios: [Double] = []
            for round in 0..<configuration.rounds {
                var pair = (instrumented: 0.0, plain: 0.0)
                for side in 0..<2 {
                    if (side == 0) == (round % 2 == 0) {
                        pair.instrumented = try await Self.measure(withCheck, keys: keys, tasks: tasks, budget: configuration.budget)
                    } else {
                        pair.plain = try await Self.measure(withoutCheck, keys: keys, tasks: tasks, budget: configuration.budget)
                    }
                }
                instrumented.append(pair.instrumented)
                plain.append(pair.plain)
                ratios.append(pair.instrumented / pair.plain)
            }
            let ratio = BenchResult.Summary(ratios)
            results.append(BenchResult(
                suite: "l1",
                name: "getOrSet hit with tracing check, no tracer, \(tasks) task\(tasks == 1 ? "" : "s")",
                value: BenchResult.Summary(instrumented),
                unit: "ns/op",
                reference: BenchResult.Summary(plain),
                ratio: ratio.median,
                target: "ratio <= 1.05",
                met: ratio.median <= 1.05,
                note: "reference: the same getOrSet without the tracing check; ratio per round \(BenchFormat.number(ratio.min, digits: 2))–\(BenchFormat.number(ratio.max, digits: 2))"
            ))
        }
        return results
    }

    /// Runs `operation` over the keys on `tasks` concurrent tasks within the budget; returns the
    /// mean over tasks of each task's nanoseconds per operation.
    static func measure<Operation: L1Operation>(_ operation: Operation, keys: [String], tasks: Int, budget: BenchBudget) async throws -> Double {
        try await withThrowingTaskGroup(of: (nanoseconds: UInt64, operations: Int, checksum: Int).self) { group in
            for task in 0..<tasks {
                group.addTask {
                    try await loop(operation, keys: keys, start: task * keys.count / max(1, tasks), budget: budget)
                }
            }
            var perOperation = 0.0
            var checksum = 0
            for try await (nanoseconds, operations, sum) in group {
                perOperation += Double(nanoseconds) / Double(max(1, operations))
                checksum &+= sum
            }
            // Using the checksum keeps the optimizer from dropping the reads.
            if checksum == Int.min { print("checksum \(checksum)") }
            return perOperation / Double(tasks)
        }
    }

    /// The measured loop: the clock is read once per 256 operations, so it costs nothing per op.
    @inline(never)
    static func loop<Operation: L1Operation>(_ operation: Operation, keys: [String], start: Int, budget: BenchBudget) async throws -> (nanoseconds: UInt64, operations: Int, checksum: Int) {
        let deadline = BenchClock.nanoseconds() &+ BenchClock.nanoseconds(budget.maxDuration)
        let begin = BenchClock.nanoseconds()
        var index = start % keys.count
        var done = 0
        var checksum = 0
        var now = begin
        while done < budget.maxCount {
            for _ in 0..<256 {
                checksum &+= try await operation.read(keys[index])
                index += 1
                if index == keys.count { index = 0 }
            }
            done += 256
            now = BenchClock.nanoseconds()
            if now >= deadline { break }
        }
        return (now &- begin, done, checksum)
    }
}

/// The number of keys the `l1` suite reads: its default and the bounds `concord bench --l1-keys` accepts.
package enum L1KeyCount {
    package static let `default` = 10_000
    package static let range = 1...1_000_000

    /// The count lies outside `range`; the suite does not run rather than divide by zero or
    /// allocate without bound.
    package struct OutOfRange: Error, Equatable, CustomStringConvertible {
        package let count: Int

        package init(count: Int) {
            self.count = count
        }

        package var description: String {
            "the l1 key count must be \(L1KeyCount.range.lowerBound)–\(L1KeyCount.range.upperBound), not \(count)"
        }
    }

    /// The count itself when it lies within `range`.
    package static func validated(_ count: Int) throws(OutOfRange) -> Int {
        guard range.contains(count) else { throw OutOfRange(count: count) }
        return count
    }
}

/// One way of reading an L1 hit; the suite's loop is specialized for each.
protocol L1Operation: Sendable {
    func read(_ key: String) async throws -> Int
}

struct HybridTryGet: L1Operation {
    let cache: HybridCache

    @inline(__always)
    func read(_ key: String) async throws -> Int {
        try await cache.getResult(key, as: Int.self)?.value ?? -1
    }
}

struct HybridGetOrSet: L1Operation {
    let cache: HybridCache

    @inline(__always)
    func read(_ key: String) async throws -> Int {
        try await cache.getOrSetResult(key, as: Int.self) { _ in -1 }.value
    }
}

struct HybridGetOrSetWithoutTracingCheck: L1Operation {
    let cache: HybridCache

    @inline(__always)
    func read(_ key: String) async throws -> Int {
        try await cache.getOrSetResultWithoutTracingCheck(key, as: Int.self) { _ in -1 }.value
    }
}

struct DictionaryGet: L1Operation {
    let dictionary: MutexDictionary

    @inline(__always)
    func read(_ key: String) async throws -> Int {
        dictionary.get(key) ?? -1
    }
}

struct DictionaryGetOrSet: L1Operation {
    let dictionary: MutexDictionary

    @inline(__always)
    func read(_ key: String) async throws -> Int {
        dictionary.getOrSet(key) { -1 }
    }
}

/// The L1 reference: the simplest thread-safe cache there is, a `Dictionary` behind one `Mutex`.
final class MutexDictionary: Sendable {
    private let storage = Mutex<[String: Int]>([:])

    @inline(__always)
    func get(_ key: String) -> Int? {
        storage.withLock { $0[key] }
    }

    @inline(__always)
    func getOrSet(_ key: String, factory: () -> Int) -> Int {
        storage.withLock { dictionary in
            if let value = dictionary[key] { return value }
            let value = factory()
            dictionary[key] = value
            return value
        }
    }

    func set(_ key: String, _ value: Int) {
        storage.withLock { $0[key] = value }
    }
}
