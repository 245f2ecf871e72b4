import Concord
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The launcher `RedisServer` and `MemcachedServer` share: one server process on a fixed
/// 127.0.0.1 port, started on a free port (again on another one when a different process won
/// the port first), waited for until the probe finds our pid answering, and its faults (kill,
/// pause, resume), restart on the same port and stop.
final class ServerProcess: Sendable {
    /// What tells one kind of server from the other.
    struct Kind: Sendable {
        /// "redis-server", "memcached": for messages.
        let name: String
        /// The typed error the server's API throws (`RedisServerError`, `MemcachedServerError`).
        let error: @Sendable (String) -> any Error
    }

    private struct State {
        var process: ChildProcess?
        var stopped = false
    }

    let kind: Kind
    private let state: Mutex<State>

    init(kind: Kind, process: ChildProcess) {
        self.kind = kind
        self.state = Mutex(State(process: process))
    }

    /// The server process id, nil while killed.
    var processIdentifier: Int32? { state.withLock { $0.process?.processIdentifier } }

    // MARK: Starting

    /// Runs `start(port)` on free ports until one start did not lose its port to another process.
    static func onFreePort<Server>(_ kind: Kind, _ start: (Int) async throws -> Server) async throws -> Server {
        do {
            return try await Retry.run(backoff: .fixed(.zero), limit: .attempts(8)) { _ in try await start(try FreePort.next()) }
        } catch {
            throw kind.error("could not start \(kind.name): \(error)")
        }
    }

    /// Starts a process with `launch` and waits up to `timeout` until `probe` finds it answering
    /// on `port` (the pid it reports tells ours from another test's that won the same port).
    static func launch(
        _ kind: Kind, port: Int, timeout: Duration, probe: () -> Int32?, _ launch: () throws -> ChildProcess
    ) async throws -> ChildProcess {
        let process = try launch()
        struct NotAnswering: Error {}
        do {
            do {
                try await Retry.run(backoff: .fixed(.milliseconds(10)), limit: .duration(timeout), isRetryable: { $0 is NotAnswering }) { _ in
                    guard process.isRunning else {
                        throw kind.error("\(kind.name) exited during start on port \(port) (port taken?)")
                    }
                    guard let pid = probe(), pid == process.processIdentifier else { throw NotAnswering() }
                }
            } catch is NotAnswering {
                throw kind.error("\(kind.name) on port \(port) did not answer within \(timeout)")
            }
            return process
        } catch {
            terminate(process)
            throw error
        }
    }

    // MARK: Faults

    /// SIGKILL: the server dies at once and its port closes.
    func kill() {
        let process = state.withLock { state -> ChildProcess? in
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung server).
    func pause() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGSTOP) }
    }

    /// SIGCONT after `pause()`.
    func resume() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGCONT) }
    }

    /// Kills the server if running and starts a new process with `launch` (on the same port).
    func restart(port: Int, _ launch: () async throws -> ChildProcess) async throws {
        kill()
        struct StoppedDuringRestart: Error {}
        do {
            // The port may linger for a moment after the kill; retry briefly.
            try await Retry.run(backoff: .fixed(.milliseconds(50)), limit: .attempts(20), isRetryable: { !($0 is StoppedDuringRestart) }) { _ in
                let process = try await launch()
                let stale = state.withLock { state -> ChildProcess? in
                    if state.stopped { return process }
                    state.process = process
                    return nil
                }
                if let stale {
                    Self.terminate(stale)
                    throw StoppedDuringRestart()
                }
            }
        } catch is StoppedDuringRestart {
            throw kind.error("\(kind.name) was stopped during restart")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw kind.error("could not restart \(kind.name) on port \(port): \(error)")
        }
    }

    /// Kills the server. Idempotent; it cannot be restarted after.
    func stop() {
        let process = state.withLock { state -> ChildProcess? in
            state.stopped = true
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
    }

    /// SIGKILL (which also ends a SIGSTOPped process) and wait for the reaper, so the port is
    /// closed when this returns. Synchronous, because `stop()` runs from `deinit` too.
    static func terminate(_ process: ChildProcess) {
        process.signal(SIGKILL)
        _ = process.waitForExitBlocking(timeout: .seconds(10))
    }

    /// The executable's path, or the kind's error naming `hint` when it is not in PATH.
    static func locate(_ kind: Kind, _ executable: String, hint: String) throws -> String {
        guard let path = ExecutableSearch.locate(executable) else { throw kind.error("\(executable) not found in PATH (\(hint))") }
        return path
    }
}
