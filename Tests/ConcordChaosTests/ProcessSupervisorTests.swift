import ConcordProcess
import ConcordChaos
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ProcessSupervisorTests {
    /// Whether a process with this pid exists (a reaped child does not).
    private func exists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    @Test func stopAllEndsEveryChild() async throws {
        let supervisor = ProcessSupervisor()
        let first = try supervisor.launch(name: "sleep-1", executable: "/bin/sleep", arguments: ["100"])
        let second = try supervisor.launch(name: "sleep-2", executable: "/bin/sleep", arguments: ["100"])
        #expect(exists(first.processIdentifier))
        #expect(supervisor.running.count == 2)
        await supervisor.stopAll(grace: .seconds(2))
        #expect(!first.isRunning)
        #expect(!second.isRunning)
        #expect(!exists(first.processIdentifier))
        #expect(!exists(second.processIdentifier))
        #expect(supervisor.running.isEmpty)
        // Stopped means stopped: a late launch is refused rather than orphaned.
        #expect(throws: ChaosError.self) { try supervisor.launch(name: "late", executable: "/bin/sleep", arguments: ["100"]) }
    }

    @Test func cancellingTheRunStopsItsChildren() async throws {
        let launched = LaunchedPID()
        let task = Task {
            try await ProcessSupervisor.withSupervisor(grace: .seconds(1)) { supervisor in
                let child = try supervisor.launch(name: "sleep", executable: "/bin/sleep", arguments: ["100"])
                launched.set(child.processIdentifier)
                try await Task.sleep(for: .seconds(100))
            }
        }
        while launched.pid == nil { try await Task.sleep(for: .milliseconds(10)) }
        let pid = try #require(launched.pid)
        #expect(exists(pid))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!exists(pid))
    }

    @Test func aChildThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        let supervisor = ProcessSupervisor()
        let stubborn = try supervisor.launch(name: "stubborn", executable: "/bin/sh", arguments: ["-c", "trap '' TERM; exec sleep 100"])
        try await Task.sleep(for: .milliseconds(200))
        let clock = ContinuousClock()
        let started = clock.now
        let status = await stubborn.stop(grace: .milliseconds(300))
        #expect(status == SIGKILL)
        // A generous bound: the grace is 300 ms, but this machine is shared and noisy.
        #expect(clock.now - started < .seconds(30))
        #expect(!exists(stubborn.processIdentifier))
        await supervisor.stopAll()
    }

    @Test func exitStatusesAndOutputAreKept() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("concord-child-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let supervisor = ProcessSupervisor()
        let child = try supervisor.launch(name: "sh", executable: "/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"], logFile: log)
        #expect(await child.waitForExit(timeout: .seconds(10)) == 3)
        #expect(child.exitStatus == 3)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("out"))
        #expect(text.contains("err"))
        // A wait that times out says so instead of hanging.
        let sleeper = try supervisor.launch(name: "sleep", executable: "/bin/sleep", arguments: ["100"])
        #expect(await sleeper.waitForExit(timeout: .milliseconds(50)) == nil)
        await supervisor.stopAll()
        #expect(!sleeper.isRunning)
    }

    @Test func aMissingExecutableIsAnError() {
        let supervisor = ProcessSupervisor()
        #expect(throws: ChaosError.self) {
            try supervisor.launch(name: "nothing", executable: "/nonexistent/concord", arguments: [])
        }
    }
}

/// Hands a pid from the task under test to the test.
private final class LaunchedPID: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int32?

    var pid: Int32? { lock.withLock { value } }
    func set(_ pid: Int32) { lock.withLock { value = pid } }
}
