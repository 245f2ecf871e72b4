import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts child processes and guarantees they end with the harness: `stopAll` on the normal
/// and the error paths, `withSupervisor` on cancellation, `killAllNow` from a signal handler,
/// and a process-wide `atexit` hook for an `exit()` nobody planned for.
public final class ProcessSupervisor: Sendable {
    private struct State {
        var children: [Int32: ChildProcess] = [:]
        /// Set by `stopAll`: a launch racing the shutdown must not leave an orphan behind.
        var closed = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Children still running.
    public var running: [ChildProcess] {
        state.withLock { Array($0.children.values) }.filter(\.isRunning)
    }

    /// Starts `executable` with `arguments`. Its stdout and stderr are appended to `logFile`
    /// (or discarded). Throws `ChaosError(.processFailed)` if it cannot start, or once the
    /// supervisor has been stopped.
    public func launch(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        logFile: URL? = nil
    ) throws -> ChildProcess {
        if state.withLock({ $0.closed }) {
            throw ChaosError(.processFailed, "cannot start \(name): the supervisor is stopping")
        }
        let pid: pid_t
        do {
            pid = try Spawn.start(executable: executable, arguments: arguments, environment: environment, outputPath: logFile?.path)
        } catch let error as ChaosError {
            throw ChaosError(.processFailed, "cannot start \(name)", underlying: error)
        }
        let child = ChildProcess(name: name, processIdentifier: pid, logFile: logFile)
        ChildRegistry.shared.add(pid)
        // A thread of its own per child, blocked in waitpid: reaping must not occupy the
        // cooperative pool, and the exit must be seen even while the harness is busy.
        let reaper = Thread {
            let status = Spawn.waitForExit(pid)
            // Forgotten once reaped, so a reused pid is never killed at exit.
            ChildRegistry.shared.remove(pid)
            child.exited(status: status)
        }
        reaper.name = "concord-chaos-reaper-\(name)"
        reaper.start()
        let lateRefusal = state.withLock { state -> Bool in
            if state.closed { return true }
            state.children[pid] = child
            return false
        }
        if lateRefusal {
            child.signal(SIGKILL)
            throw ChaosError(.processFailed, "cannot start \(name): the supervisor is stopping")
        }
        return child
    }

    /// Stops every child (SIGTERM, then SIGKILL after `grace`), all at once, and refuses new
    /// launches from then on.
    public func stopAll(grace: Duration = .seconds(3)) async {
        let children = state.withLock { state -> [ChildProcess] in
            state.closed = true
            return Array(state.children.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for child in children where child.isRunning {
                group.addTask { await child.stop(grace: grace) }
            }
        }
    }

    /// SIGKILL to every running child, without waiting: for signal handlers and last-resort paths.
    public func killAllNow() {
        let children = state.withLock { state -> [ChildProcess] in
            state.closed = true
            return Array(state.children.values)
        }
        for child in children { child.signal(SIGKILL) }
    }

    /// Runs `body` with a fresh supervisor and stops every child it started on every way out:
    /// return, throw, or cancellation of the calling task.
    public static func withSupervisor<T: Sendable>(
        grace: Duration = .seconds(3),
        _ body: (ProcessSupervisor) async throws -> T
    ) async throws -> T {
        let supervisor = ProcessSupervisor()
        do {
            let result = try await body(supervisor)
            await supervisor.stopAll(grace: grace)
            return result
        } catch {
            await supervisor.stopAll(grace: grace)
            throw error
        }
    }
}

/// Every child pid still alive in this process, SIGKILLed at exit so an `exit()` from anywhere
/// (a second Ctrl-C, a fatal path) leaves no node behind.
final class ChildRegistry: Sendable {
    static let shared = ChildRegistry()
    private let pids = Mutex<Set<Int32>>([])

    private init() {
        atexit {
            ChildRegistry.shared.killAll()
        }
    }

    func add(_ pid: Int32) { _ = pids.withLock { $0.insert(pid) } }
    func remove(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }

    func killAll() {
        for pid in pids.withLock({ $0 }) { _ = kill(pid, SIGKILL) }
    }
}
