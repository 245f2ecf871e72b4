import ConcordProcess
import ConcordTesting
import Synchronization
import Testing

@testable import ConcordRedis

/// Collects every message of one `messages` stream in the background of a test.
final class MessageCollector: Sendable {
    private let received = Mutex<[RedisPubSubMessage]>([])

    var messages: [RedisPubSubMessage] { received.withLock { $0 } }

    func contains(channel: String, payload: String, pattern: String? = nil) -> Bool {
        messages.contains { $0.channel == channel && $0.payloadString == payload && $0.pattern == pattern }
    }

    func consume(_ stream: AsyncStream<RedisPubSubMessage>) async {
        for await message in stream {
            received.withLock { $0.append(message) }
        }
    }
}

func withCollector<T: Sendable>(
    _ subscriber: RedisSubscriber,
    _ body: @Sendable (MessageCollector) async throws -> T
) async throws -> T {
    let collector = MessageCollector()
    let stream = subscriber.messages  // created before any subscribe, so nothing is missed
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await collector.consume(stream) }
        let result = try await body(collector)
        group.cancelAll()
        return result
    }
}

@Suite("RedisSubscriber against a real redis-server", .timeLimit(.minutes(2)))
struct RedisSubscriberTests {
    @Test func subscribePatternAndUnsubscribe() async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                try await withRunningSubscriber(testConfiguration(server)) { subscriber in
                    try await withCollector(subscriber) { collector in
                        try await subscriber.subscribe(channels: ["news", "other"])
                        try await subscriber.psubscribe(patterns: ["ev.*"])
                        #expect(try await client.send("PUBLISH", "news", "hello") == .integer(1))
                        #expect(try await client.send("PUBLISH", "ev.created", RedisArgument([0, 1, 2])) == .integer(1))
                        #expect(await eventually { collector.contains(channel: "news", payload: "hello") })
                        #expect(
                            await eventually {
                                collector.messages.contains { $0.channel == "ev.created" && $0.pattern == "ev.*" && $0.payload == [0, 1, 2] }
                            })

                        try await subscriber.unsubscribe(channels: ["news"])
                        try await subscriber.punsubscribe(patterns: ["ev.*"])
                        #expect(try await client.send("PUBLISH", "news", "gone") == .integer(0))
                        #expect(try await client.send("PUBLISH", "other", "still") == .integer(1))
                        #expect(await eventually { collector.contains(channel: "other", payload: "still") })
                        #expect(subscriber.subscribedChannels == ["other"])
                        #expect(subscriber.subscribedPatterns.isEmpty)
                    }
                }
            }
        }
    }

    @Test func resubscribesAfterTheServerIsKilledAndRestarted() async throws {
        try await withRedisServer { server in
            let configuration = fastConfiguration(server)
            try await withRunningClient(configuration) { client in
                try await withRunningSubscriber(configuration) { subscriber in
                    try await withCollector(subscriber) { collector in
                        try await subscriber.subscribe(channels: ["news"])
                        try await subscriber.psubscribe(patterns: ["ev.*"])
                        let states = subscriber.states

                        server.kill()
                        let lost = try await firstState(in: states) {
                            if case .disconnected = $0 { return true }
                            return false
                        }
                        #expect(lost != nil)
                        try await server.restart()
                        // `.connected` is published only after every subscription is restored.
                        let connectedState = try await firstState(in: states) { $0.isConnected }
                        #expect(connectedState != nil)
                        #expect(await eventually { (try? await client.send("PING")) != nil })

                        #expect(try await client.send("PUBLISH", "news", "after restart") == .integer(1))
                        #expect(try await client.send("PUBLISH", "ev.x", "pattern after restart") == .integer(1))
                        #expect(await eventually { collector.contains(channel: "news", payload: "after restart") })
                        #expect(await eventually { collector.contains(channel: "ev.x", payload: "pattern after restart", pattern: "ev.*") })
                    }
                }
            }
        }
    }

    @Test func subscribingWhileDisconnectedTakesEffectOnConnect() async throws {
        try await withRedisServer { server in
            server.kill()
            let configuration = fastConfiguration(server)
            let subscriber = RedisSubscriber(configuration: configuration, logger: testLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await subscriber.run() }
                try await withCollector(subscriber) { collector in
                    try await subscriber.subscribe(channels: ["late"])  // returns at once; kept for connect
                    try await server.restart()
                    try await subscriber.waitUntilConnected(timeout: TestBounds.connect)
                    try await withRunningClient(configuration) { client in
                        let receivers = try await client.send("PUBLISH", "late", "made it")
                        #expect(receivers == .integer(1))
                    }
                    #expect(await eventually { collector.contains(channel: "late", payload: "made it") })
                }
                group.cancelAll()
            }
        }
    }

    @Test func pingDetectsAHungServer() async throws {
        try await withRedisServer { server in
            var configuration = fastConfiguration(server)
            configuration.commandTimeout = .milliseconds(200)
            configuration.connectTimeout = .milliseconds(200)
            configuration.subscriber.pingInterval = .milliseconds(50)
            let hungConfiguration = configuration
            try await withRunningClient(hungConfiguration) { client in
                try await withRunningSubscriber(hungConfiguration) { subscriber in
                    try await withCollector(subscriber) { collector in
                        try await subscriber.subscribe(channels: ["beat"])
                        let states = subscriber.states
                        server.pause()
                        let lost = try await firstState(in: states) {
                            if case .disconnected(let error) = $0 { return error.code == .timeout }
                            return false
                        }
                        server.resume()
                        #expect(lost != nil)
                        // Reconnecting needs a handshake within the 200 ms connect timeout, which a
                        // loaded machine may miss a few times; the subscriber keeps trying.
                        let connectedState = try await firstState(in: states, timeout: TestBounds.connect) { $0.isConnected }
                        #expect(connectedState != nil)
                        // Published until it arrives: with 200 ms pings a loaded machine can time
                        // the new link out again, and a message Redis handed to a connection the
                        // subscriber then dropped is gone (pub/sub keeps nothing).
                        #expect(
                            await eventually {
                                _ = try? await client.send("PUBLISH", "beat", "alive")
                                return collector.contains(channel: "beat", payload: "alive")
                            })
                    }
                }
            }
            server.resume()
        }
    }
}
