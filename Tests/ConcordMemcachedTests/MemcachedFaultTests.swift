import ConcordProcess
import Testing

@testable import ConcordMemcached
import ConcordTesting

@Suite("Memcached client faults: hung server, restarts, no server", .timeLimit(.minutes(2)))
struct MemcachedFaultTests {
    @Test func pausedServerTimesOutPendingRequestsAndTheClientReconnectsAfterResume() async throws {
        try await withMemcachedServers(1) { servers in
            var configuration = fastConfiguration(servers)
            configuration.requestTimeout = .seconds(1)
            configuration.connectTimeout = .seconds(1)
            try await withRunningClient(configuration) { client in
                servers[0].pause()
                let errors = await withTaskGroup(of: MemcachedError?.self) { group in
                    for _ in 0..<5 { group.addTask { await memcachedError { _ = try await client.get("k") } } }
                    var errors: [MemcachedError?] = []
                    for await error in group { errors.append(error) }
                    return errors
                }
                // Requests written before the deadline fail with `.timeout`; one submitted after the
                // poisoned connection closed is told the server is not connected (or off the ring).
                #expect(errors.allSatisfy { [.timeout, .notConnected, .noServers].contains($0?.code) })
                #expect(errors.contains { $0?.code == .timeout })
                servers[0].resume()
                let back = await eventually {
                    guard client.isConnected(server: 0), client.liveServers == [0] else { return false }
                    return (try? await client.set("k", value: bytes("v"))) != nil
                }
                #expect(back)
                let item = try await client.get("k")
                #expect(item?.value == bytes("v"))
            }
        }
    }

    @Test func killedServerFailsFastAndARestartedOneIsReconnectedEmpty() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                _ = try await client.set("k", value: bytes("v"))
                servers[0].kill()
                #expect(await eventually { !client.isConnected(server: 0) })
                let error = await memcachedError { _ = try await client.get("k") }
                #expect([.noServers, .notConnected, .connectionClosed].contains(error?.code))
                try await servers[0].restart()
                #expect(await eventually { client.isConnected(server: 0) })
                #expect(try await client.get("k") == nil)
            }
        }
    }

    @Test func noServerListeningBacksOffInsteadOfSpinning() async throws {
        let port = try FreePort.next()
        var configuration = MemcachedConfiguration(servers: [.init(host: "127.0.0.1", port: port)])
        configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(200))
        try await withRunningClient(configuration, waitForConnection: false) { client in
            let retried = await eventually { client.connectionAttempts(server: 0) >= 3 }
            #expect(retried)
            let error = await memcachedError { _ = try await client.get("k") }
            #expect([.noServers, .notConnected].contains(error?.code))
            // Backoff bounds the attempts: far fewer than one per millisecond of the wait above.
            #expect(client.connectionAttempts(server: 0) < 200)
        }
    }

    @Test func garbageFromTheServerIsAProtocolErrorAndTheClientReconnects() async throws {
        let server = try await GarbageServer.start()
        var configuration = MemcachedConfiguration(servers: [.init(host: "127.0.0.1", port: server.port)])
        configuration.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(100))
        do {
            try await withRunningClient(configuration) { client in
                let error = await memcachedError { _ = try await client.get("k") }
                #expect(error?.code == .protocolError)
                let reconnected = await eventually { server.connections >= 2 && client.isConnected(server: 0) }
                #expect(reconnected)
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test func requestsBeforeRunFailWithNotConnected() async throws {
        let client = MemcachedClient(configuration: .init(servers: [.init(host: "127.0.0.1", port: 1)]), logger: testLogger)
        let error = await memcachedError { _ = try await client.get("k") }
        #expect(error?.code == .notConnected)
    }
}

@Suite("Memcached client over several servers", .timeLimit(.minutes(2)))
struct MemcachedServersTests {
    @Test func keysAreSpreadAsTheKetamaRingSaysAndStoredOnThatServer() async throws {
        try await withMemcachedServers(3) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                let continuum = KetamaContinuum(servers: servers.map { .init(host: $0.host, port: $0.port) })
                var perServer = [0, 0, 0]
                for index in 0..<60 {
                    let key = "spread-\(index)"
                    let owner = try #require(client.server(for: key))
                    #expect(owner == continuum.server(for: key.utf8))
                    perServer[owner] += 1
                    _ = try await client.set(key, value: bytes("v"))
                    // Only the owner holds it.
                    for other in 0..<3 {
                        let response = try await client.send(.get(key), toServer: other)
                        #expect((response.status == .value) == (other == owner))
                    }
                }
                #expect(perServer.allSatisfy { $0 > 0 })
            }
        }
    }

    @Test func aDeadServersKeysMoveToTheOthersAndItRejoinsWhenBack() async throws {
        try await withMemcachedServers(3) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                let keys = (0..<60).map { "move-\($0)" }
                let before = keys.map { client.server(for: $0) }
                servers[1].kill()
                #expect(await eventually { client.liveServers == [0, 2] })
                for (key, owner) in zip(keys, before) {
                    let now = try #require(client.server(for: key))
                    #expect(now != 1)
                    // Keys of the live servers stay where they were (consistent hashing).
                    if owner != 1 { #expect(now == owner) }
                    _ = try await client.set(key, value: bytes("moved"))
                    #expect(try await client.get(key)?.value == bytes("moved"))
                }
                try await servers[1].restart()
                #expect(await eventually { client.liveServers == [0, 1, 2] })
                #expect(keys.map { client.server(for: $0) } == before)
            }
        }
    }

    @Test func everyServerDownFailsWithNoServers() async throws {
        try await withMemcachedServers(2) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                for server in servers { server.kill() }
                let allDown = await eventually { client.liveServers.isEmpty }
                #expect(allDown)
                let error = await memcachedError { _ = try await client.get("k") }
                #expect(error?.code == .noServers)
            }
        }
    }
}
