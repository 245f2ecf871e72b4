import ConcordProcess
import ConcordNode
import ConcordTesting
import Foundation
import Testing

/// `NodeClient`'s transport against `FakeNodeServer`, whose connections can be counted and
/// dropped: keep-alive reuse, the one safe retry, deadlines, typed errors, URL parsing. The
/// round trip through a real node is in `NodeLiveTests`.
@Suite("NodeClient")
struct NodeClientTests {
    /// These tests are not about timeouts: a loaded machine must not turn them into one. Each
    /// request may open a connection, so it gets the shared bound for one.
    static let generousBudget = NodeClient.Configuration(requestTimeout: TestBounds.connect)

    private func withServer(
        _ configuration: NodeClient.Configuration = generousBudget,
        _ body: (FakeNodeServer, NodeClient) async throws -> Void
    ) async throws {
        let server = try await FakeNodeServer.start()
        let client = NodeClient(port: server.port, configuration: configuration)
        do {
            try await body(server, client)
        } catch {
            client.shutdown()
            await server.stop()
            throw error
        }
        client.shutdown()
        await server.stop()
    }

    @Test("speaks the node API and reads the Concord headers")
    func speaksTheNodeAPI() async throws {
        try await withServer { server, client in
            let missing = try await client.get("k1")
            #expect(missing.status == 404)
            #expect(missing.error?.code == "not_found")

            let put = try await client.set("k1", value: Array("hello".utf8))
            #expect(put.status == 200)
            #expect(put.text.contains("version"))

            let read = try await client.get("k1")
            #expect(read.status == 200)
            #expect(read.body == Array("hello".utf8))
            #expect(read.version == "1")
            #expect(read.source == "memory")
            #expect(!read.isStale)

            _ = try await client.set("stale-one", value: [1, 2, 3], background: true)
            #expect(try await client.get("stale-one").isStale)
            #expect(server.withState { $0.backgroundPuts } == 1)

            #expect(try await client.delete("k1").status == 204)
            #expect(try await client.get("k1").status == 404)

            #expect(try await client.invalidate(["a", "b c"]).status == 200)
            #expect(server.withState { $0.invalidated } == [["a", "b c"]])

            let stats = try JSONSerialization.jsonObject(with: Data(try await client.stats().body)) as? [String: Any]
            #expect(stats?["node"] as? String == "fake")

            #expect(try await client.health())
            #expect(try await client.ready())
            server.withState { $0.ready = false }
            #expect(try await client.ready() == false)
        }
    }

