import ConcordProcess
import ConcordChaos
import ConcordTesting
import Logging
import Testing

/// The fault proxy against a real echo server and a real redis-server, all on 127.0.0.1.
@Suite struct FaultProxyTests {
    let logger = Logger(label: "test.proxy")

    /// Runs `body` with an echo server and a proxy in front of it; both stop on every path.
    private func withProxy(
        echoReads: Bool = true,
        configuration: FaultProxy.Configuration = .init(),
        _ body: (FaultProxy, EchoServer) async throws -> Void
    ) async throws {
        let echo = try await EchoServer.start(reading: echoReads)
        let proxy: FaultProxy
        do {
            proxy = try await FaultProxy.start(
                upstream: .init(host: "127.0.0.1", port: echo.port), configuration: configuration, logger: logger)
        } catch {
            await echo.stop()
            throw error
        }
        do {
            try await body(proxy, echo)
        } catch {
            await proxy.stop()
            await echo.stop()
            throw error
        }
        await proxy.stop()
        #expect(proxy.openConnections == 0)
        await echo.stop()
    }

    private func echoes(_ client: TestTCPClient, _ text: String) async throws -> Bool {
        let before = client.receivedString
        try await client.send(text)
        return await eventually { client.receivedString == before + text }
    }

    @Test func passesBytesBothWaysAndPropagatesHalfClose() async throws {
        try await withProxy { proxy, echo in
            let client = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(client, "hello"))
            #expect(try await echoes(client, " world"))
            try await client.shutdownOutput()
            // The echo server sees EOF through the proxy and half-closes back; the client, whose
            // output is already shut, then closes (NIO reports that as a close, not as inputClosed).
            #expect(await eventually { client.state.closed })
            #expect(client.state.error == nil)
            #expect(client.receivedString == "hello world")
            #expect(await eventually { proxy.openConnections == 0 })
            #expect(echo.acceptedConnections == 1)
            await client.close()
        }
    }

    @Test func downRefusesNewAndDropsExistingConnections() async throws {
        try await withProxy { proxy, echo in
            let existing = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(existing, "a"))
            proxy.set(.down)
            #expect(await eventually { existing.state.closed })

            // Accepted by the kernel, then closed at once; the connect may already see the close.
            if let refused = try? await TestTCPClient.connect(port: proxy.port) {
                try? await refused.send("x")
                #expect(await eventually { refused.state.closed })
                #expect(refused.received.isEmpty)
            }
            #expect(echo.acceptedConnections == 1)

            proxy.clear()
            let healed = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(healed, "back"))
            await healed.close()
        }
    }

    @Test func downOnOneDirectionKeepsConnectionsHalfOpenAndRefusesNewOnes() async throws {
        try await withProxy { proxy, echo in
            let client = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(client, "a"))
            // The node can send but not hear: the echo server gets the bytes, the echo is lost.
            proxy.set(.down, direction: .downstream)
            let before = proxy.statistics.bytesUpstream
            try await client.send("b")
            #expect(await eventually { proxy.statistics.bytesUpstream > before })
            #expect(!client.state.closed)
            if let refused = try? await TestTCPClient.connect(port: proxy.port) {
                #expect(await eventually { refused.state.closed })
            }
            #expect(echo.acceptedConnections == 1)
            proxy.clear()
            #expect(try await echoes(client, "c"))
            // "b" was echoed while the downstream was down: it never arrives.
            #expect(client.receivedString == "ac")
            await client.close()
        }
    }

    @Test func timeoutSwallowsUntilHealedThenClosesWhenAsked() async throws {
        try await withProxy { proxy, _ in
            let client = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(client, "1"))
            proxy.set(.timeout())
            try await client.send("lost")
            // Absence can only be observed by waiting; the data would echo within milliseconds.
            try await Task.sleep(for: .milliseconds(300))
            #expect(client.receivedString == "1")
            #expect(!client.state.closed)

            proxy.clear()
            #expect(try await echoes(client, "2"))
            #expect(client.receivedString == "12")

            proxy.set(.timeout(closeAfter: .milliseconds(100)))
            #expect(await eventually { client.state.closed })
        }
    }

    @Test func latencyDelaysEachDirection() async throws {
        try await withProxy { proxy, _ in
            let client = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(client, "warm"))
            proxy.set(.latency(.milliseconds(150)), direction: .both)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await echoes(client, "slow"))
            // Lower bound only: 150 ms each way.
            #expect(clock.now - start >= .milliseconds(295))

            proxy.set(.latency(.milliseconds(120)), direction: .downstream)
            proxy.remove(.latency, direction: .upstream)
            let again = clock.now
            #expect(try await echoes(client, "half"))
            #expect(clock.now - again >= .milliseconds(115))
            await client.close()
        }
    }

    @Test func resetPeerSendsRSTToExistingAndNewConnections() async throws {
        try await withProxy { proxy, _ in
            let existing = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(existing, "a"))
            proxy.set(.resetPeer(), direction: .downstream)
            #expect(await eventually { existing.state.reset })

            proxy.set(.resetPeer(after: .milliseconds(200)), direction: .downstream)
            let delayed = try await TestTCPClient.connect(port: proxy.port)
            // On a loaded machine the 200 ms can pass before the echo returns; then writing fails
            // on the already-reset connection, which is the behaviour under test too.
            _ = try? await echoes(delayed, "still up")
            #expect(await eventually { delayed.state.reset }, "the delayed connection ended as \(delayed.state)")

            proxy.set(.resetPeer(), direction: .both)
            do {
                let immediate = try await TestTCPClient.connect(port: proxy.port)
                #expect(await eventually { immediate.state.reset })
                #expect(immediate.received.isEmpty)
            } catch {
                // The RST can beat the connect's completion; then the connect itself reports it.
                #expect("\(error)".contains("reset"), "unexpected error: \(error)")
            }

            proxy.clear()
            let healed = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(healed, "ok"))
            await healed.close()
        }
    }

    @Test func unreachableUpstreamClosesTheClient() async throws {
        let port = try FreePort.next()
        let proxy = try await FaultProxy.start(upstream: .init(host: "127.0.0.1", port: port), logger: logger)
        let client = try await TestTCPClient.connect(port: proxy.port)
        #expect(await eventually { client.state.closed })
        #expect(await eventually { proxy.openConnections == 0 })
        await proxy.stop()
    }

    @Test func limitDataClosesAfterBytes() async throws {
        try await withProxy { proxy, _ in
            proxy.set(.limitData(bytes: 10), direction: .downstream)
            let client = try await TestTCPClient.connect(port: proxy.port)
            try await client.send(String(repeating: "z", count: 100))
            #expect(await eventually { client.state.closed })
            #expect(client.received.count == 10)
        }
    }

    @Test func slicerKeepsBytesIntactAndInOrder() async throws {
        try await withProxy { proxy, _ in
            proxy.set(.slicer(averageSize: 7, variation: 3, delay: .microseconds(200)), direction: .both)
            let client = try await TestTCPClient.connect(port: proxy.port)
            let payload = (0..<2_000).map { String($0 % 10) }.joined()
            try await client.send(payload)
            #expect(await eventually { client.receivedString.count >= payload.count })
            #expect(client.receivedString == payload)
            await client.close()
        }
    }

    @Test func bandwidthThrottles() async throws {
        try await withProxy { proxy, _ in
            proxy.set(.bandwidth(kilobytesPerSecond: 8), direction: .downstream)
            let client = try await TestTCPClient.connect(port: proxy.port)
            let clock = ContinuousClock()
            let start = clock.now
            try await client.send([UInt8](repeating: 7, count: 4_096))
            #expect(await eventually { client.received.count == 4_096 })
            // 4 KiB at 8 KiB/s needs half a second at least.
            #expect(clock.now - start >= .milliseconds(450))
            await client.close()
        }
    }

    @Test func backpressureBoundsBufferingWhenUpstreamStopsReading() async throws {
        var configuration = FaultProxy.Configuration()
        configuration.highWaterMark = 128 * 1024
        configuration.lowWaterMark = 32 * 1024
        try await withProxy(echoReads: false, configuration: configuration) { proxy, _ in
            proxy.set(.latency(.milliseconds(5)), direction: .upstream)
            let client = try await TestTCPClient.connect(port: proxy.port)
            let total = 48 * 1024 * 1024
            client.sendWithoutWaiting([UInt8](repeating: 1, count: total))
            // Wait until the proxy stops accepting bytes: the upstream's buffers are full.
            var last = -1
            _ = await eventually(timeout: .seconds(10)) {
                let now = proxy.statistics.bytesUpstream
                defer { last = now }
                try? await Task.sleep(for: .milliseconds(100))
                return now == last && now > 0
            }
            let statistics = proxy.statistics
            #expect(statistics.bytesUpstream < total)
            // One socket read (at most 64 KiB) may land on top of the high-water mark before reading pauses.
            #expect(statistics.peakQueuedBytes <= configuration.highWaterMark + 64 * 1024)
            // The proxy cannot see the client's FIN behind megabytes nobody reads, like any real
            // hop, so this connection ends with stop(), which withProxy checks.
            await client.close()
        }
    }

    @Test func dropAllAndStopLeaveNoConnection() async throws {
        let echo = try await EchoServer.start()
        let proxy = try await FaultProxy.start(upstream: .init(host: "127.0.0.1", port: echo.port), logger: logger)
        var clients: [TestTCPClient] = []
        for index in 0..<5 {
            let client = try await TestTCPClient.connect(port: proxy.port)
            #expect(try await echoes(client, "\(index)"))
            clients.append(client)
        }
        #expect(proxy.openConnections == 5)
        proxy.dropAllConnections()
        for client in clients { #expect(await eventually { client.state.closed }) }
        #expect(await eventually { proxy.openConnections == 0 })
        let late = try await TestTCPClient.connect(port: proxy.port)
        #expect(try await echoes(late, "late"))
        await proxy.stop()
        #expect(await eventually { late.state.closed })
        #expect(proxy.openConnections == 0)
        await echo.stop()
    }

    @Test func worksInFrontOfRedis() async throws {
        try await withRedisPort { redisPort in
            let proxy = try await FaultProxy.start(upstream: .init(host: "127.0.0.1", port: redisPort), logger: logger)
            do {
                #expect(try await redisPing(port: proxy.port))

                proxy.set(.latency(.milliseconds(100)), direction: .downstream)
                let clock = ContinuousClock()
                let start = clock.now
                #expect(try await redisPing(port: proxy.port))
                #expect(clock.now - start >= .milliseconds(95))
                proxy.clear()

                let subscriber = try await TestTCPClient.connect(port: proxy.port)
                try await subscriber.send("*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nbp\r\n")
                #expect(await eventually { subscriber.receivedString.hasSuffix(":1\r\n") })
                proxy.set(.resetPeer(), direction: .downstream)
                #expect(await eventually { subscriber.state.reset })

                proxy.set(.down)
                #expect((try? await redisPing(port: proxy.port, timeout: .milliseconds(300))) != true)

                proxy.clear()
                #expect(try await redisPing(port: proxy.port))
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
            #expect(proxy.openConnections == 0)
        }
    }
}
