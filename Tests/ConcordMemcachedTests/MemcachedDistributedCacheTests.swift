@_spi(ConcordBackend) import Concord
import ConcordProcess
import Synchronization
import Testing

@testable import ConcordMemcached
import ConcordTesting

/// A backplane that records what is published, and can be told to fail.
final class RecordingBackplane: Backplane {
    let published = Mutex<[CacheMutation]>([])
    let failing = Atomic<Bool>(false)

    func publish(_ mutation: CacheMutation) async throws -> UInt64 {
        if failing.load(ordering: .relaxed) { throw MemcachedError(.connectionClosed, "backplane down (test)") }
        return published.withLock { published in
            published.append(mutation)
            return UInt64(published.count)
        }
    }

    func head() async throws -> BackplaneHead { BackplaneHead(epoch: "e", sequence: UInt64(published.withLock { $0.count })) }
    func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead { .messages([]) }
    func run(events: BackplaneEventSink) async throws {}
}

/// The data-loss reports of an L2 under test.
final class LossLog: Sendable {
    private let reasons = Mutex<[String]>([])
    func append(_ reason: String) { reasons.withLock { $0.append(reason) } }
    var count: Int { reasons.withLock { $0.count } }
}

/// Runs a Memcached L2 over `servers` beside `body`; the log collects its data-loss reports.
func withL2<T: Sendable>(
    _ servers: [MemcachedServer],
    backplane: RecordingBackplane? = nil,
    configure: (inout MemcachedConfiguration) -> Void = { _ in },
    _ body: @Sendable (MemcachedDistributedCache, LossLog) async throws -> T
) async throws -> T {
    var configuration = fastConfiguration(servers)
    configure(&configuration)
    let client = MemcachedClient(configuration: configuration, logger: testLogger)
    let l2 = MemcachedDistributedCache(
        client: client, cacheName: "test", backplane: backplane,
        configuration: .init(casRetryLimit: 64, generationCheckInterval: .milliseconds(50)), logger: testLogger)
    let losses = LossLog()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            try await l2.run(events: DistributedCacheEvents(reachable: {}, dataLost: { reason in losses.append(reason) }))
        }
        try await client.waitUntilConnected(timeout: TestBounds.connect)
        // Connected means prepared: every server's generation is known.
        let result = try await body(l2, losses)
        group.cancelAll()
        return result
    }
}

func version(_ milliseconds: Int64, _ node: String = "n1") -> CacheVersion {
    CacheVersion(milliseconds: milliseconds, counter: 0, node: node)
}

func setMutation(_ key: String, _ value: String, _ version: CacheVersion, tags: [String] = []) -> CacheMutation {
    CacheMutation(
        kind: .set, key: key, version: version,
        entry: DistributedEntry(version: version, logicalExpiryMilliseconds: 4_000_000_000_000, tags: tags, payload: Array(value.utf8)),
        timeToLive: .seconds(60))
}

func marker(_ kind: MutationKind, _ key: String, _ version: CacheVersion) -> CacheMutation {
    CacheMutation(kind: kind, key: key, version: version, timeToLive: .seconds(60))
}

func payload(_ read: DistributedRead?) -> String? {
    read.map { String(decoding: $0.entry.payload, as: UTF8.self) }
}

