import Concord
@testable import ConcordNode
import NIOCore
import NIOEmbedded
import Testing

/// `MemoryHitByteHandler` alone on the embedded event loop, whose clock moves only when the test
/// moves it: which bytes it answers, which it hands on to the decoder (and where it cuts them),
/// and its idle timer.
@Suite("Memory hits from request bytes")
struct MemoryHitByteHandlerTests {
    private func makeChannel(
        idleTimeout: TimeAmount? = nil, connection: DirectHitConnection = DirectHitConnection()
    ) async throws -> (EmbeddedChannel, CacheNode) {
        let node = try makeMemoryNode()
        try await node.cache.set("k", Array("value".utf8))
        let responder = MemoryHitResponder(cache: node.cache, tokens: AccessTokens(), metrics: NodeMetrics(registry: .init(), node: "n"), serverName: "concord")
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        try channel.pipeline.syncOperations.addHandler(MemoryHitByteHandler(responder: responder, connection: connection, idleTimeout: idleTimeout))
        return (channel, node)
    }

    private func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything handed on to the decoder so far, in pieces.
    private func handedOn(_ channel: EmbeddedChannel) throws -> [String] {
        var pieces: [String] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { pieces.append(String(buffer: buffer)) }
        return pieces
    }

    /// Everything written so far, as one string.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    private static let hit = "GET /v1/cache/k HTTP/1.1\r\nHost: x\r\n\r\n"

    @Test("a plain GET hit is answered whole, in the router's bytes; a miss, an escape or a query is handed on whole")
    func hitsAndDeclines() async throws {
        let (channel, _) = try await makeChannel()
        try send(channel, Self.hit)
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\nConcord-Version: "), "\(answer)")
        #expect(answer.contains("\r\nContent-Type: application/octet-stream\r\nConcord-Source: memory\r\nConcord-Stale: false\r\nContent-Length: 5\r\nDate: "))
        #expect(answer.hasSuffix(" GMT\r\nServer: concord\r\n\r\nvalue"))
        #expect(try handedOn(channel).isEmpty)
        for declined in [
            "GET /v1/cache/absent HTTP/1.1\r\n\r\n", "GET /v1/cache/%6B HTTP/1.1\r\n\r\n", "GET /v1/cache/k?x=1 HTTP/1.1\r\n\r\n",
            "GET /v1/cache/ HTTP/1.1\r\n\r\n", "GET /v1/cachek HTTP/1.1\r\n\r\n", "HEAD /v1/cache/k HTTP/1.1\r\n\r\n",
        ] {
            try send(channel, declined)
            #expect(try handedOn(channel) == [declined])
            #expect(try written(channel).isEmpty, "\(declined)")
        }
    }

    @Test("bodies are handed on with their request, across reads; a hit after them is answered in order")
    func bodiesAcrossReads() async throws {
        let (channel, _) = try await makeChannel()
        try send(channel, "PUT /v1/cache/j HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
        #expect(try handedOn(channel) == ["PUT /v1/cache/j HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"])
        try send(channel, "cde" + Self.hit + "GET /v1/cache/k HT")
        #expect(try handedOn(channel) == ["cde"])
        #expect(try written(channel).hasSuffix("value"))
        // The cut head waits for the rest, then is answered.
        try send(channel, "TP/1.1\r\n\r\n")
        #expect(try handedOn(channel).isEmpty)
        #expect(try written(channel).hasSuffix("value"))
    }

    @Test("while a request handed on is unanswered, later hits are handed on too")
    func orderBehindTheRouter() async throws {
        let connection = DirectHitConnection()
        let (channel, _) = try await makeChannel(connection: connection)
        connection.requestsAtRouter = 1
        try send(channel, Self.hit + Self.hit)
        #expect(try handedOn(channel) == [Self.hit, Self.hit])
        #expect(try written(channel).isEmpty)
        connection.requestsAtRouter = 0
        try send(channel, Self.hit)
        #expect(try written(channel).hasSuffix("value"))
    }

    @Test("after bytes it cannot frame, every later byte goes to the decoder, hits too")
    func unframeablePassesEverything() async throws {
        let (channel, _) = try await makeChannel()
        let chunked = "PUT /v1/cache/j HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        try send(channel, chunked)
        try send(channel, Self.hit)
        #expect(try handedOn(channel) == [chunked, Self.hit])
        #expect(try written(channel).isEmpty)
    }

    @Test("after a request that may close the connection, later hits go to the decoder too")
    func closingRequestPassesTheRest() async throws {
        for closing in ["GET /v1/cache/absent HTTP/1.1\r\nConnection: close\r\n\r\n", "GET /v1/cache/k HTTP/1.0\r\n\r\n"] {
            let (channel, _) = try await makeChannel()
            try send(channel, closing + Self.hit)
            try send(channel, Self.hit)
            #expect(try handedOn(channel) == [closing, Self.hit, Self.hit], "\(closing)")
            #expect(try written(channel).isEmpty)
        }
    }

    @Test("the idle timer counts from the last read or the router's last answer, and spares a request the router is answering")
    func idleTimer() async throws {
        let connection = DirectHitConnection()
        let (channel, _) = try await makeChannel(idleTimeout: .milliseconds(300), connection: connection)
        let loop = channel.embeddedEventLoop
        for _ in 0..<5 {
            loop.advanceTime(by: .milliseconds(200))
            try send(channel, Self.hit)
        }
        loop.advanceTime(by: .milliseconds(299))
        #expect(channel.isActive)
        // A request read whole and still at the router: no close however long it takes.
        connection.requestsAtRouter = 1
        loop.advanceTime(by: .seconds(5))
        #expect(channel.isActive)
        connection.requestsAtRouter = 0
        connection.lastRouterAnswer = loop.now
        loop.advanceTime(by: .milliseconds(299))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(301))
        #expect(!channel.isActive)
    }

    @Test("a head stalled half-way is closed by the idle timer")
    func stalledHead() async throws {
        let (channel, _) = try await makeChannel(idleTimeout: .milliseconds(300))
        try send(channel, "GET /v1/cache/k HTTP/1.1\r\nHo")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(299))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }
}
