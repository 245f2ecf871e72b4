import Concord
import ConcordNode
import ConcordTesting
import Foundation
import Testing

/// The RESP front end on in-memory backends, driven byte by byte.
@Suite("RESP front end")
struct RESPFrontEndTests {
    @Test("GET, SET, MGET, MSET, EXISTS, DEL, UNLINK answer as Redis does")
    func dataCommands() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("GET", "absent")
            try await client.expectReply("$-1\r\n")
            try await client.command("SET", "k1", "v1")
            try await client.expectReply("+OK\r\n")
            try await client.command("GET", "k1")
            try await client.expectReply("$2\r\nv1\r\n")
            try await client.command("MSET", "k2", "v2", "k3", "")
            try await client.expectReply("+OK\r\n")
            try await client.command("MGET", "k1", "absent", "k3", "k2")
            try await client.expectReply("*4\r\n$2\r\nv1\r\n$-1\r\n$0\r\n\r\n$2\r\nv2\r\n")
            try await client.command("EXISTS", "k1", "k2", "absent", "k1")
            try await client.expectReply(":3\r\n")
            try await client.command("DEL", "k1", "absent")
            try await client.expectReply(":1\r\n")
            try await client.command("UNLINK", "k2", "k3")
            try await client.expectReply(":2\r\n")
            try await client.command("MGET", "k1", "k2")
            try await client.expectReply("*2\r\n$-1\r\n$-1\r\n")
            await client.close()
        }
    }

    @Test("a value written over RESP is the value HTTP serves, with one version")
    func sharesEntriesWithHTTP() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("SET", "shared", "from resp")
            try await client.expectReply("+OK\r\n")
            let read = try await node.cache.getResult("shared", as: [UInt8].self)
            #expect(read.map { String(decoding: $0.value, as: UTF8.self) } == "from resp")
            _ = try await node.cache.set("shared", Array("from http".utf8))
            try await client.command("GET", "shared")
            try await client.expectReply("$9\r\nfrom http\r\n")
            await client.close()
        }
    }

    @Test("SET NX and XX write only when the key is absent or present")
    func conditionalSet() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("SET", "k", "one", "XX")
            try await client.expectReply("$-1\r\n")
            try await client.command("SET", "k", "one", "NX")
            try await client.expectReply("+OK\r\n")
            try await client.command("SET", "k", "two", "NX")
            try await client.expectReply("$-1\r\n")
            try await client.command("SET", "k", "three", "xx")
            try await client.expectReply("+OK\r\n")
            try await client.command("GET", "k")
            try await client.expectReply("$5\r\nthree\r\n")
            try await client.command("SET", "k", "v", "NX", "XX")
            try await client.expectReply("-ERR syntax error\r\n")
            try await client.command("SET", "k", "v", "EX", "ten")
            try await client.expectReply("-ERR value is not an integer or out of range\r\n")
            try await client.command("SET", "k", "v", "PX", "0")
            try await client.expectReply("-ERR invalid expire time in 'set' command\r\n")
            await client.close()
        }
    }

    @Test("SET EX, EXPIRE and TTL: lifetimes in seconds; EXPIRE 0 removes; -2 for an absent key")
    func lifetimes() async throws {
        let node = try makeMemoryNode { $0.duration = .seconds(30) }
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("SET", "k", "v", "EX", "1000")
            try await client.expectReply("+OK\r\n")
            try await client.command("TTL", "k")
            let ttl = try await client.line()
            let seconds = Int(ttl.dropFirst().trimmingCharacters(in: .whitespacesAndNewlines)) ?? -100
            #expect((900...1000).contains(seconds), "TTL reply \(ttl.debugDescription)")
            try await client.command("EXPIRE", "k", "5000")
            try await client.expectReply(":1\r\n")
            try await client.command("TTL", "k")
            let longer = Int(try await client.line().dropFirst().trimmingCharacters(in: .whitespacesAndNewlines)) ?? -100
            #expect((4900...5000).contains(longer))
            try await client.command("EXPIRE", "k", "0")
            try await client.expectReply(":1\r\n")
            try await client.command("GET", "k")
            try await client.expectReply("$-1\r\n")
            try await client.command("TTL", "k")
            try await client.expectReply(":-2\r\n")
            try await client.command("EXPIRE", "absent", "10")
            try await client.expectReply(":0\r\n")
            await client.close()
        }
    }

    @Test("connection commands: PING, ECHO, HELLO 2, CLIENT, COMMAND DOCS, QUIT")
    func connectionCommands() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("PING")
            try await client.expectReply("+PONG\r\n")
            try await client.command("ping", "hi")
            try await client.expectReply("$2\r\nhi\r\n")
            try await client.command("ECHO", "bytes")
            try await client.expectReply("$5\r\nbytes\r\n")
            try await client.command("HELLO", "3")
            try await client.expectReply("-NOPROTO unsupported protocol version\r\n")
            try await client.command("HELLO", "2", "SETNAME", "app")
            try await client.expectReply("*14\r\n$6\r\nserver\r\n$7\r\nconcord\r\n")
            _ = try await client.reply(length: "$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n".utf8.count)
            _ = try await client.line()
            try await client.expectReply("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n")
            try await client.command("CLIENT", "GETNAME")
            try await client.expectReply("$3\r\napp\r\n")
            try await client.command("CLIENT", "SETINFO", "LIB-NAME", "test")
            try await client.expectReply("+OK\r\n")
            try await client.command("CLIENT", "KILL", "ID", "1")
            let refused = try await client.line()
            #expect(refused.hasPrefix("-ERR unknown subcommand 'KILL'"))
            try await client.command("COMMAND", "DOCS")
            try await client.expectReply("*0\r\n")
            try await client.command("QUIT")
            try await client.expectReply("+OK\r\n")
            #expect(try await client.closedByServer())
        }
    }

    @Test("any other command is refused with an error naming it, and nothing changes")
    func otherCommandsAreRefused() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("SET", "k", "v")
            try await client.expectReply("+OK\r\n")
            for command in [["FLUSHALL"], ["EVAL", "return 1", "0"], ["INCR", "k"], ["CONFIG", "GET", "save"], ["SUBSCRIBE", "c"]] {
                try await client.send(RESPTestConnection.encode(command.map { Array($0.utf8) }))
                let line = try await client.line()
                #expect(line.hasPrefix("-ERR unknown command '\(command[0])'"), "\(line.debugDescription)")
            }
            try await client.command("GET")
            try await client.expectReply("-ERR wrong number of arguments for 'get' command\r\n")
            try await client.command("GET", "k")
            try await client.expectReply("$1\r\nv\r\n")
            // Names are matched in any case; a name that is not UTF-8 is refused, never matched.
            try await client.command("gEt", "k")
            try await client.expectReply("$1\r\nv\r\n")
            try await client.command("set", "k", "w", "ex", "60")
            try await client.expectReply("+OK\r\n")
            try await client.send(RESPTestConnection.encode([[0x47, 0xC3, 0x45, 0x54], Array("k".utf8)]))
            let garbled = try await client.line()
            #expect(garbled.hasPrefix("-ERR unknown command '"), "\(garbled.debugDescription)")
            try await client.command("Get", "k")
            try await client.expectReply("$1\r\nw\r\n")
            await client.close()
        }
    }

    @Test("pipelined commands are answered in order, hits and awaited commands mixed")
    func pipelining() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            var batch: [UInt8] = []
            var expected = ""
            // More than one read buffer (2 KB) of commands, so reads are held behind awaited
            // SETs. Each SET waits for the task pool, which took 26-714 ms a command (median
            // 208) on a loaded test process: hence a few dozen of them and seconds per command.
            for index in 0..<60 {
                batch += RESPTestConnection.encode([Array("SET".utf8), Array("k\(index % 7)".utf8), Array("v\(index)".utf8)])
                expected += "+OK\r\n"
                batch += RESPTestConnection.encode([Array("GET".utf8), Array("k\(index % 7)".utf8)])
                expected += "$\("v\(index)".utf8.count)\r\nv\(index)\r\n"
                batch += RESPTestConnection.encode([Array("PING".utf8)])
                expected += "+PONG\r\n"
            }
            try await client.send(batch)
            try await client.expectReply(expected, timeout: .seconds(120))
            await client.close()
        }
    }

    @Test("GET, MGET, EXISTS and other commands, pipelined and split across reads anywhere, are answered in order")
    func inPlaceReadsMixedWithOtherCommands() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("MSET", "a", "1", "b", "22")
            try await client.expectReply("+OK\r\n")
            var batch: [UInt8] = []
            var expected = ""
            func add(_ arguments: String..., reply: String) {
                batch += RESPTestConnection.encode(arguments.map { Array($0.utf8) })
                expected += reply
            }
            // Five awaited commands a round (the SET and four reads L1 cannot answer): see
            // `pipelining` for the count and the wait.
            for index in 0..<8 {
                add("GET", "a", reply: "$1\r\n1\r\n")
                add("GET", "absent\(index)", reply: "$-1\r\n")
                add("SET", "k\(index % 3)", "v\(index)", reply: "+OK\r\n")
                add("get", "k\(index % 3)", reply: "$\("v\(index)".utf8.count)\r\nv\(index)\r\n")
                add("MGET", "a", "absent", "b", reply: "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n")
                add("EXISTS", "a", "b", "absent", "k\(index % 3)", reply: ":3\r\n")
                add("GET", "caf\u{E9}", reply: "$-1\r\n")
                add("GET", reply: "-ERR wrong number of arguments for 'get' command\r\n")
                add("PING", reply: "+PONG\r\n")
            }
            // In pieces that cut commands anywhere, so some are read whole and some across reads.
            for offset in stride(from: 0, to: batch.count, by: 7) {
                try await client.send(batch[offset..<min(offset + 7, batch.count)])
            }
            try await client.expectReply(expected, timeout: .seconds(120))
            try await client.send(batch)
            try await client.expectReply(expected, timeout: .seconds(120))
            await client.close()
        }
    }

    @Test("bad keys and values get an error and the connection stays usable")
    func badKeysAndValues() async throws {
        let node = try makeMemoryNode { $0.maxKeyBytes = 16; $0.maxValueBytes = 64 }
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("GET", String(repeating: "k", count: 17))
            try await client.expectReply("-ERR invalid key: the key is 17 bytes; the limit is 16\r\n")
            try await client.command("SET", "k", String(repeating: "v", count: 65))
            try await client.expectReply("-ERR value too large: 65 bytes; the limit is 64\r\n")
            try await client.send(RESPTestConnection.encode([Array("GET".utf8), [0xFF, 0xFE]]))
            try await client.expectReply("-ERR invalid key: keys must be valid UTF-8\r\n")
            try await client.command("GET", "")
            try await client.expectReply("-ERR invalid key: the key is empty\r\n")
            try await client.command("SET", "k", String(repeating: "v", count: 64))
            try await client.expectReply("+OK\r\n")
            await client.close()
        }
    }

    @Test("malformed requests get a protocol error and the connection is closed", arguments: [
        "PING\r\n",  // inline commands are not parsed
        "*2000000000\r\n",  // an element count the node will not allocate
        "*-5\r\n",
        "*1\r\n*1\r\n$4\r\nPING\r\n",  // nested arrays
        "*1\r\n:1\r\n",  // an integer where a bulk string belongs
        "$4\r\nPING\r\n",  // a bulk string that is not in an array
        "*1\r\n$x\r\n",
    ])
    func malformedRequests(request: String) async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.send(request)
            let line = try await client.line()
            #expect(line.hasPrefix("-ERR Protocol error"), "\(request.debugDescription) → \(line.debugDescription)")
            #expect(try await client.closedByServer())
        }
        // The node still answers others.
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("PING")
            try await client.expectReply("+PONG\r\n")
            await client.close()
        }
    }

    @Test("a request larger than the value limit allows is refused on its header, before its bytes arrive")
    func oversizedRequest() async throws {
        let node = try makeMemoryNode { $0.maxValueBytes = 1024 }
        try await withRESPServer(cache: node.cache) { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n")
            let line = try await client.line()
            #expect(line.hasPrefix("-ERR Protocol error: request larger than"), "\(line.debugDescription)")
            #expect(try await client.closedByServer())
        }
    }

    @Test("with a token, commands need AUTH (or HELLO AUTH) first")
    func authentication() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache, token: "s3cret") { port in
            let client = try await RESPTestConnection.connect(port: port)
            try await client.command("GET", "k")
            try await client.expectReply("-NOAUTH Authentication required.\r\n")
            try await client.command("AUTH", "wrong")
            try await client.expectReply("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            try await client.command("AUTH", "default", "s3cret")
            try await client.expectReply("+OK\r\n")
            try await client.command("SET", "k", "v")
            try await client.expectReply("+OK\r\n")
            await client.close()

            let other = try await RESPTestConnection.connect(port: port)
            try await other.command("HELLO", "2", "AUTH", "default", "s3cret")
            try await other.expectReply("*14\r\n")
            await other.close()
        }
        try await withRESPServer(cache: node.cache) { port in
            let open = try await RESPTestConnection.connect(port: port)
            try await open.command("AUTH", "anything")
            let line = try await open.line()
            #expect(line.hasPrefix("-ERR AUTH <password> called without any password configured"))
            await open.close()
        }
    }

    @Test("AUTH accepts the node's bearer tokens: a read token reads, an admin token writes too")
    func authenticationWithNodeTokens() async throws {
        let node = try makeMemoryNode()
        var tokens = AccessTokens()
        tokens.add(["reader-token"], scopes: .read, protecting: [.read, .admin])
        tokens.add(["admin-token"], scopes: [.read, .admin, .metrics], protecting: [.read, .admin])
        tokens.add(["metrics-token"], scopes: .metrics, protecting: .metrics)
        try await withRESPServer(cache: node.cache, accessTokens: tokens) { port in
            let anonymous = try await RESPTestConnection.connect(port: port)
            try await anonymous.command("GET", "k")
            try await anonymous.expectReply("-NOAUTH Authentication required.\r\n")
            try await anonymous.command("PING")
            try await anonymous.expectReply("-NOAUTH Authentication required.\r\n")
            // A token that only reads the metrics does not open the cache.
            try await anonymous.command("AUTH", "metrics-token")
            try await anonymous.expectReply("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            try await anonymous.command("AUTH", "reader-token-but-longer")
            try await anonymous.expectReply("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            await anonymous.close()

            let admin = try await RESPTestConnection.connect(port: port)
            try await admin.command("AUTH", "default", "admin-token")
            try await admin.expectReply("+OK\r\n")
            try await admin.command("SET", "k", "v")
            try await admin.expectReply("+OK\r\n")
            try await admin.command("GET", "k")
            try await admin.expectReply("$1\r\nv\r\n")
            await admin.close()

            let reader = try await RESPTestConnection.connect(port: port)
            try await reader.command("HELLO", "2", "AUTH", "default", "reader-token")
            try await reader.expectReply("*14\r\n")
            try await reader.command("QUIT")
            await reader.close()

            let readOnly = try await RESPTestConnection.connect(port: port)
            try await readOnly.command("AUTH", "reader-token")
            try await readOnly.expectReply("+OK\r\n")
            try await readOnly.command("GET", "k")
            try await readOnly.expectReply("$1\r\nv\r\n")
            try await readOnly.command("MGET", "k", "absent")
            try await readOnly.expectReply("*2\r\n$1\r\nv\r\n$-1\r\n")
            for write in [["SET", "k", "w"], ["DEL", "k"], ["UNLINK", "k"], ["MSET", "k", "w"], ["EXPIRE", "k", "0"]] {
                try await readOnly.send(RESPTestConnection.encode(write.map { Array($0.utf8) }))
                try await readOnly.expectReply("-NOPERM this token has no permissions to run the '\(write[0].lowercased())' command\r\n")
            }
            // Nothing was written by the refused commands.
            try await readOnly.command("GET", "k")
            try await readOnly.expectReply("$1\r\nv\r\n")
            // A later AUTH with an admin token lets the same connection write.
            try await readOnly.command("AUTH", "admin-token")
            try await readOnly.expectReply("+OK\r\n")
            try await readOnly.command("DEL", "k")
            try await readOnly.expectReply(":1\r\n")
            await readOnly.close()
        }
        // Tokens that protect only the metrics leave the cache open over RESP, as over HTTP.
        var metricsOnly = AccessTokens()
        metricsOnly.add(["metrics-token"], scopes: .metrics, protecting: .metrics)
        try await withRESPServer(cache: node.cache, accessTokens: metricsOnly) { port in
            let open = try await RESPTestConnection.connect(port: port)
            try await open.command("SET", "k", "v")
            try await open.expectReply("+OK\r\n")
            await open.close()
        }
    }

    @Test("connections past the limit are refused with an error")
    func connectionLimit() async throws {
        let node = try makeMemoryNode()
        try await withRESPServer(cache: node.cache, maxConnections: 1) { port in
            let first = try await RESPTestConnection.connect(port: port)
            try await first.command("PING")
            try await first.expectReply("+PONG\r\n")
            let second = try await RESPTestConnection.connect(port: port)
            try await second.expectReply("-ERR max number of clients reached\r\n")
            #expect(try await second.closedByServer())
            await first.close()
            // The slot is given back once the first connection is gone.
            // Until the server has seen the first one close, a third is refused and closed,
            // and writing to it fails: that is a "not yet", not an error.
            let admitted = await eventually {
                guard let third = try? await RESPTestConnection.connect(port: port) else { return false }
                let pinged = (try? await third.command("PING")) != nil
                let line = pinged ? try? await third.line(timeout: .seconds(5)) : nil
                await third.close()
                return line == "+PONG\r\n"
            }
            #expect(admitted)
        }
    }
}
