import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

/// The Redis password stays out of argv, logs, errors and `/v1/stats`.
@Suite("Node secrets", .serialized)
struct NodeSecretsTests {
    static let password = "hunter2-\(UInt32.random(in: 1_000_000...9_999_999))"

    @Test("a URL whose user info is a bare secret is refused without echoing it", arguments: [
        "redis://SECRET@127.0.0.1:1", "redis://:SECRET@127.0.0.1:1/x", "redis://user:SECRET@127.0.0.1:bad",
    ])
    func parserDoesNotEcho(url: String) async throws {
        let secret = "s3cr3t-\(UInt32.random(in: 1_000_000...9_999_999))"
        let output = OutputLog()
        let process = try SpawnedNode.launch(["--redis", url.replacingOccurrences(of: "SECRET", with: secret)], output: output)
        #expect(try await process.waitForExit() == 64, "\(output.all)")
        #expect(output.all.contains("--redis"))
        #expect(!output.all.contains(secret), "\(output.all)")
    }

    @Test("--redis-user and --redis-password-file authenticate as an ACL user; logs and stats never show the password")
    func passwordFile() async throws {
        // The default user has a password of its own, so only the ACL user's credentials get in.
        let options = RedisServer.Options(requirePassword: "default-only-\(UUID().uuidString)", users: [.init(name: "concord", password: Self.password)])
        try await withRedisServer(options) { server in
            let files = try TemporaryFiles()
            let passwordFile = try files.write("redis-password", Self.password + "\n")
            try await withNode(["--redis", server.url, "--redis-user", "concord", "--redis-password-file", passwordFile, "--log-level", "debug"]) { node async throws in
                let client = node.client()
                let ready = await eventually { (try? await client.ready()) == true }
                #expect(ready, "\(node.output.all)")
                #expect(try await client.set("k", value: Array("v".utf8)).status == 200)
                let stats = try await client.stats()
                #expect(stats.status == 200)
                #expect(!stats.text.contains(Self.password))
                #expect(!node.output.all.contains(Self.password), "\(node.output.all)")
            }
            // A password in the URL works too, and is logged redacted.
            try await withNode(["--redis", "redis://concord:\(Self.password)@127.0.0.1:\(server.port)"]) { node async throws in
                let ready = await eventually { (try? await node.client().ready()) == true }
                #expect(ready, "\(node.output.all)")
                #expect(node.output.all.contains("redis://concord:***@127.0.0.1"), "\(node.output.all)")
                #expect(!node.output.all.contains(Self.password))
            }
            // A wrong password is reported without the one given.
            let wrong = try files.write("wrong", "not-\(Self.password)\n")
            try await withNode(["--redis", server.url, "--redis-user", "concord", "--redis-password-file", wrong, "--log-level", "debug"]) { node async throws in
                _ = await eventually(timeout: .seconds(3)) { node.output.all.contains("auth") }
                #expect(!node.output.all.contains("not-\(Self.password)"))
                #expect(try await node.client().ready() == false)
            }
        }
    }

    @Test("concord cluster hands the Redis URL to its nodes in the environment, never in argv")
    func clusterKeepsURLOutOfArgv() async throws {
        let options = RedisServer.Options(users: [.init(name: "concord", password: Self.password)])
        try await withRedisServer(options) { server in
            let basePort = try FreePort.next()
            var environment = ProcessInfo.processInfo.environment
            environment["CONCORD_REDIS"] = "redis://concord:\(Self.password)@127.0.0.1:\(server.port)"
            let output = OutputLog()
            let cluster = try NodeProcess.launch(
                name: "cluster", executable: try NodeProcessTests.concordExecutable(),
                arguments: ["cluster", "--nodes", "1", "--base-port", String(basePort)],
                environment: environment, output: { output.append($0) }
            )
            do {
                let listed = await eventually(timeout: .seconds(60)) { output.all.contains("Ctrl-C stops the cluster") }
                #expect(listed, "\(output.all)")
                // The table row: "n1    http://127.0.0.1:PORT   PID".
                let row = output.all.split(separator: "\n").first { $0.hasPrefix("n1 ") && $0.contains("http://") }
                let pid = try #require(row.flatMap { $0.split(separator: " ").last }.flatMap { Int32($0) }, "\(output.all)")
                let argv = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))
                let arguments = String(decoding: argv, as: UTF8.self).split(separator: "\0").map(String.init)
                #expect(arguments.contains("node"))
                #expect(!arguments.joined(separator: " ").contains(Self.password), "\(arguments)")
                #expect(!arguments.contains("--redis"))
                #expect(!output.all.contains(Self.password), "\(output.all)")
                let client = NodeClient(port: basePort, configuration: .init(requestTimeout: .seconds(30)))
                let ready = await eventually { (try? await client.ready()) == true }
                #expect(ready, "\(output.all)")
            } catch {
                await cluster.stop(grace: .seconds(10))
                throw error
            }
            #expect(await cluster.stop(grace: .seconds(15)) == 0, "\(output.all)")
        }
    }
}
