import Foundation

/// Runs a helper program (redis-benchmark) to completion with a hard time limit.
enum BenchProcess {
    struct Output: Sendable {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The executable's path from `PATH`, or nil.
    static func locate(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` with `arguments`; kills it when it outlives `timeout`.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration) async throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let standardOutput = Pipe()
        let standardError = Pipe()
        process.standardOutput = standardOutput
        process.standardError = standardError
        process.standardInput = FileHandle.nullDevice
        // Drained while the process runs, so a chatty program never blocks on a full pipe.
        let collected = OutputCollector()
        standardOutput.fileHandleForReading.readabilityHandler = { handle in collected.append(handle.availableData, error: false) }
        standardError.fileHandleForReading.readabilityHandler = { handle in collected.append(handle.availableData, error: true) }
        let finished = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in
            finished.continuation.yield()
            finished.continuation.finish()
        }
        try process.run()
        let status: Int32 = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in finished.stream { return true }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let exitedFirst = await group.next() ?? false
            if !exitedFirst, process.isRunning {
                process.terminate()
            }
            group.cancelAll()
            process.waitUntilExit()
            return exitedFirst ? process.terminationStatus : -1
        }
        standardOutput.fileHandleForReading.readabilityHandler = nil
        standardError.fileHandleForReading.readabilityHandler = nil
        collected.append(standardOutput.fileHandleForReading.readDataToEndOfFile(), error: false)
        collected.append(standardError.fileHandleForReading.readDataToEndOfFile(), error: true)
        let (out, err) = collected.text
        return Output(status: status, standardOutput: out, standardError: err)
    }
}

/// Bytes read from a child's pipes, appended from FileHandle callbacks on other threads.
private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var output = Data()
    private var error = Data()

    func append(_ data: Data, error isError: Bool) {
        guard !data.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        if isError { error.append(data) } else { output.append(data) }
    }

    var text: (String, String) {
        lock.lock()
        defer { lock.unlock() }
        return (String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