    @Test("reuses keep-alive connections, sequentially and after a burst")
    func reusesKeepAliveConnections() async throws {
        try await withServer { server, client in
            for index in 0..<20 {
                _ = try await client.set("k\(index)", value: [UInt8(index)])
            }
            #expect(server.accepted == 1)

            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask { _ = try await client.get("k\(index)") }
                }
                try await group.waitForAll()
            }
            let afterBurst = server.accepted
            #expect(afterBurst <= 8)
            for index in 0..<10 {
                _ = try await client.get("k\(index)")
            }
            #expect(server.accepted == afterBurst)
        }
    }

    @Test("retries once on a new connection when the node closed an idle one")
    func retriesWhenTheServerClosedAnIdleConnection() async throws {
        try await withServer { server, client in
            _ = try await client.set("k", value: [1])
            server.dropConnections()
            // The pooled connection is now dead or dying, whether or not its FIN has arrived yet.
            #expect(await eventually { server.withState { $0.channels.isEmpty } })
            #expect(try await client.get("k").body == [1])
            #expect(server.accepted == 2)
        }
    }

    @Test("a request to a node that never answers times out instead of hanging")
    func timesOutInsteadOfHanging() async throws {
        try await withServer(NodeClient.Configuration(requestTimeout: .milliseconds(300))) { _, client in
            let clock = ContinuousClock()
            let start = clock.now
            do {
                _ = try await client.request(.GET, "/hang")
                Issue.record("expected a timeout")
            } catch let error as NodeClientError {
                #expect(error.code == .timeout)
            }
            #expect(clock.now - start >= .milliseconds(290))
            // A per-request budget overrides the configured one, and the client is still usable
            // after a timeout. The timed-out connection is closed, so this request opens a new
            // one: it gets the shared bound for a connection (30 s ran out once in a full run
            // at load 19, where unrelated one-line tests took 25 s).
            #expect(try await client.request(.GET, "/health", timeout: TestBounds.connect).status == 200)
        }
    }

    @Test("a server that accepts but never answers is a timeout")
    func timesOutAgainstAServerThatNeverAnswers() async throws {
        let server = try await SilentServer.start()
        let client = NodeClient(port: server.port, configuration: .init(requestTimeout: .milliseconds(250)))
        do {
            _ = try await client.get("k")
            Issue.record("expected a timeout")
        } catch let error as NodeClientError {
            #expect(error.code == .timeout)
        }
        client.shutdown()
        await server.stop()
    }

    @Test("a close without an answer and a refused connection are typed errors")
    func closedWithoutAnswerAndRefusedConnectionsAreTypedErrors() async throws {
        try await withServer { _, client in
            do {
                _ = try await client.request(.GET, "/drop")
                Issue.record("expected an error")
            } catch let error as NodeClientError {
                #expect(error.code == .connectionClosed)
            }
        }
        // A port nothing listens on (bound and closed just now).
        let client = NodeClient(port: try FreePort.next(), configuration: Self.generousBudget)
        do {
            _ = try await client.health()
            Issue.record("expected an error")
        } catch let error as NodeClientError {
            #expect(error.code == .connectionFailed)
        }
    }

    @Test("an answer over maxResponseBytes is refused, and the client goes on working")
    func refusesOversizedAnswers() async throws {
        var configuration = Self.generousBudget
        configuration.maxResponseBytes = 1024
        try await withServer(configuration) { _, client in
            _ = try await client.set("big", value: Array(repeating: 7, count: 2048))
            _ = try await client.set("fits", value: Array(repeating: 7, count: 1024))
            do {
                _ = try await client.get("big")
                Issue.record("expected the answer to be refused")
            } catch let error as NodeClientError {
                #expect(error.code == .protocolError)
            }
            #expect(try await client.get("fits").body.count == 1024)
        }
    }

    @Test("releasing the client closes its idle connections, so a one-shot CLI leaks none")
    func releasingTheClientClosesIdleConnections() async throws {
        let server = try await FakeNodeServer.start()
        do {
            let client = NodeClient(port: server.port, configuration: Self.generousBudget)
            #expect(try await client.health())
            #expect(server.withState { $0.channels.count } == 1)
        }
        #expect(await eventually { server.withState { $0.channels.isEmpty } })
        await server.stop()
    }

    @Test("node URLs parse into host and port", arguments: [
        ("http://127.0.0.1:7001", "127.0.0.1", 7001),
        ("http://127.0.0.1:7001/", "127.0.0.1", 7001),
        (" localhost:7002 ", "localhost", 7002),
        ("http://example.test", "example.test", 80),
        ("http://[::1]:7003/", "::1", 7003),
    ])
    func parsesURLs(url: String, host: String, port: Int) throws {
        let client = try NodeClient(url: url)
        #expect(client.host == host)
        #expect(client.port == port)
        #expect(try NodeClient(url: client.baseURL).port == port)
    }

    @Test("https:// URLs speak TLS, on port 443 unless given")
    func httpsURLs() throws {
        let client = try NodeClient(url: "https://node.example")
        #expect(client.port == 443)
        #expect(client.baseURL == "https://node.example:443")
        #expect(client.configuration.tls != nil)
        #expect(try NodeClient(url: "http://node.example").configuration.tls == nil)
    }

    @Test("URLs that name no node are .invalidURL", arguments: [
        "ftp://127.0.0.1:7001", "http://127.0.0.1:notaport", "http://127.0.0.1:7001/v1/cache", "http://:7001", "http://h:70000",
    ])
    func refusesURLs(url: String) {
        #expect {
            _ = try NodeClient(url: url)
        } throws: { error in
            (error as? NodeClientError)?.code == .invalidURL
        }
    }
}
