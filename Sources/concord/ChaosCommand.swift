import ArgumentParser
import ConcordChaos
import Dispatch
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `concord chaos`: runs real nodes against a real Redis, injects faults, and checks the
/// recorded history against the consistency contract.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Run nodes under injected faults and check the consistency contract (C1–C6).",
        discussion: """
        Starts redis-server, one fault proxy per node and N `concord node` processes, drives a \
        read/write workload, injects the seeded fault schedule, and checks the recorded history. \
        The report (report.txt, report.json, timeline.svg, logs/) goes into --report. \
        Exit status: 0 every property holds, 1 a property is broken, 2 the harness could not run.
        Faults: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")). \
        With --topology sentinel the nodes reach a master, a replica and three Sentinels through \
        redis+sentinel://, and the faults are \(FaultKind.available(in: .sentinel).map(\.rawValue).joined(separator: ", ")). \
        With --topology cluster they reach a Redis Cluster of three primaries and three replicas \
        through redis+cluster://, and the faults are \(FaultKind.available(in: .cluster).map(\.rawValue).joined(separator: ", ")).
        """
    )

    @Option(help: "Number of nodes (default 5; 3 with --quick).")
    var nodes: Int?

    @Option(help: "How long the workload runs, e.g. 60s or 2m (default 60s; 45s with --quick).")
    var duration: String?

    @Option(help: "Faults to inject: all, none, or a comma-separated list (default all; with --quick: \(FaultKind.quick.map(\.rawValue).joined(separator: ","))).")
    var faults: String?

    @Option(help: "Seed of the fault schedule and workload choices; the same seed gives the same schedule (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Directory for the report.")
    var report: String = "chaos-report"

    @Flag(help: "A short run for CI: 3 nodes, 45s, five fault kinds (30s and four memcached-centred kinds with --l2 memcached; 30s and the three failover kinds with --topology sentinel; 30s and the three cluster kinds with --topology cluster).")
    var quick = false

    @Option(help: "Where nodes keep L2: redis, or memcached (two memcached servers behind shared fault proxies; Redis then carries only the backplane).")
    var l2: String = "redis"

    @Option(help: "The Redis set-up: standalone (one redis-server behind fault proxies), sentinel (master, replica, three Sentinels) or cluster (Redis Cluster: three primaries, three replicas).")
    var topology: String = "standalone"

    @Flag(name: .customLong("no-backplane"), help: "Start the nodes without invalidation; C3 must then fail (a negative control).")
    var noBackplane = false

    @Option(help: "Δ, the propagation allowance while healthy (C3), e.g. 1s or 500ms.")
    var delta: String = "1s"

    @Option(help: "The workload's operations: all (PUT, background PUT, DELETE, invalidate, tag removal, clear; the default) or put-delete (PUT and DELETE only).")
    var operations: String = "all"

    @Option(help: "How links are cut: proxy (in-process fault proxies, default) or netns (each node in its own network namespace, partitions made by the kernel; root only).")
    var network: String = "proxy"

    @Option(help: "How often each process's memory and open descriptors are sampled (default 1s; 500ms with --quick).")
    var sampleInterval: String?

    @Flag(help: "Log the harness's steps on stderr.")
    var verbose = false

    @Option(help: .hidden)
    var executable: String?

    @Option(help: ArgumentHelp("Check the history.json a run left in this directory again (with --delta), write the report into --report, start nothing.", valueName: "dir"))
    var recheck: String?

    @Flag(help: ArgumentHelp("With --recheck: open every fault's window on every node, the looser rule of earlier checkers, to compare C3/C4 coverage.", visibility: .hidden))
    var clusterWideWindows = false

    func makeConfiguration() throws -> ChaosConfiguration {
        guard let backend = ChaosConfiguration.L2(rawValue: l2.lowercased()) else {
            throw ChaosError(.invalidArgument, "--l2 must be redis or memcached, not '\(l2)'")
        }
        guard let topology = ChaosTopology(rawValue: topology) else {
            throw ChaosError(.invalidArgument, "unknown topology '\(topology)'; known: \(ChaosTopology.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var configuration: ChaosConfiguration
        switch (quick, topology) {
        case (true, .sentinel): configuration = .quickSentinel()
        case (true, .cluster): configuration = .quickCluster()
        case (true, .standalone): configuration = .quick(l2: backend)
        case (false, _): configuration = ChaosConfiguration()
        }
        configuration.l2 = backend
        configuration.topology = topology
        let available = FaultKind.available(in: topology, memcached: backend == .memcached)
        if !quick { configuration.faults = available }
        if let nodes { configuration.nodeCount = nodes }
        if let duration { configuration.duration = try DurationText.parse(duration) }
        configuration.network = try ChaosNetwork.parse(network)
        switch operations {
        case "all": break
        case "put-delete": configuration.workload.restrictToPutAndDelete()
        default: throw ChaosError(.invalidArgument, "unknown --operations '\(operations)'; use all or put-delete")
        }
        if let faults {
            configuration.faults = faults.trimmingCharacters(in: .whitespaces) == "all" ? available : try FaultKind.parseList(faults)
        }
        if configuration.network == .netns, faults == nil || faults?.trimmingCharacters(in: .whitespaces) == "all" {
            // "all" means all this network can inject.
            configuration.faults = configuration.faults.filter { configuration.network.supports($0) }
        }
        configuration.seed = seed ?? UInt64.random(in: 1...999_999)
        configuration.reportDirectory = URL(fileURLWithPath: report, isDirectory: true)
        configuration.node.backplane = !noBackplane
        configuration.delta = try DurationText.parse(delta)
        configuration.executable = executable
        if let sampleInterval { configuration.resourceSampleInterval = try DurationText.parse(sampleInterval) }
        configuration.showProgress = true
        try configuration.validate()
        return configuration
    }

    func run() async throws {
        let configuration: ChaosConfiguration
        do {
            configuration = try makeConfiguration()
        } catch {
            Self.printError("chaos: \(Self.message(error))")
            throw ExitCode(2)
        }
        let level: Logger.Level = verbose ? .info : .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let harness = ChaosHarness(configuration: configuration, logger: Logger(label: "concord.chaos"))
        if let recheck {
            let outcome: ChaosOutcome
            do {
                outcome = try harness.recheck(URL(fileURLWithPath: recheck, isDirectory: true), windowScope: clusterWideWindows ? .clusterWide : .perNode)
            } catch {
                Self.printError("chaos: cannot recheck: \(Self.message(error))")
                throw ExitCode(2)
            }
            print(outcome.summary)
            print("\nreport: \(outcome.files.text.path)")
            if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
            return
        }
        let bounds = configuration.bounds
        Self.printError("""
            chaos: seed \(configuration.seed), \(configuration.topology) topology, \(configuration.nodeCount) nodes, \(configuration.duration.shortDescription), \
            L2 \(configuration.l2.rawValue), backplane \(configuration.node.backplane ? "on" : "OFF"); bounds Δ \(bounds.delta.shortDescription), \
            cut-off \(bounds.maxDisconnectedStaleness.shortDescription), convergence \(bounds.convergenceBound.shortDescription)
            chaos: schedule: \(harness.schedule.faults.isEmpty ? "no faults" : harness.schedule.faults.map(\.description).joined(separator: "; "))
            """)

        let trap = SignalTrap()
        let outcome: ChaosOutcome
        do {
            outcome = try await withThrowingTaskGroup(of: ChaosOutcome?.self) { group in
                group.addTask { try await harness.run() }
                group.addTask {
                    _ = await trap.next()
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                if let first { return first }
                // Interrupted: the run is being cancelled and stops its children on the way out.
                // A second signal, or a shutdown that hangs, ends everything at once.
                Self.printError("\nchaos: interrupted; stopping every process (again to kill at once)")
                trap.onRepeatedSignal { _ in
                    harness.emergencyStop()
                    Glibc.exit(2)
                }
                DispatchQueue.global().asyncAfter(deadline: .now() + 30) {
                    harness.emergencyStop()
                    Glibc.exit(2)
                }
                _ = try? await group.next()
                throw CancellationError()
            }
        } catch is CancellationError {
            Self.printError("chaos: interrupted; no report written")
            throw ExitCode(2)
        } catch {
            Self.printError("chaos: the harness could not run: \(Self.message(error))")
            throw ExitCode(2)
        }

        print(outcome.summary)
        print("")
        print("report: \(outcome.files.text.path) (also report.json, timeline.svg, history.json, logs/)")
        print("wall time: \(outcome.wallTime.shortDescription); exit status \(outcome.exitCode)")
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    static func message(_ error: any Error) -> String {
        if let error = error as? ChaosError {
            return error.underlying.map { "\(error.message) (\($0))" } ?? error.message
        }
        return "\(error)"
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