@Suite("Memcached L2: version fencing, tombstones and markers on a real memcached", .timeLimit(.minutes(2)))
struct MemcachedDistributedCacheTests {
    @Test func theNewerVersionWinsWhicheverArrivesFirst() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                #expect(try await l2.apply(setMutation("k", "v2", version(2)), publish: false) == .applied(sequence: nil))
                #expect(try await l2.apply(setMutation("k", "v1", version(1)), publish: false) == .superseded(by: version(2)))
                #expect(payload(try await l2.read("k")) == "v2")
                #expect(try await l2.apply(setMutation("k", "v3", version(3)), publish: false) == .applied(sequence: nil))
                let read = try #require(try await l2.read("k"))
                #expect(read.entry.version == version(3) && !read.isExpired)
                #expect(try await l2.read("absent") == nil)
            }
        }
    }

    @Test func concurrentWritersOfOneKeyLeaveTheNewestVersionThroughCompareAndSet() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            for step in 0..<10 {
                                let stamp = Int64(step * 4 + writer + 1)
                                _ = try await l2.apply(setMutation("contended", "v\(stamp)", version(stamp, "w\(writer)")), publish: false)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await l2.read("contended")?.entry.version == version(40, "w3"))
                #expect(l2.stats.casConflicts == 0)
            }
        }
    }

    @Test func aRemoveLeavesATombstoneThatFencesOlderWrites() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                _ = try await l2.apply(setMutation("k", "v1", version(1)), publish: false)
                #expect(try await l2.apply(marker(.remove, "k", version(2)), publish: false) == .applied(sequence: nil))
                #expect(try await l2.read("k") == nil)
                #expect(try await l2.apply(setMutation("k", "late", version(1, "n2")), publish: false) == .superseded(by: version(2)))
                #expect(try await l2.read("k") == nil)
                _ = try await l2.apply(setMutation("k", "v3", version(3)), publish: false)
                #expect(payload(try await l2.read("k")) == "v3")
            }
        }
    }

    @Test func expireTagRemovalAndClearsApplyAsMarkers() async throws {
        try await withMemcachedServers(2) { servers in
            try await withL2(servers) { l2, _ in
                _ = try await l2.apply(setMutation("e", "v", version(1)), publish: false)
                _ = try await l2.apply(marker(.expire, "e", version(2)), publish: false)
                #expect(try await l2.read("e")?.isExpired == true)

                _ = try await l2.apply(setMutation("tagged", "v", version(3), tags: ["group"]), publish: false)
                _ = try await l2.apply(setMutation("other", "v", version(3)), publish: false)
                _ = try await l2.apply(marker(.removeTag, "group", version(4)), publish: false)
                #expect(try await l2.read("tagged") == nil)
                #expect(payload(try await l2.read("other")) == "v")
                // A write after the tag removal is visible again.
                _ = try await l2.apply(setMutation("tagged", "new", version(5), tags: ["group"]), publish: false)
                #expect(payload(try await l2.read("tagged")) == "new")

                _ = try await l2.apply(marker(.clearExpire, "", version(6)), publish: false)
                #expect(try await l2.read("other")?.isExpired == true)
                _ = try await l2.apply(marker(.clearRemove, "", version(7)), publish: false)
                #expect(try await l2.read("other") == nil)
                #expect(try await l2.read("tagged") == nil)
                _ = try await l2.apply(setMutation("other", "after", version(8)), publish: false)
                #expect(payload(try await l2.read("other")) == "after")
            }
        }
    }

    @Test func keysMemcachedCannotTakeAreStoredUnderTheirHashAndReadBack() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                for key in ["with space", "line\nbreak", String(repeating: "long", count: 100), "ünïcode"] {
                    _ = try await l2.apply(setMutation(key, "value of \(key)", version(1)), publish: false)
                    #expect(payload(try await l2.read(key)) == "value of \(key)")
                }
            }
        }
    }

    @Test func anOversizedValueIsCountedAndFencesOlderValuesWithATombstone() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                _ = try await l2.apply(setMutation("big", "small", version(1)), publish: false)
                let huge = String(repeating: "x", count: 1_100_000)
                #expect(try await l2.apply(setMutation("big", huge, version(2)), publish: false) == .applied(sequence: nil))
                #expect(l2.stats.oversizedValues == 1)
                #expect(try await l2.read("big") == nil)
                #expect(try await l2.apply(setMutation("big", "older", version(1, "n2")), publish: false) == .superseded(by: version(2)))
            }
        }
    }

    @Test func aWriteIsPublishedAfterItIsStoredAndAFailedPublishIsRepeatedOnRetry() async throws {
        try await withMemcachedServers(1) { servers in
            let backplane = RecordingBackplane()
            try await withL2(servers, backplane: backplane) { l2, _ in
                let first = try await l2.apply(setMutation("k", "v1", version(1)), publish: true)
                #expect(first == .applied(sequence: 1))
                backplane.failing.store(true, ordering: .relaxed)
                await #expect(throws: MemcachedError.self) { _ = try await l2.apply(setMutation("k", "v2", version(2)), publish: true) }
                // Stored although not announced.
                let stored = try await l2.read("k")
                #expect(payload(stored) == "v2")
                backplane.failing.store(false, ordering: .relaxed)
                // The retry finds its own version stored and announces it.
                let retried = try await l2.apply(setMutation("k", "v2", version(2)), publish: true)
                #expect(retried == .applied(sequence: 2))
                #expect(backplane.published.withLock { $0.map(\.version) } == [version(1), version(2)])
                // A superseded write is not announced.
                let older = try await l2.apply(setMutation("k", "v0", version(0)), publish: true)
                #expect(older == .superseded(by: version(2)))
                #expect(backplane.published.withLock { $0.count } == 2)
            }
        }
    }

    @Test func aForeignOrCorruptItemReadsAsAMissAndIsCounted() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, _ in
                _ = try await l2.apply(setMutation("k", "v", version(1)), publish: false)
                // Overwrite the stored item with garbage through the raw client.
                _ = try await l2.client.set("concord:test:e:k", value: Array("not a record".utf8))
                #expect(try await l2.read("k") == nil)
                #expect(l2.corruptEntries == 1)
                // A write still lands over it.
                _ = try await l2.apply(setMutation("k", "v2", version(2)), publish: false)
                #expect(payload(try await l2.read("k")) == "v2")
            }
        }
    }
}

