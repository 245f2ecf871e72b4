import Concord
import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

/// The RESP front end under real Redis clients, and two nodes on a real Redis.
@Suite("RESP front end with real clients")
struct RESPClientTests {
    @Test("redis-cli reads and writes, and sees refused commands named", .enabled(if: installed("/usr/bin/redis-cli")))
    func redisCLI() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let cli = ["-h", "127.0.0.1", "-p", String(port)]
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["SET", "greeting", "hello world"]).output == "OK\n")
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["GET", "greeting"]).output == "hello world\n")
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["EXISTS", "greeting", "nope"]).output == "1\n")
            let refused = try await runClient("/usr/bin/redis-cli", cli + ["FLUSHALL"])
            #expect(refused.output.contains("unknown command 'FLUSHALL'"), "\(refused.output)")
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["GET", "greeting"]).output == "hello world\n")
        }
    }

    @Test("redis-cli authenticates with the node's admin token from its token file", .enabled(if: installed("/usr/bin/redis-cli")))
    func redisCLIWithNodeToken() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("admin-tokens")
        try Data("node-admin-token\n".utf8).write(to: file)
        let node = try makeMemoryNode { configuration in
            configuration.adminTokenFile = file.path
            configuration.respPort = 0
        }
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let made = node.makeRESPServer(onBound: { announce.yield($0) })
        let server = try #require(made)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let cli = ["--no-auth-warning", "-h", "127.0.0.1", "-p", String(port)]
            let refused = try await runClient("/usr/bin/redis-cli", cli + ["SET", "greeting", "hello"])
            #expect(refused.output.contains("NOAUTH"), "\(refused.output)")
            let wrong = try await runClient("/usr/bin/redis-cli", cli + ["-a", "guess", "SET", "greeting", "hello"])
            #expect(wrong.output.contains("WRONGPASS"), "\(wrong.output)")
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["-a", "node-admin-token", "SET", "greeting", "hello"]).output == "OK\n")
            #expect(try await runClient("/usr/bin/redis-cli", cli + ["-a", "node-admin-token", "GET", "greeting"]).output == "hello\n")
            group.cancelAll()
        }
    }

    @Test("redis-py: commands, pipelines and errors", .enabled(if: hasRedisPy))
    func redisPy() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache, token: "py-token") { port in
            let script = """
            import redis, sys
            r = redis.Redis(host="127.0.0.1", port=\(port), password="py-token", client_name="py")
            assert r.ping()
            assert r.set("a", b"\\x00\\xffbinary")
            assert r.get("a") == b"\\x00\\xffbinary", r.get("a")
            assert r.set("a", "1", nx=True) is None
            assert r.set("b", "2", ex=100)
            assert 90 <= r.ttl("b") <= 100, r.ttl("b")
            assert r.mset({"c": "3", "d": "4"})
            assert r.mget(["a", "b", "c", "d", "e"]) == [b"\\x00\\xffbinary", b"2", b"3", b"4", None]
            p = r.pipeline(transaction=False)
            for i in range(50):
                p.set(f"p{i}", i)
                p.get(f"p{i}")
            out = p.execute()
            assert out[1::2] == [str(i).encode() for i in range(50)], out
            assert r.exists("a", "b", "zz") == 2
            assert r.delete("a", "zz") == 1
            assert r.get("a") is None
            try:
                r.incr("b")
                sys.exit("INCR was not refused")
            except redis.ResponseError as e:
                assert "INCR" in str(e), str(e)
            print("ok")
            """
            let result = try await runClient("/usr/bin/python3", ["-c", script])
            #expect(result.status == 0 && result.output == "ok\n", "\(result.output)")
        }
    }

    @Test("redis-benchmark runs GET and SET against the node without errors", .enabled(if: installed("/usr/bin/redis-benchmark")))
    func redisBenchmark() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            // 100 SETs in a row per connection: each waits for the task pool, which took 26-714 ms
            // a command on a loaded test process (RESPFrontEndTests' `pipelining`), so
            // 2,000 over 4 connections came within seconds of the client's 60 s bound.
            let result = try await runClient("/usr/bin/redis-benchmark", [
                "-h", "127.0.0.1", "-p", String(port), "-t", "set,get", "-n", "400", "-c", "4", "-P", "4", "--csv",
            ])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\"SET\"") && result.output.contains("\"GET\""), "\(result.output)")
            let client = try await RESPTestConnection.connect(port: port)
            // redis-benchmark's SET wrote its 3-byte value (-d 3) under its literal key.
            try await client.command("GET", "key:__rand_int__")
            let reply = try await client.reply(length: 9)
            #expect(reply.hasPrefix("$3\r\n") && reply.hasSuffix("\r\n"), "\(reply.debugDescription)")
            await client.close()
        }
    }

    @Test("two nodes on Redis: a SET on one reaches a GET on the other, and a change comes back")
    func twoNodesOverRESP() async throws {
        try await withRedisServer { server in
            let first = try makeRedisNode(server)
            let second = try makeRedisNode(server)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await first.cache.run() }
                group.addTask { try await second.cache.run() }
                try await withRESPServer(cache: first.cache) { firstPort in
                    try await withRESPServer(cache: second.cache) { secondPort in
                        #expect(await eventually(timeout: .seconds(20)) { first.cache.isBackplaneConnected && second.cache.isBackplaneConnected })
                        let one = try await RESPTestConnection.connect(port: firstPort)
                        let two = try await RESPTestConnection.connect(port: secondPort)
                        try await one.command("SET", "shared", "v1")
                        try await one.expectReply("+OK\r\n")
                        try await two.command("GET", "shared")
                        try await two.expectReply("$2\r\nv1\r\n")
                        try await one.command("GET", "shared")
                        try await one.expectReply("$2\r\nv1\r\n")
                        try await two.command("SET", "shared", "v2")
                        try await two.expectReply("+OK\r\n")
                        // A bound on convergence, not a speed figure: generous for a loaded machine.
                        let propagated = try await eventually(timeout: .seconds(20)) {
                            try await one.command("GET", "shared")
                            return try await one.reply(length: 8) == "$2\r\nv2\r\n"
                        }
                        #expect(propagated)
                        await one.close()
                        await two.close()
                    }
                }
                group.cancelAll()
            }
        }
    }
}
