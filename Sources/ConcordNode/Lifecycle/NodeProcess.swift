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
    private let process: ProcessBox
    private let state: Mutex<State>

    private struct State {
        var exitStatus: Int32?
        var exitWaiters: [CheckedContinuation<Int32, Never>] = []
        var port: Int?
        var recentLines: [String] = []
    }

    /// How many of its last output lines are kept for error messages.
    static let keptLines = 200

    /// The line a node logs once its server is up; `concord node` logs it with the real port.
    static let listeningMarker = "listening on http://"

    private init(name: String, process: Process) {
        self.name = name
        self.process = ProcessBox(process)
        self.processIdentifier = process.processIdentifier
        self.state = Mutex(State())
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr

        // The instance needs the pid, which exists only after run(); the handlers need the
        // instance. A box filled right after run() bridges the two.
        let holder = Mutex<NodeProcess?>(nil)
        let onLine: @Sendable (String) -> Void = { line in
            holder.withLock { $0 }?.received(line)
            output(line)
        }
        stdout.fileHandleForReading.readabilityHandler = LineSplitter(onLine).handler
        stderr.fileHandleForReading.readabilityHandler = LineSplitter(onLine).handler
        process.terminationHandler = { ended in
            holder.withLock { $0 }?.exited(ended.terminationStatus)
        }
        try process.run()
        let node = NodeProcess(name: name, process: process)
        holder.withLock { $0 = node }
        // It may have ended before the handler could see the instance.
        if !process.isRunning { node.exited(process.terminationStatus) }
        return node
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

    public var isRunning: Bool { state.withLock { $0.exitStatus == nil } }

    /// The exit status (or signal number) once it has exited.
    public var exitStatus: Int32? { state.withLock { $0.exitStatus } }

    /// The port from its "listening on" line, once printed.
    public var port: Int? { state.withLock { $0.port } }

    /// Its last output lines, for error messages.
    public var recentOutput: [String] { state.withLock { $0.recentLines } }

    private func received(_ line: String) {
        let port = Self.announcedPort(in: line)
        state.withLock { state in
            state.recentLines.append(line)
            if state.recentLines.count > Self.keptLines { state.recentLines.removeFirst(state.recentLines.count - Self.keptLines) }
            if let port, state.port == nil { state.port = port }
        }
    }

    private func exited(_ status: Int32) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int32, Never>] in
            guard state.exitStatus == nil else { return [] }
            state.exitStatus = status
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// The port in a "listening on http://host:port" line.
    static func announcedPort(in line: String) -> Int? {
        guard let range = line.range(of: listeningMarker) else { return nil }
        let address = line[range.upperBound...].prefix { !$0.isWhitespace }
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...].prefix { $0.isNumber })
    }

    // MARK: - Waiting and stopping

    /// Waits for it to exit; returns its exit status.
    public func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = state.withLock { state -> Int32? in
                if let status = state.exitStatus { return status }
                state.exitWaiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Waits until it announces its port; throws if it exits first or `timeout` passes.
    public func waitUntilListening(timeout: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let port { return port }
            if let status = exitStatus {
                throw NodeProcessError("\(name) exited with status \(status) before listening:\n" + recentOutput.suffix(20).joined(separator: "\n"))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw NodeProcessError("\(name) did not start listening within \(timeout):\n" + recentOutput.suffix(20).joined(separator: "\n"))
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
            group.addTask { await self.waitForExit() }
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
        return await waitForExit()
    }

    /// SIGKILL without waiting: for exit paths that cannot wait (atexit).
    public func killNow() {
        signal(SIGKILL)
    }
}

/// Failure to start or reach a child node.
public struct NodeProcessError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `Process` is not Sendable; after `run()` this type only reads its pid and status, which
/// Foundation guards itself.
private final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}

/// Reassembles lines from pipe reads, which split output at arbitrary bytes.
private final class LineSplitter: Sendable {
    private let pending = Mutex<[UInt8]>([])
    private let onLine: @Sendable (String) -> Void

    init(_ onLine: @escaping @Sendable (String) -> Void) {
        self.onLine = onLine
    }

    var handler: @Sendable (FileHandle) -> Void {
        { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                // End of file: the child closed its end; flush a last unterminated line.
                handle.readabilityHandler = nil
                let rest = pending.withLock { pending -> [UInt8] in
                    defer { pending = [] }
                    return pending
                }
                if !rest.isEmpty { onLine(String(decoding: rest, as: UTF8.self)) }
                return
            }
            let lines = pending.withLock { pending -> [String] in
                pending.append(contentsOf: data)
                var lines: [String] = []
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                return lines
            }
            for line in lines { onLine(line) }
        }
    }
}
