import Concord
import ConcordProcess
import ConcordRedis
import ConcordTesting
import Logging
import ServiceLifecycle
import Testing

/// Findings 1–3 of the library issue, on a real redis-server: without `run()` a write is refused
/// rather than lost, `ready(timeout:)`, calls made just after start wait for the first
/// connection instead of counting errors, and start and graceful shutdown log no warning.
@Suite("HybridCache lifecycle, real Redis")
struct RedisLifecycleTests {
    static func makeCache(_ node: String, server: RedisServer, logger: Logger) throws -> HybridCache {
        var configuration = HybridCacheConfiguration(cacheName: "lifecycle", nodeID: node)
        configuration.heartbeatInterval = .milliseconds(200)
        var redis = testConfiguration(server)
        // A call before the first connection waits up to this; generous, so a loaded machine
        // that is slow to start run() does not fail the test.
        redis.connectTimeout = .seconds(30)
        // One entry point: the name and the logger are given once.
        return try HybridCache.redis(redis, configuration: configuration, logger: logger)
    }

    @Test func withoutRunASetFailsAndNothingReachesRedis() async throws {
        try await withRedisServer { server in
            let cache = try Self.makeCache("a", server: server, logger: testLogger)
            await #expect { try await cache.set("k", "v") } throws: { error in
                let cacheError = error as? CacheError
                return cacheError?.code == .notRunning && cacheError?.message.contains("ready(timeout:)") == true
            }
            await #expect { try await cache.getResult("k", as: String.self) } throws: { ($0 as? CacheError)?.code == .notRunning }
            #expect(cache.pendingWriteCount == 0)
            #expect(cache.statistics.distributed.errors == 0)
            try await withRunningClient(testConfiguration(server)) { admin in
                let size = try await admin.send("DBSIZE")
                #expect(size.int == 0)
            }
        }
    }

    @Test func aCommandIssuedAsRunStartsWaitsForTheFirstConnection() async throws {
        try await withRedisServer { server in
            var configuration = testConfiguration(server)
            configuration.connectTimeout = .seconds(30)
            let client = RedisClient(configuration: configuration, logger: testLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                // No wait for the connection: the command waits for the first one.
                let pong = try await client.send("PING")
                #expect(pong.string == "PONG")
                group.cancelAll()
            }
        }
    }

    @Test func readyThenWritesReachTheOtherCacheAndStartAndShutdownLogNoWarning() async throws {
        try await withRedisServer { server in
            let recorder = RecordingLogHandler.Recorder()
            let logger = recorder.logger(level: .debug)
            let a = try Self.makeCache("a", server: server, logger: logger)
            let b = try Self.makeCache("b", server: server, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [a, b], logger: testLogger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(await eventually { a.isRunning })
                // Before ready: the call waits for the first connection, and counts no error.
                let loaded = try await a.getOrSet("early") { "from-origin" }
                #expect(loaded == "from-origin")
                try await a.ready(timeout: TestBounds.connect)
                try await b.ready(timeout: TestBounds.connect)
                #expect(a.isReady && b.isReady)
                try await a.set("k", "v1")
                #expect(await eventually { (try? await b.getResult("k", as: String.self))?.value == "v1" })
                try await b.set("k", "v2")
                #expect(await eventually { (try? await a.getResult("k", as: String.self))?.value == "v2" })
                #expect(a.statistics.distributed.errors == 0)
                #expect(b.statistics.distributed.errors == 0)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(recorder.all.contains { $0.message == "cache stopped" })
            // The Redis connections log through the logger given once, with the cache's name.
            #expect(recorder.all.contains { $0.message == "connected to Redis" && $0.metadata["concord.cache"] == "lifecycle" })
            #expect(recorder.records(atLeast: .warning).isEmpty, "\(recorder.records(atLeast: .warning))")
        }
    }
}
