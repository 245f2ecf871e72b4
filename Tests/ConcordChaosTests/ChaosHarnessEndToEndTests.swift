import ConcordProcess
import ConcordChaos
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
import ConcordTesting
#endif

/// The `concord` binary built next to this test bundle, when it and redis-server are there.
let builtConcord: String? = {
    guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    let candidate = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("concord").path
    let hasRedis = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    return FileManager.default.isExecutableFile(atPath: candidate) && hasRedis ? candidate : nil
}()

/// Short real runs of the harness: redis-server, fault proxies and `concord node` processes from
/// this build. The CI runs of `concord chaos --quick` (scripts/test.sh) cover more faults; these
/// keep the orchestration itself under test in seconds.
@Suite(.serialized, .enabled(if: builtConcord != nil, "needs the concord executable (swift build) and redis-server"))
struct ChaosHarnessEndToEndTests {
    private func configuration(_ name: String) -> ChaosConfiguration {
        var configuration = ChaosConfiguration()
        configuration.executable = builtConcord
        configuration.reportDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-chaos-\(name)-\(UUID().uuidString)")
        configuration.nodeCount = 2
        configuration.seed = 1
        configuration.workload.keyCount = 10
        configuration.schedule.warmup = .seconds(2)
        configuration.schedule.hold = .seconds(2) ... .seconds(2)
        configuration.schedule.gapJitter = .zero
        configuration.healthyMargin = .seconds(1)
        return configuration
    }

    /// Chaos nodes still running with this test process as the parent they were told to watch.
    /// Only the harness's own nodes count (their origin lives in a `concord-chaos-` work
    /// directory): other suites in this test process start `concord node` children of their own
    /// at the same time.
    private func leftoverChildren() -> [String] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> String? in
            guard Int32(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let flag = arguments.firstIndex(of: "--parent-pid"), flag + 1 < arguments.count, arguments[flag + 1] == "\(me)" else { return nil }
            guard arguments.contains(where: { $0.hasPrefix("sqlite:") && $0.contains("/concord-chaos-") }) else { return nil }
            return arguments.joined(separator: " ")
        }
    }

    @Test func aShortRunWithANodeKillPasses() async throws {
        var configuration = configuration("pass")
        configuration.duration = .seconds(12)
        // A node killed and restarted on the same id and port: the harness's hardest step.
        configuration.faults = [.nodeKill]
        // PUT and DELETE only, as in scripts/test.sh: the whole API finds defects the cache still has.
        configuration.workload.restrictToPutAndDelete()
        defer { try? FileManager.default.removeItem(at: configuration.reportDirectory) }

        let outcome = try await ChaosHarness(configuration: configuration).run()
        let passed = outcome.passed
        #expect(passed, Comment(rawValue: outcome.summary))
        #expect(outcome.exitCode == 0)
        let history = outcome.report.history
        #expect(history.faults.map(\.kind) == ["node-kill"])
        #expect(history.faults.allSatisfy { $0.heal != nil })
        #expect(history.operations.contains { $0.purpose == .probe })
        #expect(history.operations.filter { $0.purpose == .final }.count == 2 * 10)
        #expect(outcome.report.result.convergence.first?.converged == true)
        for file in [outcome.files.text, outcome.files.json, outcome.files.timeline] {
            #expect(FileManager.default.fileExists(atPath: file.path))
        }
        #expect(leftoverChildren().isEmpty)
    }

    @Test func withoutTheBackplaneStalenessWhileHealthyIsCaught() async throws {
        var configuration = configuration("nobp")
        configuration.duration = .seconds(8)
        configuration.faults = []
        configuration.node.backplane = false
        defer { try? FileManager.default.removeItem(at: configuration.reportDirectory) }

        let outcome = try await ChaosHarness(configuration: configuration).run()
        let passed = outcome.passed
        #expect(!passed)
        #expect(outcome.exitCode == 1)
        #expect(outcome.report.result[.boundedStalenessHealthy].violationCount > 0)
        #expect(leftoverChildren().isEmpty)
    }

    /// Children of `pid`, from /proc (field 4 of /proc/PID/stat is the parent).
    private func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let child = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/stat") else { return nil }
            let text = String(decoding: data, as: UTF8.self)
            // The command name may hold spaces; the fields after its closing parenthesis do not.
            guard let close = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid ? child : nil
        }
    }

    private func alive(_ pid: Int32) -> Bool {
        // A zombie has been killed; only its parent's wait is missing.
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return false }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        return !text[text.index(after: close)...].hasPrefix(" Z")
    }

    @Test func aHarnessKilledOutrightTakesItsProcessesWithIt() async throws {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("concord-chaos-sigkill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: report) }
        let temporary = FileManager.default.temporaryDirectory.path
        func tempDirs() -> Set<String> {
            Set(((try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []).filter { $0.hasPrefix("concord-chaos-") || $0.hasPrefix("concord-redis-") })
        }
        let before = tempDirs()
        let supervisor = ProcessSupervisor()
        let harness = try supervisor.launch(
            name: "chaos", executable: try #require(builtConcord),
            arguments: ["chaos", "--nodes", "2", "--duration", "30s", "--faults", "none", "--report", report.path])
        // Wait until redis-server and both nodes run under it.
        var started: [Int32] = []
        _ = await eventually(timeout: TestBounds.connect, pollingEvery: .milliseconds(100)) {
            started = children(of: harness.processIdentifier)
            let commands = started.compactMap { FileManager.default.contents(atPath: "/proc/\($0)/cmdline") }
                .map { $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) } }
            let servers = commands.filter { $0.first?.contains("redis-server") == true }
            let nodes = commands.filter { $0.count > 1 && $0[1] == "node" }
            return servers.count == 1 && nodes.count == 2
        }
        #expect(started.count >= 3)
        // The temp dirs of this run's servers, named in their command lines: other suites running
        // at the same time make and remove dirs with the same prefix, which are none of ours.
        let serverDirectories = Set(started.compactMap { FileManager.default.contents(atPath: "/proc/\($0)/cmdline") }
            .flatMap { $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) } }
            .compactMap { argument -> String? in
                guard let range = argument.range(of: "concord-redis-") else { return nil }
                return argument[range.lowerBound...].split(separator: "/").first.map(String.init)
            })
        #expect(!serverDirectories.isEmpty, "no redis-server of the run named its temp dir")
        #expect(harness.isRunning, "the run ended before it could be killed")
        harness.signal(SIGKILL)
        _ = await harness.waitForExit(timeout: .seconds(10))
        let gone = await eventually { started.allSatisfy { !self.alive($0) } }
        #expect(gone, "still running: \(started.filter { alive($0) })")
        // The watchdog also removes the run's temp dirs (the origin, the server's dir).
        let ours: Set<String> = [report.lastPathComponent]
        let runDirectories = { tempDirs().subtracting(before).subtracting(ours).filter { !$0.hasPrefix("concord-redis-") || serverDirectories.contains($0) } }
        // The watchdog notices the harness is gone within half a second, then removes them; on a
        // loaded machine that can take seconds.
        let cleaned = await eventually { runDirectories().isEmpty }
        #expect(cleaned, "left behind: \(runDirectories())")
        await supervisor.stopAll()
    }

    @Test func aMissingExecutableIsAHarnessError() async throws {
        var configuration = configuration("missing")
        configuration.executable = "/nonexistent/concord"
        await #expect(throws: ChaosError.self) { try await ChaosHarness(configuration: configuration).run() }
    }
}