@Suite("Memcached L2: data loss is detected like a Redis epoch change", .timeLimit(.minutes(2)))
struct MemcachedDataLossTests {
    @Test func flushAllIsDetectedAndTheOldDataStaysUnreachable() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, losses in
                _ = try await l2.apply(setMutation("k", "v", version(1)), publish: false)
                try await l2.client.flushAll(server: 0)
                #expect(await eventually { losses.count == 1 })
                #expect(try await l2.read("k") == nil)
                #expect(l2.stats.dataLosses == 1)
            }
        }
    }

    @Test func aRestartedServerIsDetected() async throws {
        try await withMemcachedServers(1) { servers in
            try await withL2(servers) { l2, losses in
                _ = try await l2.apply(setMutation("k", "v", version(1)), publish: false)
                try await servers[0].restart()
                #expect(await eventually { losses.count >= 1 })
                #expect(await eventually { l2.client.isConnected(server: 0) })
                #expect(try await l2.read("k") == nil)
            }
        }
    }

    @Test func aCopyLeftOnAnotherServerByAnEarlierOutageIsNeverReadAsCurrent() async throws {
        try await withMemcachedServers(2) { servers in
            try await withL2(servers, configure: { $0.requestTimeout = .seconds(1); $0.connectTimeout = .seconds(1) }) { l2, _ in
                let keyspace = MemcachedKeyspace(cacheName: "test")
                let key = try #require((0..<200).map { "k\($0)" }.first { l2.client.server(for: keyspace.stored(keyspace.entry($0))) == 0 })
                // First outage of the key's home: the write lands on server 1.
                servers[0].pause()
                #expect(await eventually { l2.client.liveServers == [1] })
                _ = try await l2.apply(setMutation(key, "during the first outage", version(1)), publish: false)
                servers[0].resume()
                #expect(await eventually { l2.client.liveServers == [0, 1] })
                _ = try await l2.apply(setMutation(key, "at home", version(2)), publish: false)
                // Second outage: the key is served from server 1 again, where the first copy is left.
                servers[0].pause()
                #expect(await eventually { l2.client.liveServers == [1] })
                let read = try await l2.read(key)
                #expect(read == nil, "read \(payload(read) ?? "nil")")
                servers[0].resume()
            }
        }
    }

    @Test func aServerThatRejoinsAfterAnOutageIsFlushedSoItsStaleCopiesAreNeverRead() async throws {
        try await withMemcachedServers(2) { servers in
            try await withL2(servers, configure: { $0.requestTimeout = .seconds(1); $0.connectTimeout = .seconds(1) }) { l2, losses in
                let keyspace = MemcachedKeyspace(cacheName: "test")
                // A key that lives on server 0.
                let key = try #require((0..<200).map { "k\($0)" }.first { l2.client.server(for: keyspace.stored(keyspace.entry($0))) == 0 })
                _ = try await l2.apply(setMutation(key, "old", version(1)), publish: false)
                servers[0].pause()
                #expect(await eventually { l2.client.liveServers == [1] })
                // While server 0 is away the key lives on server 1 and moves on.
                _ = try await l2.apply(setMutation(key, "new", version(2)), publish: false)
                #expect(payload(try await l2.read(key)) == "new")
                servers[0].resume()
                #expect(await eventually { l2.client.liveServers == [0, 1] })
                #expect(losses.count >= 1)
                // Server 0 held "old" while it was away: it must not come back.
                let read = try await l2.read(key)
                #expect(payload(read) != "old")
                #expect(try await l2.client.send(.get(keyspace.stored(keyspace.entry(key))), toServer: 0).status == .miss)
            }
        }
    }
}
