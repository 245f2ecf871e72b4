import ConcordProcess
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
package final class ProcessSupervisor: Sendable {
    private struct State {
        var children: [Int32: ChildProcess] = [:]
        /// Set by `stopAll`: a launch racing the shutdown must not leave an orphan behind.
        var closed = false
    }

    private let state = Mutex(State())

    package init() {}

    /// Children still running.
    package var running: [ChildProcess] {
        state.withLock { Array($0.children.values) }.filter(\.isRunning)
    }

    /// Starts `executable` with `arguments`. Its stdout and stderr are appended to `logFile`
    /// (or discarded). Throws `ChaosError(.processFailed)` if it cannot start, or once the
    /// supervisor has been stopped.
    package func launch(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        logFile: URL? = nil
    ) throws -> ChildProcess {
        if state.withLock({ $0.closed }) {
            throw ChaosError(.processFailed, "cannot start \(name): the supervisor is stopping")
        }
        let child: ChildProcess
        do {
            child = try ChildProcess.launch(name: name, executable: executable, arguments: arguments, environment: environment, logFile: logFile)
        } catch {
            throw ChaosError(.processFailed, "cannot start \(name)", underlying: error)
        }
        let lateRefusal = state.withLock { state -> Bool in
            if state.closed { return true }
            state.children[child.processIdentifier] = child
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
    package func stopAll(grace: Duration = .seconds(3)) async {
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
    package func killAllNow() {
        let children = state.withLock { state -> [ChildProcess] in
            state.closed = true
            return Array(state.children.values)
        }
        for child in children { child.signal(SIGKILL) }
    }

    /// Runs `body` with a fresh supervisor and stops every child it started on every way out:
    /// return, throw, or cancellation of the calling task.
    package static func withSupervisor<T: Sendable>(
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
