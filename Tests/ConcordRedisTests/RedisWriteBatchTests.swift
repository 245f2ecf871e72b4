import ConcordProcess
@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

@testable import ConcordRedis

/// Group commit of L2 writes against a real redis-server: the batch script applies each
/// mutation exactly as the single write script does, and `apply` batches what queues behind a
/// write in flight (held there with `CLIENT PAUSE`, so no test depends on timing).
@Suite("RedisDistributedCache write batches, real Redis")
struct RedisWriteBatchTests {
    static func version(_ milliseconds: Int64) -> CacheVersion {
        CacheVersion(milliseconds: milliseconds, counter: 0, node: "n")
    }

    static func set(_ key: String, _ milliseconds: Int64, _ value: String, tags: [String] = []) -> CacheMutation {
        let version = version(milliseconds)
        let entry = DistributedEntry(version: version, logicalExpiryMilliseconds: milliseconds + 60_000, tags: tags, payload: Array(value.utf8))
        return CacheMutation(kind: .set, key: key, version: version, entry: entry, timeToLive: .seconds(60))
    }

    static func remove(_ key: String, _ milliseconds: Int64) -> CacheMutation {
        CacheMutation(kind: .remove, key: key, version: version(milliseconds), timeToLive: .seconds(60))
    }

    static func prepared(_ l2: RedisDistributedCache, _ mutations: [CacheMutation]) -> [RedisDistributedCache.PreparedWrite] {
        mutations.map {
            RedisDistributedCache.prepareWrite(
                namespace: l2.namespace, mutation: $0, store: true, publish: true,
                authenticator: nil, maxClockDrift: l2.maxClockDrift
            )
        }
    }

    static func batch(_ l2: RedisDistributedCache, _ mutations: [CacheMutation]) async throws -> [MutationOutcome] {
        try await RedisDistributedCache.runWriteBatch(prepared(l2, mutations), client: l2.client, namespace: l2.namespace, logMaxLength: l2.logMaxLength)
    }

    static func value(_ l2: RedisDistributedCache, _ key: String) async throws -> String? {
        try await l2.read(key).map { String(decoding: $0.entry.payload, as: UTF8.self) }
    }

    /// Runs `body` with an L2 per cache name on one client, and a second client for admin commands.
    static func withL2(
        _ names: [String] = ["batch"], limit: WriteBatchLimit = WriteBatchLimit(),
        _ body: @Sendable ([RedisDistributedCache], RedisClient) async throws -> Void
    ) async throws {
        try await withRedisServer { server in
            try await withRunningClient(testConfiguration(server)) { client in
                try await withRunningClient(testConfiguration(server)) { admin in
                    let caches = names.map {
                        RedisDistributedCache(client: client, cacheName: $0, runsClient: false, writeBatchLimit: limit, logger: testLogger)
                    }
                    try await body(caches, admin)
                }
            }
        }
    }

    @Test func aBatchOfWritesToOneKeyAppliesThemInOrderAsSingleScriptsBackToBackWould() async throws {
        try await Self.withL2(["batch", "single"]) { caches, admin in
            let (batched, single) = (caches[0], caches[1])
            let writes = [Self.set("k", 3_000, "c"), Self.set("k", 2_000, "b"), Self.set("k", 4_000, "d"), Self.remove("k", 1_000)]
            let outcomes = try await Self.batch(batched, writes)
            #expect(outcomes == [.applied(sequence: 1), .superseded(by: Self.version(3_000)), .applied(sequence: 2), .superseded(by: Self.version(4_000))])
            var singles: [MutationOutcome] = []
            for write in writes { singles.append(try await single.apply(write, publish: true)) }
            #expect(singles == outcomes)
            #expect(try await Self.value(batched, "k") == "d")
            let log = try await admin.send("XRANGE", RedisArgument(batched.namespace.prefix + ":log"), "-", "+")
            #expect(log.array?.compactMap { $0.array?.first?.string } == ["0-1", "0-2"])
        }
    }

