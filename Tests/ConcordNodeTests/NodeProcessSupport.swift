import ConcordNode
import ConcordProcess
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `concord node` process started by a test, with its output kept for failure messages.
struct SpawnedNode {
    let process: NodeProcess
    let port: Int
    let output: OutputLog

    /// Starts `concord node` with `arguments` (after `node`) on a free port, exits with the
    /// test process, and waits until it listens.
    static func start(
        _ arguments: [String], environment: [String: String]? = nil, name: String = "node"
    ) async throws -> SpawnedNode {
        let output = OutputLog()
        let process = try launch(arguments, environment: environment, name: name, output: output)
        do {
            let port = try await process.waitUntilListening(timeout: .seconds(60))
            return SpawnedNode(process: process, port: port, output: output)
        } catch {
            await process.stop(grace: .seconds(2))
            throw error
        }
    }

    /// Starts `concord node` without waiting for it, for starts that must fail.
    static func launch(
        _ arguments: [String], environment: [String: String]? = nil, name: String = "node", output: OutputLog
    ) throws -> NodeProcess {
        var all = ["node", "--port", "0", "--shutdown-timeout", "1s", "--parent-pid", String(getpid())]
        if !arguments.contains("--id") { all += ["--id", name] }
        return try NodeProcess.launch(
            name: name, executable: try NodeProcessTests.concordExecutable(), arguments: all + arguments,
            environment: environment, output: { output.append($0) }
        )
    }

    func client(token: String? = nil, timeout: Duration = .seconds(30)) -> NodeClient {
        var configuration = NodeClient.Configuration(requestTimeout: timeout)
        configuration.bearerToken = token
        return NodeClient(port: port, configuration: configuration)
    }

    func stop() async {
        await process.stop(grace: .seconds(10))
    }
}

/// Runs `body` with a started node that is stopped afterwards, whether `body` returns or throws.
func withNode<T>(
    _ arguments: [String], environment: [String: String]? = nil, name: String = "node",
    _ body: (SpawnedNode) async throws -> T
) async throws -> T {
    let node = try await SpawnedNode.start(arguments, environment: environment, name: name)
    do {
        let result = try await body(node)
        await node.stop()
        return result
    } catch {
        await node.stop()
        throw error
    }
}

/// Runs `concord` with `arguments` to its end; returns its exit status and output.
func runConcord(_ arguments: [String], environment: [String: String]? = nil) async throws -> (status: Int32, output: String) {
    let output = OutputLog()
    let process = try NodeProcess.launch(
        name: "concord", executable: try NodeProcessTests.concordExecutable(), arguments: arguments,
        environment: environment, output: { output.append($0) }
    )
    let status = try await process.waitForExit()
    return (status, output.all)
}

/// Files in a temp dir that is removed when the value is released.
final class TemporaryFiles: @unchecked Sendable {
    let directory: URL

    init() throws {
        directory = try makeTemporaryDirectory()
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Writes `text` to a file named `name`, readable only by its owner; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

extension NodeResponse {
    /// The `code` of an error body, if the answer is one.
    var errorCode: String? { error?.code }
}
