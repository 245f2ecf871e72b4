import ConcordProcess
import ConcordNode
import ConcordTesting
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `concord node` as real processes on a real Redis, the way operators run it.
@Suite("Node processes")
struct NodeProcessTests {
    /// Launches one `concord node` per id on `redisURL` (with the extra arguments of its index),
    /// adding each to `nodes` as soon as it runs, so the caller stops it on any failure, and
    /// returns a client per node once every node listens and reports ready.
    static func launchReadyNodes(
        _ nodes: inout [NodeProcess], ids: [String], executable: String, redisURL: String, output: OutputLog,
        extraArguments: (Int) -> [String] = { _ in [] }
    ) async throws -> [NodeClient] {
        for (index, id) in ids.enumerated() {
            nodes.append(try NodeProcess.launch(
                name: id,
                executable: executable,
                arguments: ["node", "--id", id, "--port", "0", "--redis", redisURL] + extraArguments(index)
                    + ["--shutdown-timeout", "1s", "--parent-pid", String(getpid())],
                output: { output.append("[\(id)] \($0)") }
            ))
        }
        var clients: [NodeClient] = []
        for node in nodes {
            let port = try await node.waitUntilListening(timeout: .seconds(30))
            clients.append(NodeClient(port: port, configuration: .init(requestTimeout: .seconds(30))))
        }
        for client in clients {
            let ready = await eventually(timeout: TestBounds.condition) { (try? await client.ready()) == true }
            #expect(ready, "\(client.baseURL) never became ready:\n\(output.text)")
        }
        return clients
    }

    @Test("two node processes: set on n1, read on n2, change on n2, n1 serves it within 5s")
    func endToEnd() async throws {
        let executable = try Self.concordExecutable()
        try await withRedisServer { server in
            let output = OutputLog()
            var nodes: [NodeProcess] = []
            do {
                let clients = try await Self.launchReadyNodes(
                    &nodes, ids: ["e2e-1", "e2e-2"], executable: executable, redisURL: server.url, output: output
                )

                let written = try await clients[0].set("e2e", value: Array("one".utf8))
                #expect(written.status == 200)
                let read = try await clients[1].get("e2e")
                #expect(read.text == "one")
                #expect(read.version == written.version)
                #expect(read.source == "distributed")
                #expect(try await clients[0].get("e2e").source == "memory")

                let changed = try await clients[1].set("e2e", value: Array("two".utf8))
                let propagated = try await eventually(timeout: .seconds(5)) {
                    try await clients[0].get("e2e").version == changed.version
                }
                #expect(propagated, "n1 did not serve n2's write within 5s:\n\(output.text)")
                #expect(try await clients[0].get("e2e").text == "two")

                // SIGTERM: both stop gracefully, with status 0.
                for node in nodes {
                    let status = await node.stop(grace: .seconds(10))
                    #expect(status == 0, "\(node.name) exited with \(status):\n\(output.text)")
                }
            } catch {
                for node in nodes { await node.stop(grace: .seconds(2)) }
                throw error
            }
        }
    }

