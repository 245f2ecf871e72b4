@_spi(ConcordBackend) import Concord
import ConcordProcess
import ConcordRedis
import ConcordTesting
import Testing

@testable import ConcordMemcached

/// The L2 a scenario runs on. The scenarios live in this target because it is the one that
/// links all three (the in-memory double, Redis and Memcached).
enum L2Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inMemory
    case redis
    case memcached

    var testDescription: String { rawValue }
}

/// An L2 of `backend` on a fresh server (none for the in-memory one), for the length of `body`;
/// `body` also gets the Redis client on Redis, for checks only Redis can make.
func withL2<T: Sendable>(
    _ backend: L2Backend,
    _ body: @Sendable (any DistributedCache, RedisClient?) async throws -> T
) async throws -> T {
    switch backend {
    case .inMemory:
        return try await body(InMemoryDistributedCache(store: InMemoryCacheStore()), nil)
    case .memcached:
        return try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in try await body(l2, nil) }
        }
    case .redis:
        return try await withRedisServer { server in
            var configuration = server.configuration()
            configuration.connectTimeout = TestBounds.reply
            configuration.commandTimeout = TestBounds.reply
            let client = RedisClient(configuration: configuration, logger: testLogger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                try await client.waitUntilConnected(timeout: TestBounds.connect)
                let l2 = RedisDistributedCache(client: client, cacheName: "markers", runsClient: false, logger: testLogger)
                let result = try await body(l2, client)
                group.cancelAll()
                return result
            }
        }
    }
}

/// Scenarios every L2 must pass alike, written once and run on each backend.
@Suite("L2 scenarios on every backend: in-memory, Redis, Memcached", .timeLimit(.minutes(2)))
struct DistributedCacheScenarioTests {
    /// The write script (and its Memcached and in-memory counterparts) keeps an `expire` over
    /// every older write that lands after it: a write queued on a cut-off node and flushed
    /// after another node's invalidation never reads as fresh, and a set is superseded by it,
    /// so its writer does not keep it fresh in L1 either.
    @Test(arguments: L2Backend.allCases)
    func anExpireOutlivesOlderWritesThatLandAfterIt(backend: L2Backend) async throws {
        try await withL2(backend) { l2, redis in
            // An expire of a key with no entry is kept, and a set older than it is superseded.
            _ = try await l2.apply(marker(.expire, "missing", version(5)), publish: false)
            #expect(try await l2.read("missing") == nil)
            #expect(try await l2.apply(setMutation("missing", "late", version(3)), publish: false) == .superseded(by: version(5)))
            #expect(try await l2.read("missing") == nil)
            _ = try await l2.apply(setMutation("missing", "new", version(6)), publish: false)
            #expect(try await l2.read("missing")?.isExpired == false)

            // A write queued before the expire and flushed after it does not make it fresh.
            _ = try await l2.apply(setMutation("k", "v1", version(1)), publish: false)
            _ = try await l2.apply(marker(.expire, "k", version(5)), publish: false)
            #expect(try await l2.apply(setMutation("k", "late", version(3)), publish: false) == .superseded(by: version(5)))
            let read = try #require(try await l2.read("k"))
            #expect(payload(read) == "v1" && read.entry.version == version(1) && read.isExpired)
            // Nor does a remove and a write between them: the remove keeps the marker, the set
            // is superseded by it.
            _ = try await l2.apply(marker(.remove, "k", version(4)), publish: false)
            #expect(try await l2.apply(setMutation("k", "later", version(4, "n2")), publish: false) == .superseded(by: version(5)))
            #expect(try await l2.read("k") == nil)

            // On Redis the marker keeps its own lifetime even under a shorter-lived write.
            if let redis, let namespace = (l2 as? RedisDistributedCache)?.namespace {
                let life = try await redis.send(["PTTL", RedisArgument(namespace.prefix + ":e:k")]).int ?? -1
                #expect(life > 50_000)
            }
        }
    }

