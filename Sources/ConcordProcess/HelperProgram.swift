import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a helper program (redis-benchmark) to completion with a hard time limit and returns
/// what it printed.
package enum HelperProgram {
    /// A finished run: the exit status (-1 when it was killed for outliving its time) and its output.
    package struct Output: Sendable {
        package var status: Int32
        package var standardOutput: String
        package var standardError: String
    }

    /// Runs `executable` (a path) with `arguments`; SIGTERM when it outlives `timeout`, then
    /// SIGKILL if it still has not exited a few seconds later.
    /// `environment` replaces this process's environment when given (a password for redis-cli
    /// goes there rather than into the arguments, which every process list shows).
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration
    ) async throws -> Output {
        let spawned = try ProcessSpawn.start(executable: executable, arguments: arguments, environment: environment, output: .pipes)
        let exit = AsyncStream<Int32>.makeStream()
        ProcessSpawn.reap(spawned.processIdentifier, name: "helper") { status in
            exit.continuation.yield(status)
            exit.continuation.finish()
        }
        // Drained while the program runs, each pipe on a thread of its own, so a chatty program
        // never blocks on a full pipe.
        let output = PipeText(spawned.standardOutput)
        let error = PipeText(spawned.standardError)
        let pid = spawned.processIdentifier
        let status: Int32 = await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await status in exit.stream { return status }
                return -1
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            if let first {
                group.cancelAll()
                return first
            }
            _ = kill(pid, SIGTERM)
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                _ = kill(pid, SIGKILL)
                return nil
            }
            // Whatever its status, a run that outlived its time reports -1.
            while let next = await group.next() {
                if next != nil { break }
            }
            group.cancelAll()
            return -1
        }
        return Output(status: status, standardOutput: output.text(), standardError: error.text())
    }
}

/// Everything a child writes to one pipe, read to end of file on a thread of its own.
private final class PipeText: Sendable {
    private let state = Mutex<(bytes: [UInt8], done: Bool)>(([], false))
    private let finished = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle?) {
        guard let handle else {
            state.withLock { $0.done = true }
            finished.signal()
            return
        }
        Thread.detachNewThread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                state.withLock { $0.bytes.append(contentsOf: data) }
            }
            try? handle.close()
            finished.signal()
        }
    }

    /// The text once the pipe has reached end of file (bounded: a grandchild that inherited
    /// the pipe could keep it open).
    func text() -> String {
        _ = finished.wait(timeout: .now() + .seconds(2))
        return String(decoding: state.withLock { $0.bytes }, as: UTF8.self)
    }
}