    /// The batch script reads the head and checks the log once per call and carries the sequence
    /// across its mutations; its log entries and messages must still be, byte for byte, those of
    /// single scripts run back to back, here across a sequence whose low 32 bits wrap.
    @Test func aBatchLogsTheSameMessagesAsSingleScriptsAcrossTheSequencesCarry() async throws {
        try await Self.withL2(["batch", "single"]) { caches, admin in
            let (batched, single) = (caches[0], caches[1])
            let writes = [
                Self.set("a", 2_000, "v"), Self.remove("b", 2_000), Self.set("c", 2_000, "w", tags: ["t"]), Self.set("a", 1_000, "old"),
            ]
            for l2 in caches {
                _ = try await admin.send("HSET", RedisArgument(l2.namespace.head), "epoch", "0123456789abcdef", "seq", "4294967294")
            }
            let outcomes = try await Self.batch(batched, writes)
            var singles: [MutationOutcome] = []
            for write in writes { singles.append(try await single.apply(write, publish: true)) }
            #expect(outcomes == [.applied(sequence: 4_294_967_295), .applied(sequence: 4_294_967_296), .applied(sequence: 4_294_967_297), .superseded(by: Self.version(2_000))])
            #expect(singles == outcomes)
            var logs: [[RESPValue]] = []
            for l2 in caches { logs.append(try await admin.send("XRANGE", RedisArgument(l2.namespace.log), "-", "+").array ?? []) }
            #expect(logs[0].count == 3)
            #expect(logs[0] == logs[1])
            let messages = try logs[0].map { entry in
                try BackplaneMessage.decode(entry.array?.last?.array?.last?.bytes ?? [])
            }
            #expect(messages.map(\.sequence) == [4_294_967_295, 4_294_967_296, 4_294_967_297])
            #expect(messages.map(\.epoch) == Array(repeating: "0123456789abcdef", count: 3))
            #expect(messages.map(\.key) == ["a", "b", "c"])
            let head = try await admin.send("HMGET", RedisArgument(batched.namespace.head), "epoch", "seq")
            #expect(head.array?.compactMap(\.string) == ["0123456789abcdef", "4294967297"])
        }
    }

    @Test func oneBatchCarriesSupersededAndAppliedOutcomesEachForItsOwnMutation() async throws {
        try await Self.withL2 { caches, _ in
            let l2 = caches[0]
            #expect(try await l2.apply(Self.set("k1", 5_000, "newer"), publish: true) == .applied(sequence: 1))
            let outcomes = try await Self.batch(l2, [Self.set("k1", 3_000, "older"), Self.set("k2", 1_000, "x"), Self.remove("k1", 6_000)])
            #expect(outcomes == [.superseded(by: Self.version(5_000)), .applied(sequence: 2), .applied(sequence: 3)])
            #expect(try await Self.value(l2, "k1") == nil)
            #expect(try await Self.value(l2, "k2") == "x")
            // A tag removal, then a set older than it with that tag (superseded by it) and a newer one.
            let tagged = try await Self.batch(l2, [
                CacheMutation(kind: .removeTag, key: "t1", version: Self.version(7_000), timeToLive: .seconds(60)),
                Self.set("k3", 6_000, "hidden", tags: ["t1"]),
                Self.set("k4", 8_000, "shown", tags: ["t1", "t2"]),
            ])
            #expect(tagged == [.applied(sequence: 4), .superseded(by: Self.version(7_000)), .applied(sequence: 5)])
            #expect(try await Self.value(l2, "k3") == nil)
            #expect(try await Self.value(l2, "k4") == "shown")
        }
    }

    @Test func aFailedBatchFailsEveryMutationWithTheErrorASingleWriteGets() async throws {
        try await Self.withL2 { caches, admin in
            let l2 = caches[0]
            _ = try await admin.send("SET", RedisArgument(l2.namespace.prefix + ":e:wrong"), "a string, not an entry hash")
            let single = await redisError { _ = try await l2.apply(Self.set("wrong", 1_000, "v"), publish: true) }
            #expect(single?.serverErrorPrefix == "WRONGTYPE")
            let results = await RedisDistributedCache.runWrites(
                Self.prepared(l2, [Self.set("fine", 1_000, "v"), Self.set("wrong", 2_000, "v")]),
                client: l2.client, namespace: l2.namespace, logMaxLength: l2.logMaxLength
            )
            #expect(results.count == 2)
            for result in results {
                let error = await redisError { _ = try result.get() }
                #expect(error?.code == single?.code)
                #expect(error?.serverErrorPrefix == "WRONGTYPE")
            }
        }
    }

