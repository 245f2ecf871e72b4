import ConcordProcess
import ConcordNode
import Foundation
import Logging
import Synchronization

/// Runs one chaos experiment end to end: starts Redis, the proxies and the nodes, drives the
/// workload while injecting and healing the seeded fault schedule, probes convergence after each
/// heal, reads everything once more at the end, checks the history against the contract and
/// writes the report. Every process it started is gone when `run()` returns or throws,
/// cancellation included.
package final class ChaosHarness: Sendable {
    package let configuration: ChaosConfiguration
    private let logger: Logger
    private let supervisor = ProcessSupervisor()
    private let cluster = Mutex<ChaosCluster?>(nil)
    private let progress = Mutex(ChaosProgress())
    private let recorder = Mutex<HistoryRecorder?>(nil)

    package init(configuration: ChaosConfiguration, logger: Logger = Logger(label: "concord.chaos")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The fault schedule this configuration gives: fixed by the seed, printable before a run.
    package var schedule: FaultSchedule {
        FaultSchedule(seed: configuration.seed, parameters: configuration.scheduleParameters)
    }

    /// Where the run is; cheap, for progress displays.
    package func progressSnapshot() -> ChaosProgress {
        var snapshot = progress.withLock { $0 }
        if let recorder = recorder.withLock({ $0 }) {
            snapshot.elapsed = recorder.now()
            snapshot.operations = recorder.operationCount
        }
        return snapshot
    }

    /// For a signal handler's last resort: SIGKILL every child and Redis, synchronously.
    package func emergencyStop() {
        supervisor.killAllNow()
        cluster.withLock { $0 }?.emergencyStop()
    }

    /// Runs the experiment. Throws `ChaosError` when the harness itself cannot run (exit code
    /// 2) and `CancellationError` when cancelled; a broken contract is a returned outcome.
    package func run() async throws -> ChaosOutcome {
        try configuration.validate()
        let wallStart = ContinuousClock.now
        let executable = configuration.executable ?? Self.currentExecutable()
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ChaosError(.setupFailed, "the concord executable \(executable) is missing or not executable")
        }
        let reportDirectory = configuration.reportDirectory
        let logDirectory = reportDirectory.appendingPathComponent("logs", isDirectory: true)
        let workDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-chaos-\(UUID().uuidString)", isDirectory: true)
        do {
            try? FileManager.default.removeItem(at: logDirectory)
            try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        } catch {
            throw ChaosError(.io, "cannot create \(logDirectory.path) or \(workDirectory.path)", underlying: error)
        }
        defer { try? FileManager.default.removeItem(at: workDirectory) }

        let planned = schedule.faults.count
        progress.withLock { $0.faultsTotal = planned }
        var network: NetnsNetwork?
        if configuration.network == .netns { network = try NetnsNetwork.create(nodeCount: configuration.nodeCount) }
        let cluster = ChaosCluster(
            supervisor: supervisor, executable: executable, logDirectory: logDirectory, workDirectory: workDirectory, logger: logger,
            network: network)
        self.cluster.withLock { $0 = cluster }
        let showProgress = configuration.showProgress
        return try await withThrowingTaskGroup(of: Void.self) { group in
            if showProgress {
                group.addTask { await ProgressLine().run { self.progressSnapshot() } }
            }
            defer { group.cancelAll() }
            do {
                var outcome = try await experiment(cluster, workDirectory: workDirectory, executable: executable)
                setPhase("stopping")
                await cluster.shutdown()
                outcome.wallTime = ContinuousClock.now - wallStart
                return outcome
            } catch {
                setPhase("stopping")
                await cluster.shutdown()
                throw error
            }
        }
    }

    // MARK: Phases

    private func experiment(_ cluster: ChaosCluster, workDirectory: URL, executable: String) async throws -> ChaosOutcome {
        let configuration = self.configuration
        let bounds = configuration.bounds
        let keys = Workload.keys(count: configuration.workload.keyCount)
        let originPath = workDirectory.appendingPathComponent("origin.sqlite").path
        let origin = try OriginStore.create(path: originPath, keys: keys, sizes: configuration.workload.values)

        setPhase("starting \(configuration.nodeCount) nodes")
        // Above the nodes' own Redis timeouts (1s per command), so a slow answer is recorded as
        // what it is rather than as a harness timeout; a node that does not accept within 1s is down.
        var clientConfiguration = NodeClient.Configuration(requestTimeout: .seconds(3), connectTimeout: .seconds(1))
        clientConfiguration.maxIdleConnections = 8
        try await cluster.start(
            nodeCount: configuration.nodeCount, topology: configuration.topology, originPath: originPath, settings: configuration.node,
            clientConfiguration: clientConfiguration,
            memcachedServers: configuration.l2 == .memcached ? configuration.memcachedServerCount : 0)

        let nodes = cluster.nodes
        // Operations stream to the report directory as they complete: the harness's memory stays
        // flat however long the run, and the file is the history `recheck` reads.
        let recorder = try HistoryRecorder(
            nodes: nodes.map(\.id), clock: HarnessClock(),
            spool: configuration.reportDirectory.appendingPathComponent(History.operationsFileName))
        self.recorder.withLock { $0 = recorder }
        let harnessPID = getpid()
        let sampler = ResourceSampler(interval: configuration.resourceSampleInterval, clock: recorder.clock) {
            cluster.runningProcesses() + [("harness", harnessPID)]
        }
        let workload = Workload(
            configuration: configuration.workload,
            targets: nodes.map { Workload.Target(id: $0.id, client: $0.client) },
            origin: origin, recorder: recorder, seed: configuration.seed)
        let schedule = self.schedule
        let injector = FaultInjector(cluster: cluster, logger: logger)
        progress.withLock {
            $0.phase = "running"
            $0.duration = configuration.duration
            $0.faultsTotal = schedule.faults.count
        }
        logger.info("workload started", metadata: ["concord.faults": "\(schedule.faults.count)"])

        var probeTimes: [(kind: FaultKind, time: Duration?)] = []
        let samplerTask = Task { await sampler.run() }
        defer { samplerTask.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await workload.run() }
            probeTimes = try await execute(schedule, injector: injector, workload: workload, recorder: recorder, bounds: bounds)
            setPhase("running", current: nil)
            try await Task.sleep(until: recorder.clock.origin + configuration.duration, clock: .continuous)
            workload.stop()
            try await group.waitForAll()
        }

        // Let the last writes propagate before the reads that decide C6.
        setPhase("settling")
        try await Task.sleep(for: bounds.delta + .milliseconds(500))
        setPhase("final reads")
        let finalFailures = await workload.finalReads()

        setPhase("collecting stats")
        var recovery: [String: AutoRecoveryCounters] = [:]
        var findings: [String] = []
        for node in nodes {
            do {
                recovery[node.id] = try Self.recoveryCounters(from: try await node.client.stats())
            } catch {
                findings.append("\(node.id): GET /v1/stats failed at the end: \(Workload.describe(error))")
            }
        }
        for (node, status) in cluster.unexpectedExits().sorted(by: { $0.key < $1.key }) {
            findings.append("\(node) exited on its own (status \(status)); see logs/\(node).log")
        }
        for (node, error) in finalFailures.sorted(by: { $0.key < $1.key }) {
            findings.append("\(node) did not answer every final read after all faults healed (first failure: \(error))")
        }
        for corrupt in workload.corruptReads.prefix(20) {
            findings.append("corrupt value served: \(corrupt)")
        }

        setPhase("checking")
        let history = try recorder.snapshot()
        // One sample after the history is back in memory: the harness's peak includes checking.
        sampler.sampleOnce()
        let result = ConsistencyChecker(bounds: bounds).check(history, recovery: recovery)
        findings += Self.silentNodes(history)
        samplerTask.cancel()
        sampler.sampleOnce()

        let metadata = self.metadata(schedule: schedule, executable: executable, history: history, probeTimes: probeTimes)
        let report = ChaosReport(history: history, result: result, metadata: metadata, findings: findings, resources: sampler.series())
        let files = try report.write(to: configuration.reportDirectory)
        try Self.writeHistory(history, recovery: recovery, to: configuration.reportDirectory, operationsWritten: true)
        return ChaosOutcome(report: report, files: files, wallTime: .zero)
    }

    /// Injects each scheduled fault at its time (but never sooner than a healthy gap after the
    /// previous heal), holds it, heals it, then probes until the cluster has converged.
    private func execute(
        _ schedule: FaultSchedule, injector: FaultInjector, workload: Workload, recorder: HistoryRecorder, bounds: ContractBounds
    ) async throws -> [(kind: FaultKind, time: Duration?)] {
        let healthyGap = schedule.parameters.healthyGap
        var lastHeal: Duration?
        var probeTimes: [(kind: FaultKind, time: Duration?)] = []
        for (number, fault) in schedule.faults.enumerated() {
            var start = fault.start
            if let lastHeal { start = max(start, lastHeal + healthyGap) }
            setPhase("running", current: "next: \(fault.kind) at \(Int(start.milliseconds / 1_000))s")
            try await Task.sleep(until: recorder.clock.origin + start, clock: .continuous)

            let targets = injector.targetIDs(fault)
            let id = recorder.faultStarted(kind: fault.kind.rawValue, targets: targets, detail: Self.detail(fault))
            setPhase("running", current: "FAULT \(fault.kind) on \(targets.joined(separator: ","))")
            logger.info("fault injected", metadata: ["concord.fault": "\(fault.kind)", "concord.targets": "\(targets)"])
            do {
                let injected = try await injector.inject(fault)
                if let note = injected.note { recorder.annotateFault(id, note) }
                if let end = injected.lossWindowEnd { recorder.faultLossWindowEnded(id, ago: ContinuousClock.now - end) }
                if fault.hold > .zero { try await Task.sleep(for: fault.hold) }
            } catch {
                // Whatever happened, the heal runs: a fault must not outlive the harness's attention.
                try? await injector.heal(fault)
                throw error
            }
            try await injector.heal(fault)
            recorder.faultHealed(id)
            lastHeal = recorder.now()
            logger.info("fault healed", metadata: ["concord.fault": "\(fault.kind)"])

            setPhase("running", current: "probing after \(fault.kind)")
            // Keys mutated from shortly before the fault: what a node may have missed.
            let since = max(.zero, recorder.now() - (fault.hold + .seconds(2)))
            let converged = await workload.probeConvergence(since: since, timeout: bounds.convergenceBound + .seconds(1))
            try Task.checkCancellation()
            recorder.annotateFault(id, converged.map { "probes saw every node current \($0.shortDescription) after the heal" } ?? "probes did not see every node current within \((bounds.convergenceBound + .seconds(1)).shortDescription)")
            probeTimes.append((fault.kind, converged))
            progress.withLock { $0.faultsDone = number + 1 }
        }
        // The workload runs on for at least a healthy gap after the last heal, whatever the clock says.
        if let lastHeal, lastHeal + healthyGap > recorder.now() {
            try await Task.sleep(until: recorder.clock.origin + lastHeal + healthyGap, clock: .continuous)
        }
        return probeTimes
    }

    // MARK: Helpers

    private func setPhase(_ phase: String, current: String? = nil) {
        progress.withLock {
            $0.phase = phase
            $0.current = current
        }
    }

    private static func detail(_ fault: ScheduledFault) -> String? {
        switch fault.kind {
        case .latency: fault.magnitude.map { "+\($0.shortDescription) on replies" }
        case .reset: fault.magnitude.map { "connections reset \($0.shortDescription) after opening" }
        case .memcachedKill, .memcachedPause, .memcachedPartition, .memcachedFlush: fault.targets.first.map { "memcached server \($0 + 1)" }
        default: nil
        }
    }

    /// Nodes that never answered a workload read: a run in which they took part only on paper.
    static func silentNodes(_ history: History) -> [String] {
        var answered = Set<String>()
        for operation in history.operations where operation.kind == .read && operation.purpose == .workload && operation.outcome.isOK {
            answered.insert(operation.node)
        }
        return history.nodes.filter { !answered.contains($0) }.map { "\($0) answered no workload read at all" }
    }

    /// Every fault, the nodes and the end as JSON (`history.json`), every operation one per
    /// line (`operations.ndjson`; already there when the recorder streamed to it), and each
    /// node's auto-recovery counters (`recovery.json`), so a violation can be studied beyond
    /// the windows the report shows, or the run checked again (`recheck`) with other bounds or
    /// a newer checker.
    static func writeHistory(
        _ history: History, recovery: [String: AutoRecoveryCounters], to directory: URL, operationsWritten: Bool = false
    ) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            var header = history
            header.operations = []
            try encoder.encode(header).write(to: directory.appendingPathComponent("history.json"), options: .atomic)
            if !operationsWritten {
                var lines = Data()
                for operation in history.operations {
                    lines.append(try encoder.encode(operation))
                    lines.append(UInt8(ascii: "\n"))
                }
                try lines.write(to: directory.appendingPathComponent(History.operationsFileName), options: .atomic)
            }
            try encoder.encode(recovery).write(to: directory.appendingPathComponent("recovery.json"), options: .atomic)
        } catch {
            throw ChaosError(.io, "could not write the history into \(directory.path)", underlying: error)
        }
    }

    /// Checks the history a run left in `source` again, with this configuration's bounds, and
    /// writes a new report into `configuration.reportDirectory`. No process is started.
    package func recheck(_ source: URL, windowScope: FaultWindowScope = .perNode) throws -> ChaosOutcome {
        let history = try History.load(from: source)
        var recovery: [String: AutoRecoveryCounters] = [:]
        do {
            if let data = try? Data(contentsOf: source.appendingPathComponent("recovery.json")) {
                recovery = try JSONDecoder().decode([String: AutoRecoveryCounters].self, from: data)
            }
        } catch {
            throw ChaosError(.io, "cannot read the history in \(source.path)", underlying: error)
        }
        var checker = ConsistencyChecker(bounds: configuration.bounds)
        checker.windowScope = windowScope
        let result = checker.check(history, recovery: recovery)
        var metadata = ["rechecked": source.path]
        if windowScope == .clusterWide { metadata["fault windows"] = "cluster-wide (every fault on every node: the earlier, looser rule, for comparison)" }
        let report = ChaosReport(title: "Concord chaos report (rechecked)", history: history, result: result, metadata: metadata)
        let files = try report.write(to: configuration.reportDirectory)
        return ChaosOutcome(report: report, files: files, wallTime: .zero)
    }

    /// The `autoRecovery` counters of a `GET /v1/stats` answer.
    static func recoveryCounters(from response: NodeResponse) throws -> AutoRecoveryCounters {
        struct Stats: Decodable { var autoRecovery: AutoRecoveryCounters }
        guard response.isSuccess else {
            throw ChaosError(.invalidResponse, "GET /v1/stats answered \(response.status): \(response.text.prefix(200))")
        }
        do {
            return try response.decode(Stats.self).autoRecovery
        } catch {
            throw ChaosError(.invalidResponse, "stats without autoRecovery counters: \(response.text.prefix(200))", underlying: error)
        }
    }

    private func metadata(schedule: FaultSchedule, executable: String, history: History, probeTimes: [(kind: FaultKind, time: Duration?)]) -> [String: String] {
        let configuration = self.configuration
        let failed = history.operations.filter { !$0.outcome.isOK }.count
        var metadata = [
            "seed": "\(configuration.seed)",
            "faults requested": configuration.faults.map(\.rawValue).joined(separator: ","),
            "node count": "\(configuration.nodeCount)",
            "topology": configuration.topology.rawValue,
            "network": configuration.network == .netns ? "netns (each node in its own namespace; links cut by the kernel)" : "proxy (in-process fault proxies)",
            "workload duration": configuration.duration.shortDescription,
            "backplane": configuration.node.backplane ? "on" : "OFF (--no-backplane: C3 must fail)",
            "node flags": configuration.node.arguments.joined(separator: " "),
            "workload": Self.describe(configuration.workload, readers: configuration.nodeCount),
            "schedule": schedule.faults.isEmpty ? "no fault fits the duration" : schedule.faults.map(\.description).joined(separator: "; "),
            "failed requests": "\(failed) (timeouts, refused connections, 5xx: counted, not violations)",
            "executable": executable,
        ]
        let probed = probeTimes.map { "\($0.kind) \($0.time?.shortDescription ?? "timeout")" }
        if !probed.isEmpty { metadata["probe convergence"] = probed.joined(separator: ", ") }
        return metadata
    }

    static func describe(_ workload: Workload.Configuration, readers: Int) -> String {
        func percent(_ share: Double) -> String { "\((share * 1_000).rounded() / 10)%" }
        return "\(workload.keyCount) keys (Zipf, s = \(workload.zipfExponent)), values up to \(workload.values.maxBytes) bytes; \(workload.writers) writers every \(workload.writeInterval.shortDescription): \(percent(workload.deleteShare)) DELETE, \(percent(workload.invalidateShare)) invalidate of \(workload.invalidateKeys.lowerBound)–\(workload.invalidateKeys.upperBound) keys, \(percent(workload.tagRemovalShare)) tag removal (\(workload.tagGroupSize) keys a tag), \(percent(workload.clearShare)) clear (first writer), the rest PUT (\(percent(workload.backgroundShare)) in the background); \(readers) readers every \(workload.readInterval.shortDescription)"
    }

    /// This process's executable, so nodes run the very build the harness runs.
    static func currentExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        let argument = CommandLine.arguments.first ?? "concord"
        return argument.hasPrefix("/") ? argument : FileManager.default.currentDirectoryPath + "/" + argument
    }
}

/// What a finished chaos run concluded, and where its report is.
package struct ChaosOutcome: Sendable {
    package var report: ChaosReport
    package var files: ChaosReport.Files
    /// From the harness's start to the last process stopped.
    package var wallTime: Duration

    package var passed: Bool { report.passed }
    /// 0 when every property holds, 1 when one is broken (2, harness failure, is a thrown error).
    package var exitCode: Int32 { passed ? 0 : 1 }

    /// The report's summary, without the detailed violation listings (they are in report.txt).
    package var summary: String {
        var lines: [String] = []
        for line in report.text().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Violations of ") { break }
            lines.append(String(line))
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}
