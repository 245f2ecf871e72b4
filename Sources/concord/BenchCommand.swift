import ArgumentParser
import ConcordBench
import ConcordNode
import Foundation

/// `concord bench`: every speed figure of Concord next to a reference measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Concord against references in the same run (L1, L2, propagation, stampede, recovery, hit rate, memory).",
        discussion: """
            Prints a table of figures, each next to its reference, ratio and target. Exits 0 even
            when a target is missed (it is a measurement); non-zero only when a suite could not run,
            for example because redis-server or redis-benchmark is missing. Build with -c release:
            debug figures are meaningless.
            """
    )

    @Option(name: .long, help: "all, or a comma-separated list of: \(BenchSuite.allCases.map(\.rawValue).joined(separator: ", ")).")
    var suite: String = "all"

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(name: .long, help: "Also write a self-contained HTML report with a plot per suite to this file.")
    var html: String?
    @Option(name: .long, help: "The backend of the l2 suite: redis (against redis-benchmark) or memcached (against a plain C mg client).")
    var l2: String = "redis"

    @Flag(name: .long, help: "A reduced run of every suite, well under a minute (a smoke test, not a measurement).")
    var quick = false

    @Flag(name: .long, help: "In the l2 suite, also measure the Redis client over TLS (rediss://) against itself without TLS, on one server, in the same run.")
    var tls = false

    @Flag(name: .long, help: "In the l2 and propagation suites, also measure on a Redis Cluster of three primaries (cluster client, sharded pub/sub), against the standalone figures of the same run.")
    var cluster = false

    @Option(name: .customLong("l1-keys"), help: ArgumentHelp(
        "How many keys the l1 suite reads in turn, on both sides (default \(L1KeyCount.default); \(L1KeyCount.range.lowerBound)–\(L1KeyCount.range.upperBound)). The working set grows with it: compare a count whose entries fit the processor's L2 cache with one whose entries do not.",
        valueName: "count"))
    var l1Keys: Int?

    @Option(name: .customLong(GlobalExecutor.optionName), help: ArgumentHelp(
        "Which threads run this process's Swift tasks (the l2 and propagation suites' callers): nio (SwiftNIO's event loops) or default (Swift's pool). \(GlobalExecutor.environmentVariable) sets it too, and also reaches the nodes the node and resp suites start (default \(GlobalExecutor.benchDefault.rawValue))",
        valueName: "nio|default"))
    var executor: String?

    func validate() throws {
        _ = try suites()
        if let executor, GlobalExecutor(parsing: executor) == nil {
            throw ValidationError("--executor must be \(GlobalExecutor.choices), not '\(executor)'")
        }
        if let l1Keys, !L1KeyCount.range.contains(l1Keys) {
            throw ValidationError("--l1-keys must be \(L1KeyCount.range.lowerBound)–\(L1KeyCount.range.upperBound), not \(l1Keys)")
        }
        guard L2Backend(rawValue: l2.lowercased()) != nil else { throw ValidationError("--l2 must be redis or memcached, not '\(l2)'") }
    }

    func suites() throws -> [BenchSuite] {
        if suite == "all" { return BenchSuite.allCases }
        return try suite.split(separator: ",").map { name in
            guard let suite = BenchSuite(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValidationError("unknown suite '\(name)'; expected all or \(BenchSuite.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return suite
        }
    }

    func run() async throws {
        var runner = BenchRunner(suites: try suites(), quick: quick) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        runner.l2 = L2Backend(rawValue: l2.lowercased()) ?? .redis
        runner.cluster = cluster
        runner.tls = tls
        runner.l1KeyCount = l1Keys
        let requested = executor.flatMap(GlobalExecutor.init(parsing:))
            ?? GlobalExecutor.requested(arguments: [], environment: ProcessInfo.processInfo.environment, fallback: GlobalExecutor.benchDefault)
            ?? GlobalExecutor.benchDefault
        FileHandle.standardError.write(Data("bench: \(GlobalExecutor.current.startupMessage(requested: requested))\n".utf8))
        var machine = BenchRunner.machine(quick: quick)
        machine["executor"] = GlobalExecutor.current.rawValue
        if machine["build"] != "release" {
            FileHandle.standardError.write(Data("bench: this is a debug build; figures are not meaningful (swift build -c release)\n".utf8))
        }
        let outcome = await runner.run()
        print(BenchRunner.render(outcome.results))
        print("machine: \(machine.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")); ran in \(String(format: "%.0f", outcome.seconds)) s")
        for failure in outcome.failures {
            print("could not run \(failure.suite.rawValue): \(failure.error)")
        }
        if let json {
            try BenchRunner.json(outcome.results, machine: machine).write(to: URL(fileURLWithPath: json))
        }
        if let html {
            let report = BenchHTMLReport(
                results: outcome.results, machine: machine, failures: outcome.failures.map { ($0.suite.rawValue, $0.error) }
            )
            try Data(report.render().utf8).write(to: URL(fileURLWithPath: html))
            FileHandle.standardError.write(Data("bench: wrote \(html)\n".utf8))
        }
        if !outcome.failures.isEmpty { throw ExitCode(2) }
    }
}
