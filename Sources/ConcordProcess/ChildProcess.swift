import Concord
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One child process (started by `launch`, or by the chaos harness's supervisor): its pid, its
/// exit status, and the ways to stop it. Waiting never depends on task cancellation, so a
/// harness that is being torn down after Ctrl-C still waits for its children to be gone.
public final class ChildProcess: Sendable {
    /// A label for messages and logs (the node id, usually).
    public let name: String
    public let processIdentifier: Int32
    /// Where its stdout and stderr go, if anywhere.
    public let logFile: URL?

    private struct State {
        var exitStatus: Int32?
        var waiters: [UInt64: CheckedContinuation<Int32?, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Entered until the exit, so a synchronous caller (a `deinit`) can wait for it too.
    private let exitGroup = DispatchGroup()

    private init(name: String, processIdentifier: Int32, logFile: URL?) {
        self.name = name
        self.processIdentifier = processIdentifier
        self.logFile = logFile
        exitGroup.enter()
    }

    /// Starts `executable` (a path) with `arguments`; its stdout and stderr are appended to
    /// `logFile`, or discarded. A thread of its own reaps it, so `exitStatus` is set at its exit.
    public static func launch(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        logFile: URL? = nil
    ) throws -> ChildProcess {
        let spawned = try ProcessSpawn.start(
            executable: executable,
            arguments: arguments,
            environment: environment,
            output: logFile.map { .file($0.path) } ?? .discard
        )
        let child = ChildProcess(name: name, processIdentifier: spawned.processIdentifier, logFile: logFile)
        ProcessSpawn.reap(spawned.processIdentifier, name: name) { status in child.exited(status: status) }
        return child
    }

    public var isRunning: Bool { state.withLock { $0.exitStatus == nil } }

    /// The exit status, or the signal that ended it, once it has exited.
    public var exitStatus: Int32? { state.withLock { $0.exitStatus } }

    /// Called by the reaper once the process has been waited for.
    private func exited(status: Int32) {
        let (first, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Int32?, Never>]) in
            guard state.exitStatus == nil else { return (false, []) }
            state.exitStatus = status
            defer { state.waiters = [:] }
            return (true, Array(state.waiters.values))
        }
        if first { exitGroup.leave() }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// Blocks the calling thread until the exit; nil if `timeout` passed first. For paths that
    /// cannot suspend (`deinit`, a synchronous `stop()`).
    public func waitForExitBlocking(timeout: Duration) -> Int32? {
        let nanoseconds = Int(clamping: max(0, timeout.nanosecondsClamped))
        guard exitGroup.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
        return exitStatus
    }

    /// Sends `signal` while it runs. After the exit the pid may belong to someone else, so
    /// nothing is sent then.
    public func signal(_ signal: Int32) {
        if isRunning { _ = Glibc.kill(processIdentifier, signal) }
    }

    /// Waits for the exit; nil if `timeout` passed first.
    public func waitForExit(timeout: Duration? = nil) async -> Int32? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
            let id = state.withLock { state -> UInt64? in
                guard state.exitStatus == nil else { return nil }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = continuation
                return id
            }
            guard let id else {
                continuation.resume(returning: exitStatus)
                return
            }
            if let timeout {
                // A Dispatch timer rather than Task.sleep: a cancelled task's sleep ends at once,
                // and a cancelled harness must still give its children their grace period.
                let nanoseconds = Int(clamping: max(0, timeout.nanosecondsClamped))
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                    let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                    waiter?.resume(returning: nil)
                }
            }
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`. Returns the exit status, or
    /// nil if even SIGKILL was not reaped within a few seconds (which should not happen).
    @discardableResult
    public func stop(grace: Duration) async -> Int32? {
        guard isRunning else { return exitStatus }
        signal(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        return await kill()
    }

    /// SIGKILL and wait for the exit.
    @discardableResult
    public func kill() async -> Int32? {
        guard isRunning else { return exitStatus }
        // SIGKILL also ends a SIGSTOPped process.
        signal(SIGKILL)
        return await waitForExit(timeout: .seconds(10))
    }
}

