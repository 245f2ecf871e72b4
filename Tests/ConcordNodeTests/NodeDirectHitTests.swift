import Concord
@testable import ConcordNode
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// GETs of keys L1 holds fresh, answered on the event loop without the router
/// (`concord_http_direct_hits_total` counts them), over real sockets.
@Suite("Node direct L1 hits")
struct NodeDirectHitTests {
    @Test("a direct hit carries the router's status, headers and body, and is counted as a request")
    func sameAnswerAsTheRouter() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            #expect(try await client.put("/v1/cache/user%2F42", "value-42").status == .ok)
            let direct = try await client.get("/v1/cache/user%2F42")
            #expect(try await directHits(client) == 1)
            // A query is left to the router: the same read, answered the usual way.
            let routed = try await client.get("/v1/cache/user%2F42?via=router")
            #expect(try await directHits(client) == 1)

            #expect(direct.status == .ok)
            #expect(direct.text == "value-42")
            #expect(routed.text == "value-42")
            #expect(direct.source == "memory")
            #expect(direct.stale == "false")
            #expect(direct.headers[.date] != nil)
            let names = { (response: TestResponse) in response.headers.filter { $0.name != .date }.map { "\($0.name)=\($0.value)" } }
            #expect(names(direct) == names(routed))

            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains(#"concord_http_requests_total{method="GET",route="/v1/cache/**",status="200"} 2"#), "\(metrics)")
        }
    }

    @Test("GET /health is answered on the event loop with the router's status, headers and body, and counted as a request")
    func healthSameAsTheRouter() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let direct = try await client.get("/health")
            // A query is left to the router, which routes it to the same handler.
            let routed = try await client.get("/health?via=router")
            #expect(direct.status == .ok && routed.status == .ok)
            #expect(direct.text == routed.text)
            #expect(direct.text.contains(#""status":"ok""#) && direct.text.contains(node.cache.nodeID))
            let names = { (response: TestResponse) in response.headers.filter { $0.name != .date }.map { "\($0.name)=\($0.value)" } }
            #expect(names(direct) == names(routed))
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains(#"concord_http_requests_total{method="GET",route="/health",status="200"} 2"#), "\(metrics)")
            // A health answer is not an L1 hit.
            #expect(try await directHits(client) == 0)
        }
    }

    @Test("which requests the event loop answers: GET /health and GETs of the cache route; the rest goes to the router")
    func directRequests() throws {
        let node = try makeMemoryNode()
        let responder = MemoryHitResponder(
            cache: node.cache, tokens: AccessTokens(), metrics: NodeMetrics(registry: .init(), node: "n"), serverName: "concord"
        )
        func request(_ method: HTTPRequest.Method, _ path: String, _ fields: HTTPFields = [:]) -> HTTPRequest {
            HTTPRequest(method: method, scheme: "http", authority: "127.0.0.1", path: path, headerFields: fields)
        }
        #expect(responder.directRequest(of: request(.get, "/health")) == .health)
        #expect(responder.directRequest(of: request(.get, "/health", [.connection: "keep-alive"])) == .health)
        #expect(responder.directRequest(of: request(.get, "/v1/cache/user%2F42")) == .cacheRead(key: "user/42"))
        for declined in [
            request(.get, "/health?verbose=1"), request(.head, "/health"), request(.post, "/health"),
            request(.get, "/health", [.connection: "close"]), request(.get, "/healthz"), request(.get, "/ready"),
            request(.get, "/v1/cache/k?tag=t"), request(.put, "/v1/cache/k"),
        ] {
            #expect(responder.directRequest(of: declined) == nil, "\(declined)")
        }
    }

    @Test("a miss is left to the router and counted once in the statistics")
    func missCountedOnce() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let response = try await client.get("/v1/cache/absent")
            expectError(response, .notFound, code: "notFound")
            #expect(node.cache.statistics.memory.misses == 1)
            #expect(node.cache.statistics.memory.hits == 0)
            #expect(try await directHits(client) == 0)
        }
    }

    @Test("with read tokens, only a request carrying one is answered directly; the others get the router's 401")
    func tokens() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let readTokens = directory.appendingPathComponent("read").path
        let adminTokens = directory.appendingPathComponent("admin").path
        try "read-one\n".write(toFile: readTokens, atomically: true, encoding: .utf8)
        try "admin-one\n".write(toFile: adminTokens, atomically: true, encoding: .utf8)
        let node = try makeMemoryNode {
            $0.authTokenFile = readTokens
            $0.adminTokenFile = adminTokens
        }
        try await node.makeApplication().test(.live) { client in
            let admin: HTTPFields = [.authorization: "Bearer admin-one"]
            #expect(try await client.execute(uri: "/v1/cache/k", method: .put, headers: admin, body: ByteBuffer(string: "v")).status == .ok)
            for headers: HTTPFields in [[:], [.authorization: "Bearer read-on"], [.authorization: "Bearer read-one-and-more"], [.authorization: "bearer read-one"]] {
                expectError(try await client.get("/v1/cache/k", headers: headers), .unauthorized, code: "unauthorized")
            }
            #expect(try await directHits(client, headers: admin) == 0)
            #expect(try await client.get("/v1/cache/k", headers: [.authorization: "Bearer read-one"]).text == "v")
            #expect(try await client.get("/v1/cache/k", headers: admin).text == "v")
            #expect(try await directHits(client, headers: admin) == 2)
        }
    }

    @Test("pipelined requests are answered in order, direct hits and routed requests mixed")
    func pipelinedInOrder() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            #expect(try await client.put("/v1/cache/k1", "value-one").status == .ok)
            #expect(try await client.put("/v1/cache/k2", "value-two-last").status == .ok)
            let connection = try RawConnection(port: port)
            let paths = ["/v1/cache/k1", "/health", "/v1/cache/k1", "/v1/cache/absent", "/v1/cache/k1", "/v1/cache/k2"]
            try connection.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }.joined())
            let answer = await connection.read(until: "value-two-last")
            let statuses = answer.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "200", "404", "200", "200"], "\(answer.text)")
            // Bodies in request order.
            var rest = Substring(answer.text)
            for body in ["value-one", #""status":"ok""#, "value-one", "notFound", "value-one", "value-two-last"] {
                let found = try #require(rest.range(of: body), "\(body) out of order in \(answer.text)")
                rest = rest[found.upperBound...]
            }
            #expect(try await directHits(client) >= 1)
        }
    }

    @Test("a hit answered from the request's bytes is byte for byte the answer of the decoded path, and counted alike")
    func byteAnswerSameAsDecoded() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            #expect(try await client.put("/v1/cache/k", "value").status == .ok)
            let connection = try RawConnection(port: port)
            // `%6B` is `k`: an escape is left to the decoder, whose path (`MemoryHitHandler`)
            // answers the same hit. The Date lines may differ by a second.
            try connection.send("GET /v1/cache/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /v1/cache/%6B HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let answer = await readAnswers(connection, count: 2, endingWith: "value")
            let withoutDates = answer.split(separator: "\r\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("Date: ") }.joined(separator: "\r\n")
            let answers = withoutDates.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(answers.count == 2, "\(answer)")
            #expect(Set(answers).count == 1, "\(answer)")
            #expect(answers.first?.hasPrefix("200 OK\r\nConcord-Version: ") == true)
            #expect(try await directHits(client) == 2)
        }
    }

    @Test("requests cut across reads, bodies, and a chunked request: every answer right and in order")
    func cutRequestsInOrder() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            #expect(try await client.put("/v1/cache/k", "value-k").status == .ok)
            let connection = try RawConnection(port: port)
            let script = "GET /v1/cache/k HTTP/1.1\r\nHost: x\r\n\r\n"
                + "PUT /v1/cache/j HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nvalue-j"
                + "GET /v1/cache/j HTTP/1.1\r\nHost: x\r\n\r\n"
                + "PUT /v1/cache/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nvalue-c\r\n0\r\n\r\n"
                + "GET /v1/cache/c HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /v1/cache/k HTTP/1.1\r\nHost: x\r\n\r\n"
            // Cut at a few places inside heads and bodies (the node may still read pieces together).
            let bytes = Array(script.utf8)
            var start = 0
            for cut in [20, 50, 110, 120, 200, 260, bytes.count] {
                try connection.send(Array(bytes[start..<cut]))
                start = cut
            }
            let answer = await readAnswers(connection, count: 6, endingWith: "value-k")
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "200", "200", "200", "200"], "\(answer)")
            var rest = Substring(answer)
            for body in ["value-k", "Concord-Version", "value-j", "Concord-Version", "value-c", "value-k"] {
                let found = try #require(rest.range(of: body), "\(body) out of order in \(answer)")
                rest = rest[found.upperBound...]
            }
        }
    }

    @Test("Connection: close on a hit: answered, then the connection is closed")
    func connectionClose() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            #expect(try await client.put("/v1/cache/k", "value").status == .ok)
            let connection = try RawConnection(port: port)
            try connection.send("GET /v1/cache/k HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let answer = await connection.read()
            #expect(answer.text.hasPrefix("HTTP/1.1 200"), "\(answer.text)")
            #expect(answer.text.hasSuffix("value"))
            #expect(answer.closed)
        }
    }

    @Test("a node with an origin leaves every GET to the router (a hit may be due for refresh)")
    func originLeftToRouter() async throws {
        try await withSQLiteOrigin { origin, _ async throws in
            try await origin.store("k", value: Array("from-origin".utf8), version: 1)
            let node = try makeMemoryNode(origin: origin)
            try await node.makeApplication().test(.live) { client async throws in
                #expect(try await client.get("/v1/cache/k").text == "from-origin")
                #expect(try await client.get("/v1/cache/k").source == "memory")
                #expect(try await directHits(client) == 0)
            }
        }
    }

    /// What the connection receives until it holds `count` answers and ends with `suffix` (each
    /// read waits at most 5 s; a few of them bound the whole).
    private func readAnswers(_ connection: RawConnection, count: Int, endingWith suffix: String) async -> String {
        var text = ""
        for _ in 0..<20 {
            let read = await connection.read(until: suffix)
            text += read.text
            if read.closed || (text.components(separatedBy: "HTTP/1.1 ").count > count && text.hasSuffix(suffix)) { break }
        }
        return text
    }

    /// `concord_http_direct_hits_total` from `/metrics`.
    private func directHits(_ client: some TestClientProtocol, headers: HTTPFields = [:]) async throws -> Int {
        let text = try await client.get("/metrics", headers: headers).text
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("concord_http_direct_hits_total ") }, "\(text)")
        return try #require(Int(line.split(separator: " ").last ?? ""))
    }
}
