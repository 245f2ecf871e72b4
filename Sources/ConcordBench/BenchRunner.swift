import Foundation
import Logging

/// One suite of `concord bench`.
package enum BenchSuite: String, CaseIterable, Sendable {
    case l1, l2, propagation, stampede, recovery, hitrate, memory, node, resp

    /// The order suites run in: allocation-sensitive and CPU-bound suites before any Redis
    /// client thread exists, so they measure a quiet process.
    static let runOrder: [BenchSuite] = [.memory, .l1, .hitrate, .stampede, .l2, .propagation, .recovery, .node, .resp]
}

/// Runs suites of `concord bench` and collects their figures; a suite that cannot run is
/// recorded as a failure and the others still run.
package struct BenchRunner: Sendable {
    package var suites: [BenchSuite]
    package var quick: Bool
    /// Where the `l2` suite measures: Redis (against redis-benchmark) or Memcached (against a C `mg` client).
    package var l2: L2Backend = .redis
    /// The l2 suite (on Redis) also measures the client over TLS, against itself without TLS on the same server.
    package var tls: Bool = false
    /// The l2 and propagation suites also measure on a Redis Cluster (three primaries), against standalone, in the same run.
    package var cluster: Bool = false
    /// How many keys the l1 suite reads (nil: `L1KeyCount.default`).
    package var l1KeyCount: Int?
    /// Progress lines (suite started, finished, failed) for a person watching.
    package var progress: @Sendable (String) -> Void

    package init(suites: [BenchSuite] = BenchSuite.allCases, quick: Bool = false, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.suites = suites
        self.quick = quick
        self.progress = progress
    }

    /// What a run produced: figures, and the suites that could not run with why.
    package struct Outcome: Sendable {
        package var results: [BenchResult]
        package var failures: [(suite: BenchSuite, error: String)]
        package var seconds: Double
    }

    package func run() async -> Outcome {
        let begin = BenchClock.nanoseconds()
        var bySuite: [BenchSuite: [BenchResult]] = [:]
        var failures: [(suite: BenchSuite, error: String)] = []
        let planned = BenchSuite.runOrder.filter { suites.contains($0) }
        for (index, suite) in planned.enumerated() {
            let position = "[\(index + 1)/\(planned.count)]"
            progress("bench: \(position) \(suite.rawValue)\(quick ? " (quick)" : "")...")
            let start = BenchClock.nanoseconds()
            do {
                let results = try await withHeartbeat(position: position, suite: suite, start: start) {
                    suite == .l2 && l2 == .memcached
                        ? try await MemcachedL2Suite(configuration: quick ? .quick : .init()).run()
                        : try await Self.run(suite, quick: quick, tls: tls, cluster: cluster, l1KeyCount: l1KeyCount)
                }
                bySuite[suite] = results
                let met = results.filter { $0.met == true }.count
                let judged = results.filter { $0.met != nil }.count
                progress("bench: \(position) \(suite.rawValue) done in \(Self.seconds(since: start)) s: \(results.count) figures, \(met) of \(judged) targets met")
            } catch {
                failures.append((suite, "\(error)"))
                progress("bench: \(position) \(suite.rawValue) could not run: \(error)")
            }
        }
        let results = BenchSuite.allCases.flatMap { bySuite[$0] ?? [] }
        return Outcome(results: results, failures: failures, seconds: Double(BenchClock.nanoseconds() - begin) / 1e9)
    }

    /// How often a running suite says it is still at work: suites run from seconds to minutes.
    static let heartbeatInterval: Duration = .seconds(15)

    /// Runs `body`, printing a line every `heartbeatInterval` until it returns, so a person
    /// watching a long suite sees it alive.
    private func withHeartbeat<T: Sendable>(
        position: String, suite: BenchSuite, start: UInt64, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { [progress] in
                while true {
                    try await Task.sleep(for: Self.heartbeatInterval)
                    progress("bench: \(position) \(suite.rawValue) still running (\(Self.seconds(since: start)) s)")
                }
            }
            let result = try await body()
            group.cancelAll()
            while let next = try? await group.next() { _ = next }
            return result
        }
    }

    private static func seconds(since start: UInt64) -> String {
        BenchFormat.number(Double(BenchClock.nanoseconds() - start) / 1e9, digits: 1)
    }

    /// Runs one suite with its full or quick configuration.
    package static func run(
        _ suite: BenchSuite, quick: Bool, tls: Bool = false, cluster: Bool = false, l1KeyCount: Int? = nil
    ) async throws -> [BenchResult] {
        switch suite {
        case .l1:
            var configuration: L1Suite.Configuration = quick ? .quick : .init()
            if let l1KeyCount { configuration.keyCount = try L1KeyCount.validated(l1KeyCount) }
            return try await L1Suite(configuration: configuration).run()
        case .l2:
            var configuration: L2Suite.Configuration = quick ? .quick : .init()
            configuration.tls = tls
            configuration.cluster = cluster
            return try await L2Suite(configuration: configuration).run()
        case .propagation:
            var configuration: PropagationSuite.Configuration = quick ? .quick : .init()
            configuration.cluster = cluster
            return try await PropagationSuite(configuration: configuration).run()
        case .stampede:
            return try await StampedeSuite(configuration: quick ? .quick : .init()).run()
        case .recovery:
            return try await RecoverySuite(configuration: quick ? .quick : .init()).run()
        case .hitrate:
            return HitRateSuite(configuration: quick ? .quick : .init()).benchResults()
        case .memory:
            return try await MemorySuite(configuration: quick ? .quick : .init()).run()
        case .node:
            return try await NodeSuite(configuration: quick ? .quick : .init()).run()
        case .resp:
            return try await RESPSuite(configuration: quick ? .quick : .init()).run()
        }
    }

    /// Where the figures were measured: they mean little without it.
    package static func machine(quick: Bool) -> [String: String] {
        var machine: [String: String] = [
            "cores": String(ProcessInfo.processInfo.activeProcessorCount),
            "os": ProcessInfo.processInfo.operatingSystemVersionString,
            "memoryBytes": String(ProcessInfo.processInfo.physicalMemory),
            "mode": quick ? "quick" : "full",
        ]
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            machine["cpu"] = name.trimmingCharacters(in: .whitespaces)
        }
        if let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) {
            machine["loadAverage"] = load.split(separator: " ").prefix(3).joined(separator: " ")
        }
        #if DEBUG
        machine["build"] = "debug (figures are not meaningful; build with -c release)"
        #else
        machine["build"] = "release"
        #endif
        return machine
    }

    /// The JSON document for `--json`.
    package static func json(_ results: [BenchResult], machine: [String: String]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(BenchReport(results: results, machine: machine))
    }

    /// The table a person reads: one row per figure, its reference, ratio, target and verdict,
    /// with each figure's notes under the table.
    package static func render(_ results: [BenchResult]) -> String {
        let header = ["suite", "figure", "value [min–max]", "reference [min–max]", "ratio", "target", "met"]
        var rows: [[String]] = []
        for result in results {
            func range(_ median: Double, _ low: Double?, _ high: Double?, unit: String) -> String {
                var text = BenchFormat.adaptive(median) + " " + unit
                if let low, let high, low != high {
                    text += " [\(BenchFormat.adaptive(low))–\(BenchFormat.adaptive(high))]"
                }
                return text
            }
            let value = range(result.value, result.valueMin, result.valueMax, unit: result.unit)
            let reference = result.reference.map { range($0, result.referenceMin, result.referenceMax, unit: result.unit) } ?? "-"
            let ratio = result.ratio.map { BenchFormat.number($0, digits: 2) } ?? "-"
            let met = result.met.map { $0 ? "yes" : "NO" } ?? "-"
            rows.append([result.suite, result.name, value, reference, ratio, result.target, met])
        }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { cell, width in cell + String(repeating: " ", count: width - cell.count) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var lines = [line(header), line(widths.map { String(repeating: "-", count: $0) })]
        lines += rows.map(line)
        let notes = results.enumerated().compactMap { index, result in
            result.note.map { "  [\(result.suite)] \(result.name): \($0)" }
        }
        if !notes.isEmpty {
            lines.append("")
            lines.append("notes:")
            lines += notes
        }
        let met = results.filter { $0.met == true }.count
        let judged = results.filter { $0.met != nil }.count
        lines.append("")
        lines.append("\(met) of \(judged) targets met")
        return lines.joined(separator: "\n")
    }
}
