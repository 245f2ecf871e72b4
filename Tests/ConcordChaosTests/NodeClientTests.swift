import ConcordChaos
import ConcordTesting
import Foundation
import Logging
import Testing

@Suite struct NodeClientTests {
    let logger = Logger(label: "test.client")

    private func withServer(_ body: (FakeNodeServer, NodeClient) async throws -> Void) async throws {
        let server = try await FakeNodeServer.start()
        // These tests are not about timeouts: a loaded machine must not turn them into one.
        var configuration = NodeClient.Configuration()
        configuration.requestTimeout = .seconds(30)
        let client = NodeClient(port: server.port, configuration: configuration, logger: logger)
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

    @Test func speaksTheNodeAPI() async throws {
        try await withServer { server, client in
            let missing = try await client.get("k1")
            #expect(missing.status == 404)
            #expect(!missing.found)

            let put = try await client.put("k1", body: Array("hello".utf8))
            #expect(put.status == 200)
            #expect(put.bodyString.contains("version"))

            let read = try await client.get("k1")
            #expect(read.found)
            #expect(read.body == Array("hello".utf8))
            #expect(read.version == "1")
            #expect(read.source == .memory)
            #expect(read.stale == false)

            _ = try await client.put("stale-one", body: [1, 2, 3], background: true)
            let stale = try await client.get("stale-one")
            #expect(stale.stale)
            #expect(server.withState { $0.backgroundPuts } == 1)

            #expect(try await client.delete("k1").status == 204)
            #expect(try await client.get("k1").status == 404)

            #expect(try await client.invalidate(keys: ["a", "b c"]).status == 200)
            #expect(server.withState { $0.invalidated } == [["a", "b c"]])

            let stats = try JSONSerialization.jsonObject(with: Data(try await client.stats())) as? [String: Any]
            #expect(stats?["node"] as? String == "fake")

            #expect(try await client.health())
            #expect(try await client.ready())
            server.withState { $0.ready = false }
            #expect(try await client.ready() == false)
        }
    }

    @Test func keysAreEscapedAsOnePathSegment() async throws {
        try await withServer { server, client in
            let key = "user/42?x=1 %é"
            _ = try await client.put(key, body: [7])
            #expect(try await client.get(key).body == [7])
            #expect(server.withState { $0.values.keys.contains(key) })
            #expect(server.withState { $0.requests.last } == "GET /v1/cache/user%2F42%3Fx%3D1%20%25%C3%A9")
        }
    }

    @Test func reusesKeepAliveConnections() async throws {
        try await withServer { server, client in
            for index in 0..<20 {
                _ = try await client.put("k\(index)", body: [UInt8(index)])
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

    @Test func retriesWhenTheServerClosedAnIdleConnection() async throws {
        try await withServer { server, client in
            _ = try await client.put("k", body: [1])
            server.dropConnections()
            // Give the FIN time to arrive, so the pooled connection is really dead.
            _ = await eventually { server.withState { $0.channels.isEmpty } }
            #expect(try await client.get("k").body == [1])
            #expect(server.accepted == 2)
        }
    }

    @Test func timesOutInsteadOfHanging() async throws {
        var configuration = NodeClient.Configuration()
        configuration.requestTimeout = .milliseconds(300)
        let server = try await FakeNodeServer.start()
        let client = NodeClient(port: server.port, configuration: configuration, logger: logger)
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: ChaosError.self) { _ = try await client.request(.GET, "/hang") }
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(290))
        do {
            _ = try await client.request(.GET, "/hang")
            Issue.record("expected a timeout")
        } catch let error as ChaosError {
            #expect(error.code == .timeout)
        }
        // The client is still usable afterwards (with a budget no loaded machine exhausts).
        #expect(try await client.request(.GET, "/health", timeout: .seconds(30)).status == 200)
        client.shutdown()
        await server.stop()
    }

    @Test func timesOutAgainstAServerThatNeverAnswers() async throws {
        let server = try await SilentServer.start()
        var configuration = NodeClient.Configuration()
        configuration.requestTimeout = .milliseconds(250)
        let client = NodeClient(port: server.port, configuration: configuration, logger: logger)
        do {
            _ = try await client.get("k")
            Issue.record("expected a timeout")
        } catch let error as ChaosError {
            #expect(error.code == .timeout)
        }
        client.shutdown()
        await server.stop()
    }

    @Test func closedWithoutAnswerAndRefusedConnectionsAreTypedErrors() async throws {
        try await withServer { _, client in
            do {
                _ = try await client.request(.GET, "/drop")
                Issue.record("expected an error")
            } catch let error as ChaosError {
                #expect(error.code == .connectionClosed)
            }
        }
        let port = try await freePort()
        let client = NodeClient(port: port, logger: logger)
        do {
            _ = try await client.health()
            Issue.record("expected an error")
        } catch let error as ChaosError {
            #expect(error.code == .connectFailed)
        }
    }
}
