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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        var output: FileHandle?
        if let logFile {
            do {
                if !FileManager.default.fileExists(atPath: logFile.path) {
                    FileManager.default.createFile(atPath: logFile.path, contents: nil)
                }
                let handle = try FileHandle(forWritingTo: logFile)
                try handle.seekToEnd()
                output = handle
            } catch {
                throw ChaosError(.io, "cannot open \(logFile.path) for \(name)'s output", underlying: error)
            }
        }
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = output ?? FileHandle.nullDevice
        defer { try? output?.close() }

        // The handler needs the child object, which needs the pid, which exists only after run().
        let holder = Mutex<ChildProcess?>(nil)
        let early = Mutex<Int32?>(nil)
        process.terminationHandler = { ended in
            let status = ended.terminationStatus
            // The registry forgets the pid once it is reaped, so a reused pid is never killed at exit.
            ChildRegistry.shared.remove(ended.processIdentifier)
            if let child = holder.withLock({ $0 }) {
                child.exited(status: status)
            } else {
                early.withLock { $0 = status }
            }
        }

        let refused = state.withLock { $0.closed }
        if refused { throw ChaosError(.processFailed, "cannot start \(name): the supervisor is stopping") }
        do {
            try process.run()
        } catch {
            throw ChaosError(.processFailed, "cannot start \(name) (\(executable))", underlying: error)
        }
        let child = ChildProcess(name: name, process: process, logFile: logFile)
        ChildRegistry.shared.add(child.processIdentifier)
        let lateRefusal = state.withLock { state -> Bool in
            if state.closed { return true }
            state.children[child.processIdentifier] = child
            return false
        }
        holder.withLock { $0 = child }
        if let status = early.withLock({ $0 }) { child.exited(status: status) }
        // It may have been reaped before it was registered; then nothing else would remove it.
        if !child.isRunning { ChildRegistry.shared.remove(child.processIdentifier) }
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