    /// `--executor nio` moves every task of the node onto the event loops; a node on either
    /// executor must serve, write to Redis, publish and receive invalidations, over HTTP and RESP,
    /// and stop cleanly (nothing may wait synchronously on a loop thread).
    @Test("a node on SwiftNIO's executor and one on Swift's pool share a Redis: writes, reads, RESP, propagation, clean stop")
    func executors() async throws {
        let executable = try Self.concordExecutable()
        try await withRedisServer { server in
            let output = OutputLog()
            var nodes: [NodeProcess] = []
            do {
                let respPorts = try await FreePort.distinct(2)
                let executors = [GlobalExecutor.nio, .standard]
                let clients = try await Self.launchReadyNodes(
                    &nodes, ids: executors.map { "exec-\($0.rawValue)" }, executable: executable, redisURL: server.url, output: output
                ) { index in
                    ["--resp-port", String(respPorts[index]), "--executor", executors[index].rawValue]
                }
                #expect(output.all.contains("[exec-nio] ") && output.all.contains("executor nio: Swift tasks run on SwiftNIO's"), "\(output.all)")
                #expect(output.all.contains("executor default: Swift tasks run on Swift's cooperative pool"), "\(output.all)")

                // Concurrent writes on each node, read back through the other from Redis.
                let nio = clients[0], pool = clients[1]
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<40 {
                        let writer = index.isMultiple(of: 2) ? nio : pool
                        group.addTask {
                            let response = try await writer.set("exec-\(index)", value: Array("value \(index)".utf8))
                            #expect(response.status == 200)
                        }
                    }
                    try await group.waitForAll()
                }
                for index in 0..<40 {
                    let reader = index.isMultiple(of: 2) ? pool : nio
                    let read = try await reader.get("exec-\(index)")
                    #expect(read.text == "value \(index)")
                    #expect(read.source == "distributed")
                }

                // A change on one node reaches the other's L1 through the backplane, both ways.
                for (writer, reader) in [(nio, pool), (pool, nio)] {
                    let changed = try await writer.set("exec-0", value: Array("from \(writer.baseURL)".utf8))
                    let propagated = try await eventually(timeout: .seconds(5)) {
                        try await reader.get("exec-0").version == changed.version
                    }
                    #expect(propagated, "\(reader.baseURL) did not serve \(writer.baseURL)'s write within 5s:\n\(output.text)")
                }

                // RESP: SET on each node (an L2 write from the front end's task), GET on the other.
                var connections: [RESPTestConnection] = []
                for port in respPorts {
                    let connection = try await eventuallyConnected(port: port)
                    connections.append(connection)
                }
                for (index, connection) in connections.enumerated() {
                    try await connection.command("SET", "resp-\(index)", "via resp \(index)")
                    try await connection.expectReply("+OK\r\n")
                }
                for (index, connection) in connections.enumerated() {
                    let other = 1 - index
                    let expected = "via resp \(other)"
                    try await connection.command("GET", "resp-\(other)")
                    try await connection.expectReply("$\(expected.utf8.count)\r\n\(expected)\r\n")
                }
                for connection in connections { await connection.close() }

                for node in nodes {
                    let status = await node.stop(grace: .seconds(10))
                    #expect(status == 0, "\(node.name) exited with \(status):\n\(output.text)")
                }
            } catch {
                for node in nodes { await node.stop(grace: .seconds(2)) }
                throw error
            }
        }
    }

    /// A RESP connection to a node process, once its front end accepts (it binds after HTTP).
    private func eventuallyConnected(port: Int) async throws -> RESPTestConnection {
        var connection: RESPTestConnection?
        let connected = try await eventually(timeout: .seconds(10)) {
            connection = try? await RESPTestConnection.connect(port: port)
            return connection != nil
        }
        guard connected, let connection else { throw TestError("the RESP port \(port) never accepted") }
        return connection
    }

    @Test("bad flags: a clear error and a non-zero exit, not a crash")
    func badFlags() async throws {
        let executable = try Self.concordExecutable()
        for arguments in [["node", "--duration", "soon"], ["node", "--max-value-bytes", "huge"], ["node", "--no-such-flag"], ["node", "--origin", "mysql://x"], ["node", "--executor", "fast"]] {
            let output = OutputLog()
            let process = try NodeProcess.launch(name: "bad", executable: executable, arguments: arguments, output: { output.append($0) })
            let status = try await process.waitForExit()
            #expect(status != 0)
            // ArgumentParser's usage errors exit with 64; a crash would be a signal (> 128) or 1 with a trace.
            #expect(status == 64, "\(arguments) → \(status):\n\(output.text)")
            #expect(output.text.contains("Error:"), "\(arguments):\n\(output.text)")
        }
    }

    /// The `concord` binary of this build: next to the test bundle, or in the package's
    /// `.build/debug`, or `CONCORD_EXECUTABLE`. `scripts/test.sh` builds it before `swift test`.
    static func concordExecutable() throws -> String {
        var candidates: [String] = []
        if let path = ProcessInfo.processInfo.environment["CONCORD_EXECUTABLE"] { candidates.append(path) }
        let testBinary = URL(fileURLWithPath: NodeProcess.currentExecutable())
        candidates.append(testBinary.deletingLastPathComponent().appendingPathComponent("concord").path)
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/concord").path)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw TestError("no concord executable; run `swift build` first (looked in \(candidates))")
    }
}

/// Output lines of child processes, kept for failure messages.
final class OutputLog: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) {
        lines.withLock { lines in
            lines.append(line)
            if lines.count > 400 { lines.removeFirst(lines.count - 400) }
        }
    }

    var text: String { lines.withLock { $0.suffix(60).joined(separator: "\n") } }

    /// Every kept line (the last 400).
    var all: String { lines.withLock { $0.joined(separator: "\n") } }
}