    /// A set older than a clear, or than a removal of one of its tags, is superseded by it, so
    /// its writer drops it from L1 instead of serving what every other node reads as hidden.
    @Test(arguments: L2Backend.allCases)
    func aSetOlderThanAClearOrATagRemovalIsSuperseded(backend: L2Backend) async throws {
        try await withL2(backend) { l2, _ in
            _ = try await l2.apply(marker(.clearExpire, "", version(10)), publish: false)
            #expect(try await l2.apply(setMutation("k", "old", version(5)), publish: false) == .superseded(by: version(10)))
            #expect(try await l2.read("k") == nil)
            _ = try await l2.apply(marker(.removeTag, "group", version(20)), publish: false)
            let hidden = try await l2.apply(setMutation("t", "old", version(15), tags: ["other", "group"]), publish: false)
            #expect(hidden == .superseded(by: version(20)))
            let applied = try await l2.apply(setMutation("u", "new", version(15), tags: ["other"]), publish: false)
            guard case .applied = applied else {
                Issue.record("a set newer than the clear, of a tag not removed, was \(applied)")
                return
            }
            #expect(try await l2.read("u")?.isExpired == false)
        }
    }

    /// A live clear or tag removal older than a stored set (the set's writer's clock ran ahead,
    /// or the clearing node's was set back by a restart) is superseded by the highest set
    /// stored and changes nothing, so that its writer rebases it after it; a queued one still
    /// applies under its own version. Memcached keeps no highest stored set and applies both.
    @Test(arguments: [L2Backend.inMemory, .redis])
    func aLiveClearOrTagRemovalOlderThanAStoredSetIsSupersededByIt(backend: L2Backend) async throws {
        try await withL2(backend) { l2, redis in
            _ = try await l2.apply(setMutation("k", "ahead", version(50, "fast"), tags: ["group"]), publish: false)
            var clear = marker(.clearRemove, "", version(10, "slow"))
            clear.ordersAfterStoredSets = true
            #expect(try await l2.apply(clear, publish: true) == .superseded(by: version(50, "fast")))
            var tagRemoval = marker(.removeTag, "group", version(10, "slow"))
            tagRemoval.ordersAfterStoredSets = true
            #expect(try await l2.apply(tagRemoval, publish: true) == .superseded(by: version(50, "fast")))
            #expect(try await l2.read("k")?.isExpired == false)

            tagRemoval.version = version(51, "slow")
            guard case .applied = try await l2.apply(tagRemoval, publish: true) else {
                Issue.record("a live tag removal newer than every stored set was not applied")
                return
            }
            #expect(try await l2.read("k") == nil)

            // Queued: applied under its own version, hiding only what is older.
            _ = try await l2.apply(setMutation("j", "old", version(60, "fast")), publish: false)
            _ = try await l2.apply(setMutation("m", "new", version(80, "fast")), publish: false)
            guard case .applied = try await l2.apply(marker(.clearExpire, "", version(70, "slow")), publish: true) else {
                Issue.record("a queued clear older than a stored set was not applied")
                return
            }
            #expect(try await l2.read("j")?.isExpired == true)
            #expect(try await l2.read("m")?.isExpired == false)

            // A forged highest version (past the clearing node's allowed drift) is not believed.
            if let redis, let namespace = (l2 as? RedisDistributedCache)?.namespace {
                let forged = CacheVersion(milliseconds: 1_000_000_000_000, counter: 0, node: "forger")
                _ = try await redis.send(["HSET", RedisArgument(namespace.prefix + ":head"), "hv", RedisArgument(forged.orderedText)])
                clear.version = version(90, "slow")
                guard case .applied = try await l2.apply(clear, publish: true) else {
                    Issue.record("a forged highest version held a live clear back")
                    return
                }
                #expect(try await l2.read("m") == nil)
                // The next set replaces the forged highest version.
                _ = try await l2.apply(setMutation("n", "v", version(100, "fast")), publish: false)
                let highest = try await redis.send(["HGET", RedisArgument(namespace.prefix + ":head"), "hv"]).string
                #expect(highest == version(100, "fast").orderedText)
                // The backplane's head carries it, for the nodes' clocks to follow.
                let backplane = RedisBackplane(
                    client: redis, subscriber: RedisSubscriber(configuration: redis.configuration, logger: testLogger), cacheName: "markers"
                )
                #expect(try await backplane.head().highestStoredVersion == version(100, "fast"))
            }
        }
    }
}
