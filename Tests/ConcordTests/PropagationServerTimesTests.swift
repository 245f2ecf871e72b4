@_spi(ConcordBackend) import Concord
@testable import ConcordBench
import ConcordProcess
import ConcordRedis
import ConcordTesting
import Logging
import Testing

/// The propagation suite reads how long the write script ran inside Redis from the slow log;
/// it finds the script's calls by their digest, so a change of its key count cannot hide them.
@Suite("Propagation suite: time inside Redis", .timeLimit(.minutes(1)))
struct PropagationServerTimesTests {
    @Test func theWriteScriptIsFoundInTheSlowLog() async throws {
        let logger = Logger(label: "test.propagation.times")
        try await withRedisServer { server in
            // A loaded test process can hold a reply past the default 1 s command timeout.
            var configuration = server.configuration()
            configuration.connectTimeout = TestBounds.reply
            configuration.commandTimeout = TestBounds.reply
            let client = RedisClient(configuration: configuration, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                try await client.waitUntilConnected(timeout: .seconds(10))
                _ = try await client.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
                _ = try await client.send("SLOWLOG", "RESET")
                let l2 = RedisDistributedCache(client: client, cacheName: "times", runsClient: false, logger: logger)
                let mutation = CacheMutation(
                    kind: .set, key: "k", version: CacheVersion(milliseconds: 1, counter: 0, node: "n"),
                    entry: DistributedEntry(version: CacheVersion(milliseconds: 1, counter: 0, node: "n"), logicalExpiryMilliseconds: 4_000_000_000_000, payload: Array("v".utf8)),
                    timeToLive: .seconds(60)
                )
                _ = try await l2.apply(mutation, publish: true)
                _ = try await client.send("PUBLISH", "elsewhere", "m")
                let times = try await PropagationSuite.serverTimes(client)
                #expect(times.writeScript != nil)
                #expect(times.publish != nil)
                group.cancelAll()
            }
        }
    }
}
