import Concord
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `concord node` child process, for `concord cluster` and end-to-end tests: its output is
/// split into lines and handed to `output`, the port it announces is remembered, and it is
/// stopped with SIGTERM, then SIGKILL if it does not exit in time.
public final class NodeProcess: Sendable {
    /// A label for its output (the node id, usually).
    public let name: String
    public let processIdentifier: Int32
    /// Created before the process starts, so output and an early exit are never missed.
    private let box: StateBox

    fileprivate struct State {
        var exitStatus: Int32?
        var exitWaiters: [UInt64: CheckedContinuation<Int32, any Error>] = [:]
        var nextWaiter: UInt64 = 0
        var port: Int?
        var recentLines: [String] = []
        /// stdout and stderr until each reaches end of file.
        var openStreams = 2
    }

    /// The state, shared by the instance and the pipe and termination handlers.
    fileprivate final class StateBox: Sendable {
        let state = Mutex(State())

        func received(_ line: String) {
            let port = NodeProcess.announcedPort(in: line)
            state.withLock { state in
                state.recentLines.append(line)
                if state.recentLines.count > NodeProcess.keptLines {
                    state.recentLines.removeFirst(state.recentLines.count - NodeProcess.keptLines)
                }
                if let port, state.port == nil { state.port = port }
            }
        }

        func streamEnded() {
            state.withLock { $0.openStreams -= 1 }
        }

        func exited(_ status: Int32) {
            let waiters = state.withLock { state -> [CheckedContinuation<Int32, any Error>] in
                guard state.exitStatus == nil else { return [] }
                state.exitStatus = status
                defer { state.exitWaiters = [:] }
                return Array(state.exitWaiters.values)
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
    }

    /// How many of its last output lines are kept for error messages.
    static let keptLines = 200

    /// The line a node logs once its server is up (`listening on http://…` or `https://…`);
    /// `concord node` logs it with the real port.
    static let listeningMarker = "listening on http"

    private init(name: String, processIdentifier: Int32, box: StateBox) {
        self.name = name
        self.processIdentifier = processIdentifier
        self.box = box
    }

    /// Starts `executable` with `arguments`. Each line it prints on stdout or stderr goes to
    /// `output` (from a background thread, one line at a time).
    public static func launch(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        output: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> NodeProcess {
        let box = StateBox()
        let onLine: @Sendable (String) -> Void = { line in
            box.received(line)
            output(line)
        }
        let spawned = try ProcessSpawn.start(executable: executable, arguments: arguments, environment: environment, output: .pipes)
        ProcessSpawn.reap(spawned.processIdentifier, name: name) { status in box.exited(status) }
        // Each pipe is drained by a blocking read on a thread of its own, which owns the handle
        // until end of file: a dispatch readability handler can outlive its handle and fault.
        for handle in [spawned.standardOutput, spawned.standardError].compactMap({ $0 }) {
            let splitter = LineSplitter(onLine, onEnd: box.streamEnded)
            Thread.detachNewThread { splitter.drain(handle) }
        }
        return NodeProcess(name: name, processIdentifier: spawned.processIdentifier, box: box)
    }

    /// The path of the running executable, so `concord cluster` starts the same build of itself.
    public static func currentExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return path
        }
        let argument = CommandLine.arguments[0]
        if argument.hasPrefix("/") { return argument }
        return FileManager.default.currentDirectoryPath + "/" + argument
    }

    // MARK: - State

    public var isRunning: Bool { box.state.withLock { $0.exitStatus == nil } }

    /// The exit status (or signal number) once it has exited.
    public var exitStatus: Int32? { box.state.withLock { $0.exitStatus } }

    /// The port from its "listening on" line, once printed.
    public var port: Int? { box.state.withLock { $0.port } }

    /// Its last output lines, for error messages.
    public var recentOutput: [String] { box.state.withLock { $0.recentLines } }

    /// The port in a "listening on http://host:port" (or https) line.
    static func announcedPort(in line: String) -> Int? {
        guard let range = line.range(of: listeningMarker) else { return nil }
        let rest = line[range.upperBound...]
        guard let schemeEnd = rest.range(of: "://"), rest[..<schemeEnd.lowerBound].allSatisfy({ $0 == "s" }) else { return nil }
        let address = rest[schemeEnd.upperBound...].prefix { !$0.isWhitespace }
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...].prefix { $0.isNumber })
    }

    // MARK: - Waiting and stopping

    /// Waits for it to exit and returns its exit status; throws `CancellationError` when the
    /// waiting task is cancelled (a task group racing exits against a signal must be able to end).
    public func waitForExit() async throws -> Int32 {
        let status = try await waitForTermination()
        // The pipes are read on other threads: let the last lines arrive before answering, so a
        // caller that reads `recentOutput` after the exit sees everything. Bounded, because a
        // grandchild that inherited the pipes could keep them open.
        let deadline = ContinuousClock.now + .seconds(1)
        while box.state.withLock({ $0.openStreams > 0 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        return status
    }

    private func waitForTermination() async throws -> Int32 {
        let id = box.state.withLock { state -> UInt64 in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Now { case exited(Int32), cancelled, waiting }
                // Under the lock, so `onCancel` either sees the stored waiter or runs before it
                // is stored, in which case `Task.isCancelled` is already true here.
                let now = box.state.withLock { state -> Now in
                    if let status = state.exitStatus { return .exited(status) }
                    if Task.isCancelled { return .cancelled }
                    state.exitWaiters[id] = continuation
                    return .waiting
                }
                switch now {
                case .exited(let status): continuation.resume(returning: status)
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: break
                }
            }
        } onCancel: {
            let waiter = box.state.withLock { $0.exitWaiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Waits until it announces its port; throws if it exits first or `timeout` passes.
    public func waitUntilListening(timeout: Duration) async throws -> Int {
        struct NotListening: Error {}
        do {
            return try await Retry.run(backoff: .fixed(.milliseconds(20)), limit: .duration(timeout), isRetryable: { $0 is NotListening }) { _ in
                if let port { return port }
                if let status = exitStatus {
                    throw NodeProcessError("\(name) exited with status \(status) before listening:\n" + recentOutput.suffix(20).joined(separator: "\n"))
                }
                throw NotListening()
            }
        } catch is NotListening {
            throw NodeProcessError("\(name) did not start listening within \(timeout):\n" + recentOutput.suffix(20).joined(separator: "\n"))
        }
    }

    /// Sends `signal` if it is still running.
    public func signal(_ signal: Int32) {
        if isRunning { _ = kill(processIdentifier, signal) }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status. Safe to call more than once.
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) async -> Int32 {
        signal(SIGTERM)
        let exited = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { try? await self.waitForExit() }
            group.addTask {
                try? await Task.sleep(for: grace)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let exited { return exited }
        signal(SIGKILL)
        // SIGKILL cannot be caught; the exit follows at once.
        return (try? await waitForExit()) ?? -1
    }

    /// SIGKILL without waiting: for exit paths that cannot wait (atexit).
    public func killNow() {
        signal(SIGKILL)
    }
}

/// Reassembles lines from pipe reads, which split output at arbitrary bytes.
private final class LineSplitter: Sendable {
    private let onLine: @Sendable (String) -> Void
    private let onEnd: @Sendable () -> Void

    init(_ onLine: @escaping @Sendable (String) -> Void, onEnd: @escaping @Sendable () -> Void) {
        self.onLine = onLine
        self.onEnd = onEnd
    }

    /// Reads until end of file, handing out complete lines; a last unterminated line is
    /// handed out at the end.
    func drain(_ handle: FileHandle) {
        var pending: [UInt8] = []
        while true {
            let data = handle.availableData
            if data.isEmpty { break }
            pending.append(contentsOf: data)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                onLine(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
        try? handle.close()
        onEnd()
    }
}
