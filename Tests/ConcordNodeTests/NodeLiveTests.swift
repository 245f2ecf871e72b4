import ConcordNode
import Foundation
import HummingbirdTesting
import Testing
import ConcordTesting

/// Requests over real sockets: stalled and oversized requests, the node's own HTTP client.
@Suite("Node over sockets")
struct NodeLiveTests {
    @Test("a half-sent request head or body does not block other requests")
    func slowRequestsDoNotBlock() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            // One client stalls inside the request head, another inside a PUT body.
            let stalledHead = try RawConnection(port: port)
            try stalledHead.send("GET /v1/cache/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let stalledBody = try RawConnection(port: port)
            try stalledBody.send("PUT /v1/cache/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly half of it")

            // Blocked behind the stalled connections, a request would wait for the node's 30 s
            // idle timeout to close them; 15 s tells that apart from a merely loaded machine.
            let other = NodeClient(port: port, configuration: .init(requestTimeout: .seconds(15)))
            for index in 0..<20 {
                #expect(try await other.set("k\(index)", value: Array("v\(index)".utf8)).status == 200)
                #expect(try await other.get("k\(index)").text == "v\(index)")
            }
            #expect(try await other.health())

            // The stalled body finishes later and is stored whole.
            try stalledBody.send(String(repeating: "!", count: 100 - "only half of it".utf8.count))
            let answer = await stalledBody.read(until: "\r\n\r\n")
            #expect(answer.text.hasPrefix("HTTP/1.1 200"))
            #expect(try await other.get("slow").body.count == 100)
        }
    }

    @Test("the idle timeout closes a connection stalled in its request head")
    func idleTimeoutClosesStalledHeads() async throws {
        let node = try makeMemoryNode { $0.idleTimeout = .milliseconds(300) }
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let stalled = try RawConnection(port: port)
            try stalled.send("GET /v1/cache/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            let result = await stalled.read()
            #expect(result.closed, "the server kept a stalled connection open")
        }
    }

    @Test("a streamed (chunked) value over the limit is a 413 without buffering it all")
    func chunkedOversizedValue() async throws {
        let node = try makeMemoryNode { $0.maxValueBytes = 1024 }
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let connection = try RawConnection(port: port)
            try connection.send("PUT /v1/cache/big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = String(repeating: "x", count: 512)
            for _ in 0..<3 {
                try connection.send(String(512, radix: 16) + "\r\n" + chunk + "\r\n")
            }
            let answer = await connection.read(until: "}}")
            #expect(answer.text.hasPrefix("HTTP/1.1 413"), "got: \(answer.text.prefix(200))")
            #expect(answer.text.contains(#""code":"valueTooLarge""#))
            #expect(await connection.read().closed)

            let other = NodeClient(port: port, configuration: .init(requestTimeout: .seconds(30)))
            #expect(try await other.get("big").status == 404)
        }
    }

    @Test("a declared Content-Length over the limit is refused before the body is read")
    func declaredOversizedValue() async throws {
        let node = try makeMemoryNode { $0.maxValueBytes = 1024 }
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let connection = try RawConnection(port: port)
            // Claims 1 GiB and sends none of it: the answer must not wait for the body.
            try connection.send("PUT /v1/cache/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n")
            let answer = await connection.read(until: "}}")
            #expect(answer.text.hasPrefix("HTTP/1.1 413"), "got: \(answer.text.prefix(200))")
            // And the connection is closed rather than left to drain a gigabyte.
            #expect(await connection.read().closed)
        }
    }

    @Test("NodeClient round-trips any key and reads the Concord headers")
    func nodeClient() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let nodeClient = try NodeClient(url: "http://127.0.0.1:\(port)/", configuration: .init(requestTimeout: .seconds(30)))
            #expect(try await eventually { try await nodeClient.ready() })
            for key in ["plain", "a/b/c", "spaces and ?query#frag", "100%", "ключ", "+plus+"] {
                let put = try await nodeClient.set(key, value: Array("value of \(key)".utf8))
                #expect(put.status == 200)
                let get = try await nodeClient.get(key)
                #expect(get.text == "value of \(key)")
                #expect(get.version == put.version)
                #expect(get.source == "memory")
                #expect(!get.isStale)
            }
            let missing = try await nodeClient.get("absent")
            #expect(missing.status == 404)
            #expect(missing.error?.code == "notFound")
            #expect(try await nodeClient.invalidate(["plain", "a/b/c"]).status == 200)
            #expect(try await nodeClient.get("plain").status == 404)
            #expect(try await nodeClient.delete("ключ").status == 200)
        }
    }
}
