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
    @Test("two node processes: set on n1, read on n2, change on n2, n1 serves it within 5s")
    func endToEnd() async throws {
        let executable = try Self.concordExecutable()
        try await withRedisServer { server in
            let output = OutputLog()
            var nodes: [NodeProcess] = []
            do {
                for id in ["e2e-1", "e2e-2"] {
                    nodes.append(try NodeProcess.launch(
                        name: id,
                        executable: executable,
                        arguments: [
                            "node", "--id", id, "--port", "0", "--redis", server.url,
                            "--shutdown-timeout", "1s", "--parent-pid", String(getpid()),
                        ],
                        output: { output.append("[\(id)] \($0)") }
                    ))
                }
                var clients: [NodeClient] = []
                for node in nodes {
                    let port = try await node.waitUntilListening(timeout: .seconds(30))
                    clients.append(NodeClient(port: port, configuration: .init(requestTimeout: .seconds(30))))
                }
                for client in clients {
                    let ready = await eventually(timeout: .seconds(10)) { (try? await client.ready()) == true }
                    #expect(ready, "\(client.baseURL) never became ready:\n\(output.text)")
                }

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

    @Test("bad flags: a clear error and a non-zero exit, not a crash")
    func badFlags() async throws {
        let executable = try Self.concordExecutable()
        for arguments in [["node", "--duration", "soon"], ["node", "--max-value-bytes", "huge"], ["node", "--no-such-flag"], ["node", "--origin", "mysql://x"]] {
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