    /// The batch script writes the head once, after its last mutation; when a mutation fails,
    /// the head must still record what the mutations before it logged and published, so the
    /// next write continues the same epoch and sequence instead of finding the log past the head.
    @Test func aBatchThatFailsHalfWayLeavesTheHeadAtWhatItsEarlierMutationsLogged() async throws {
        try await Self.withL2 { caches, admin in
            let l2 = caches[0]
            _ = try await admin.send("SET", RedisArgument(l2.namespace.prefix + ":e:wrong"), "a string, not an entry hash")
            let results = await RedisDistributedCache.runWrites(
                Self.prepared(l2, [Self.set("a", 1_000, "v"), Self.set("b", 2_000, "w"), Self.set("wrong", 3_000, "x"), Self.set("c", 4_000, "y")]),
                client: l2.client, namespace: l2.namespace, logMaxLength: l2.logMaxLength
            )
            for result in results {
                let error = await redisError { _ = try result.get() }
                #expect(error?.serverErrorPrefix == "WRONGTYPE")
            }
            let head = try await admin.send("HMGET", RedisArgument(l2.namespace.head), "epoch", "seq", "hv")
            let fields = head.array?.map(\.string) ?? []
            #expect(fields.count == 3)
            #expect(fields.dropFirst().first == "2")
            #expect(fields.last == Self.version(2_000).orderedText)
            let log = try await admin.send("XRANGE", RedisArgument(l2.namespace.log), "-", "+")
            #expect(log.array?.compactMap { $0.array?.first?.string } == ["0-1", "0-2"])
            #expect(try await l2.apply(Self.set("c", 4_000, "y"), publish: true) == .applied(sequence: 3))
            let after = try await admin.send("HGET", RedisArgument(l2.namespace.head), "epoch")
            #expect(after.string == fields.first ?? nil)
            #expect(try await Self.value(l2, "b") == "w")
            #expect(try await Self.value(l2, "c") == "y")
        }
    }

    @Test func aBatchRefusedAtMaxmemoryFailsEveryMutationAsDistributedOutOfMemory() async throws {
        try await Self.withL2 { caches, admin in
            let l2 = caches[0]
            _ = try await admin.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "1")
            let results = await RedisDistributedCache.runWrites(
                Self.prepared(l2, [Self.set("a", 1_000, "v"), Self.set("b", 1_000, "v"), Self.remove("c", 1_000)]),
                client: l2.client, namespace: l2.namespace, logMaxLength: l2.logMaxLength
            )
            #expect(results.count == 3)
            for result in results {
                #expect(throws: CacheError.self) { _ = try result.get() }
                if case .failure(let error as CacheError) = result { #expect(error.code == .distributedOutOfMemory) }
            }
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "0")
            #expect(try await Self.value(l2, "a") == nil)
        }
    }

    @Test func concurrentAppliesQueuedBehindAWriteInFlightGoOutInBoundedBatchesInOrder() async throws {
        try await Self.withL2(limit: WriteBatchLimit(mutations: 2)) { caches, admin in
            let l2 = caches[0]
            for script in [CoherenceScripts.write, CoherenceScripts.writeBatch] {
                _ = try await admin.send("SCRIPT", "LOAD", RedisArgument(script.source))
            }
            _ = try await admin.send("CONFIG", "RESETSTAT")
            // Holds the first write script in Redis, so the next applies queue behind it.
            _ = try await admin.send("CLIENT", "PAUSE", "60000", "WRITE")
            let outcomes = try await withThrowingTaskGroup(of: (Int, MutationOutcome).self) { group in
                for index in 0..<6 {
                    group.addTask { (index, try await l2.apply(Self.set("k\(index)", 1_000, "v\(index)"), publish: true)) }
                    let inFlight = await eventually { index == 0 ? l2.writes.isSending : l2.writes.queuedCount == index }
                    #expect(inFlight)
                }
                _ = try await admin.send("CLIENT", "UNPAUSE")
                var outcomes: [Int: MutationOutcome] = [:]
                for try await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes
            }
            #expect(outcomes == Dictionary(uniqueKeysWithValues: (0..<6).map { ($0, MutationOutcome.applied(sequence: UInt64($0 + 1))) }))
            // Batches [0], [1, 2], [3, 4], [5]: four script calls for six writes.
            let stats = try await admin.send("INFO", "commandstats").string ?? ""
            #expect(stats.contains("cmdstat_evalsha:calls=4,"))
            for index in 0..<6 { #expect(try await Self.value(l2, "k\(index)") == "v\(index)") }
        }
    }

    @Test func anErrorInABatchFailsEachOfItsCallersAndNoneOfTheOthers() async throws {
        try await Self.withL2 { caches, admin in
            let l2 = caches[0]
            _ = try await admin.send("SET", RedisArgument(l2.namespace.prefix + ":e:wrong"), "a string, not an entry hash")
            _ = try await admin.send("CLIENT", "PAUSE", "60000", "WRITE")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let outcome = try await l2.apply(Self.set("first", 1_000, "v"), publish: true)
                    #expect(outcome == .applied(sequence: 1))
                }
                #expect(await eventually { l2.writes.isSending })
                for (index, key) in ["fine", "wrong"].enumerated() {
                    group.addTask {
                        let error = await redisError { _ = try await l2.apply(Self.set(key, 1_000, "v"), publish: true) }
                        #expect(error?.serverErrorPrefix == "WRONGTYPE")
                    }
                    #expect(await eventually { l2.writes.queuedCount == index + 1 })
                }
                _ = try await admin.send("CLIENT", "UNPAUSE")
                try await group.waitForAll()
            }
            #expect(try await Self.value(l2, "first") == "v")
        }
    }
}
