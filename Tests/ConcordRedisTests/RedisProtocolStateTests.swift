import ConcordProcess
@_spi(ConcordBackend) import Concord
import ConcordRedis
import ConcordTesting
import Testing

/// Protocol state on a Redis that evicts, fills up or is written by others: the head is lost only
/// as a whole, the write script never fails for ever, a full Redis is a counted error, and a
/// backplane key keeps forged messages out.
@Suite("Coherence on any Redis")
struct RedisProtocolStateTests {
    static let head = "concord:{coherence}:head"
    static let channel = "concord:{coherence}:bp"

    /// Nodes on a server without ACL users (these tests change server-wide settings).
    static func withNodes<T: Sendable>(
        _ ids: [String] = ["a", "b"],
        authenticators: [String: any MessageAuthenticator] = [:],
        _ body: @Sendable (RedisServer, [RedisCoherenceTests.Node], RedisClient) async throws -> T
    ) async throws -> T {
        try await withRedisServer { server in
            let nodes = try ids.map { id in
                var redis = testConfiguration(server)
                redis.reconnect = .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(200))
                redis.commandTimeout = .seconds(2)
                let backend = RedisCacheBackend(configuration: redis, cacheName: "coherence", authenticator: authenticators[id], logger: testLogger)
                var configuration = HybridCacheConfiguration(cacheName: "coherence", nodeID: id)
                configuration.heartbeatInterval = .milliseconds(200)
                configuration.retryBackoffBase = .milliseconds(20)
                configuration.retryBackoffCap = .milliseconds(200)
                let cache = try HybridCache(configuration: configuration, distributed: backend.distributed, backplane: backend.backplane, logger: testLogger)
                return RedisCoherenceTests.Node(id: id, cache: cache, backend: backend)
            }
            return try await withRunningClient(testConfiguration(server)) { admin in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for node in nodes { group.addTask { try await node.cache.run() } }
                    let ready = await eventually { nodes.allSatisfy { $0.cache.isBackplaneConnected } }
                    #expect(ready, "nodes did not synchronize with the backplane")
                    let result = try await body(server, nodes, admin)
                    group.cancelAll()
                    return result
                }
            }
        }
    }

    /// Writes `count` changes on `writer` to keys `reader` holds, and counts how many `reader`
    /// ends up serving.
    static func propagated(_ count: Int, from writer: RedisCoherenceTests.Node, to reader: RedisCoherenceTests.Node, tag: String) async throws -> Int {
        let keys = (0..<count).map { "\(tag)\($0)" }
        for key in keys { try await writer.cache.set(key, "old") }
        for key in keys { _ = await RedisCoherenceTests.read(reader, key) }
        for key in keys { try await writer.cache.set(key, "new") }
        _ = await eventually { await RedisCoherenceTests.read(reader, keys.last!) == "new" }
        var reached = 0
        for key in keys where await RedisCoherenceTests.read(reader, key) == "new" { reached += 1 }
        return reached
    }

    @Test func anEvictedHeadStartsANewEpochAndEveryLaterWritePropagates() async throws {
        try await Self.withNodes { _, nodes, admin in
            let (a, b) = (nodes[0], nodes[1])
            try await a.cache.set("before", "v")
            #expect(await RedisCoherenceTests.read(b, "before") == "v")
            let epoch = a.cache.statistics.backplane.epoch
            // What an allkeys-* policy does to the head: it is gone, the log is still there.
            _ = try await admin.send("DEL", RedisArgument(Self.head))
            #expect(try await Self.propagated(40, from: a, to: b, tag: "after") == 40)
            #expect(a.cache.pendingWriteCount == 0)
            #expect(await eventually { b.cache.statistics.backplane.epoch != epoch })
            #expect(b.cache.statistics.backplane.fullExpiries >= 1)
        }
    }

    /// What a volatile-* policy may evict is every key with a TTL: entries, tombstones, tag and
    /// expire markers. A clear lives in the head (no TTL), so it survives all of them: an entry
    /// that outlived the eviction is still hidden by the clear made after it.
    /// What a volatile-* policy may evict, all of it but `kept` (which must exist). Returns how
    /// many keys went.
    static func evictEveryKeyWithATimeToLive(but kept: String, admin: RedisClient) async throws -> Int {
        let keys = try await admin.send("KEYS", "concord:{coherence}:*").array?.compactMap(\.string) ?? []
        #expect(keys.contains(kept))
        var evicted = 0
        for key in keys where key != kept {
            if case .integer(let ttl) = try await admin.send("PTTL", RedisArgument(key)), ttl > 0 {
                _ = try await admin.send("DEL", RedisArgument(key))
                evicted += 1
            }
        }
        return evicted
    }

    @Test func aClearSurvivesTheEvictionOfEveryKeyWithATimeToLive() async throws {
        try await Self.withNodes { _, nodes, admin in
            let a = nodes[0]
            try await a.cache.set("kept", "before the clear")
            try await a.cache.clear(allowFailSafe: false)
            let evicted = try await Self.evictEveryKeyWithATimeToLive(but: "concord:{coherence}:e:kept", admin: admin)
            let fresh = nodes[1].cache
            #expect(try await fresh.getResult("kept", as: String.self) == nil, "\(evicted) keys with a TTL evicted")
        }
    }

    /// A tag removal lives in the head, which has no TTL: a volatile-* policy that evicts every
    /// key with a TTL (all but the entry it hides, here) cannot bring the entry back. The field
    /// is dropped again once the marker TTL has passed by Redis's clock.
    @Test func aTagRemovalSurvivesTheEvictionOfEveryKeyWithATimeToLive() async throws {
        try await Self.withNodes { _, nodes, admin in
            let a = nodes[0]
            try await a.cache.set("tagged", "before the removal", tags: ["group"])
            try await a.cache.removeByTag("group")
            let evicted = try await Self.evictEveryKeyWithATimeToLive(but: "concord:{coherence}:e:tagged", admin: admin)
            let fresh = nodes[1].cache
            #expect(try await fresh.getResult("tagged", as: String.self) == nil, "\(evicted) keys with a TTL evicted")
            let field = try await admin.send("HGET", RedisArgument(Self.head), "t:group")
            #expect(field.string != nil)
            // Due fields go with the next tag removal: make this one due now, by Redis's clock.
            _ = try await admin.send("ZADD", "concord:{coherence}:tx", "0", "t:group")
            try await a.cache.removeByTag("other")
            #expect(try await admin.send("HGET", RedisArgument(Self.head), "t:group").isNull)
            #expect(try await admin.send("HGET", RedisArgument(Self.head), "t:other").string != nil)
        }
    }

    /// Under an allkeys-* policy the head itself can go, and the clears it held with it. Entries
    /// written before that are from a history Redis lost: they read as expired, never as fresh.
    @Test func entriesFromBeforeALostHeadReadAsExpired() async throws {
        try await Self.withNodes { _, nodes, admin in
            let a = nodes[0]
            try await a.cache.set("old", "written before the head was lost")
            try await a.cache.clear(allowFailSafe: false)
            _ = try await admin.send("DEL", RedisArgument(Self.head))
            let read = try await a.backend.distributed.read("old")
            #expect(read?.isExpired == true)
            let fresh = nodes[1].cache
            #expect(try await fresh.getResult("old", as: String.self) == nil)
            // Writes after the loss start a new epoch and read as fresh again.
            try await a.cache.set("new", "after")
            #expect(try await a.backend.distributed.read("new")?.isExpired == false)
        }
    }

    @Test func aLogThatReachesPastTheSequenceIsRecoveredByTheWriteScript() async throws {
        try await Self.withNodes { _, nodes, admin in
            let (a, b) = (nodes[0], nodes[1])
            for index in 0..<5 { try await a.cache.set("k\(index)", "v") }
            // The head went back below the log's top (the old layout's INCR after an eviction).
            _ = try await admin.send("HSET", RedisArgument(Self.head), "seq", "1")
            #expect(try await Self.propagated(10, from: a, to: b, tag: "after") == 10)
            #expect(a.cache.pendingWriteCount == 0)
            #expect(a.cache.statistics.distributed.errors == 0)
        }
    }

    @Test func anAllKeysEvictionStormLeavesEveryLaterChangePropagating() async throws {
        try await Self.withNodes { _, nodes, admin in
            let (a, b) = (nodes[0], nodes[1])
            let info = try await admin.send("INFO", "memory").string ?? ""
            let used = try #require(info.split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix("used_memory:") }
                .flatMap { Int($0.dropFirst("used_memory:".count)) })
            _ = try await admin.send("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            _ = try await admin.send("CONFIG", "SET", "maxmemory", RedisArgument(used + 512 * 1024))
            let filler = String(repeating: "x", count: 8 * 1024)
            for index in 0..<400 { try await a.cache.set("burst\(index)", filler) }
            let evicted = try await admin.send("INFO", "stats").string ?? ""
            #expect(evicted.contains("evicted_keys:") && !evicted.contains("evicted_keys:0\r"))
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "0")
            #expect(try await Self.propagated(40, from: a, to: b, tag: "after") == 40)
            #expect(await eventually { a.cache.pendingWriteCount == 0 })
        }
    }

    @Test func aFullRedisUnderNoevictionIsACountedErrorAndTheQueueDrainsOnceThereIsRoom() async throws {
        try await Self.withNodes { _, nodes, admin in
            let (a, b) = (nodes[0], nodes[1])
            try await a.cache.set("k", "v1")
            #expect(await RedisCoherenceTests.read(b, "k") == "v1")
            _ = try await admin.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "1")
            // A new key: the script's first write grows memory, so Redis refuses the whole script.
            try await a.cache.set("fresh", "v1")
            #expect(a.cache.statistics.distributed.outOfMemoryErrors >= 1)
            #expect(a.cache.pendingWriteCount == 1)
            #expect(await RedisCoherenceTests.read(b, "fresh") == nil)
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "0")
            #expect(await eventually { a.cache.pendingWriteCount == 0 })
            #expect(await eventually { await RedisCoherenceTests.read(b, "fresh") == "v1" })
        }
    }

    static let key = Array("0123456789abcdef0123456789abcdef".utf8)
    static let otherKey = Array("fedcba9876543210fedcba9876543210".utf8)

    @Test func withABackplaneKeyForgedMessagesAreIgnoredAndNeverDisplaceTheRealOne() async throws {
        let authenticator = try HMACMessageAuthenticator(keys: [Self.key])
        try await Self.withNodes(authenticators: ["a": authenticator, "b": authenticator]) { _, nodes, admin in
            let (a, b) = (nodes[0], nodes[1])
            try await a.cache.set("k", "v1")
            #expect(await RedisCoherenceTests.read(b, "k") == "v1")
            let now = try await a.cache.set("probe", "p")
            let written = try #require(try await admin.send("HGET", RedisArgument(Self.head), "seq").string.flatMap { UInt64($0) })
            #expect(await eventually { b.cache.statistics.backplane.lastSeq == written })
            let epoch = try #require(b.cache.statistics.backplane.epoch)
            let next = b.cache.statistics.backplane.lastSeq + 1
            let unsigned = BackplaneMessage(epoch: epoch, sequence: next, kind: .set, key: "k", version: now, writeID: 1).encoded()
            let wrongKey = BackplaneMessage(epoch: epoch, sequence: next, kind: .set, key: "k", version: now, writeID: 2)
                .encoded(authenticator: try HMACMessageAuthenticator(keys: [Self.otherKey]))
            _ = try await admin.send("PUBLISH", RedisArgument(Self.channel), RedisArgument(unsigned))
            _ = try await admin.send("PUBLISH", RedisArgument(Self.channel), RedisArgument(wrongKey))
            #expect(await eventually { b.cache.statistics.backplane.unauthenticatedMessages == 2 })
            #expect(b.cache.statistics.backplane.lastSeq == next - 1)
            try await a.cache.set("k", "v2")
            #expect(await eventually { await RedisCoherenceTests.read(b, "k") == "v2" })
        }
    }

    @Test func duringARotationBothKeysAreAcceptedAndTheNewOneSigns() async throws {
        let old = try HMACMessageAuthenticator(keys: [Self.key])
        let rotating = try HMACMessageAuthenticator(keys: [Self.otherKey, Self.key])
        try await Self.withNodes(authenticators: ["a": old, "b": rotating]) { _, nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            try await a.cache.set("k", "v1")
            #expect(await RedisCoherenceTests.read(b, "k") == "v1")
            try await a.cache.set("k", "v2")
            #expect(await eventually { await RedisCoherenceTests.read(b, "k") == "v2" })
            #expect(b.cache.statistics.backplane.unauthenticatedMessages == 0)
            // b signs with the new key, which a (not rotated yet) does not accept.
            try await b.cache.set("k", "v3")
            #expect(await eventually { a.cache.statistics.backplane.unauthenticatedMessages >= 1 })
        }
    }
}

@Suite("HMAC message authenticator")
struct HMACMessageAuthenticatorTests {
    @Test func aTagChecksOnlyWithTheKeyThatMadeItAndOnlyForTheSameBytes() throws {
        let key = Array("0123456789abcdef".utf8)
        let signer = try HMACMessageAuthenticator(keys: [key])
        let bytes: [UInt8] = Array("an invalidation".utf8)
        let tag = signer.tag(for: bytes[...])
        #expect(tag.count == 32)
        #expect(signer.isValid(tag: tag[...], for: bytes[...]))
        #expect(!signer.isValid(tag: tag[...], for: Array("an invalidatioN".utf8)[...]))
        #expect(!signer.isValid(tag: tag.dropLast(), for: bytes[...]))
        let stranger = try HMACMessageAuthenticator(keys: [Array("fedcba9876543210".utf8)])
        #expect(!stranger.isValid(tag: tag[...], for: bytes[...]))
    }

    @Test func shortMissingOrTooManyKeysAreRefused() {
        #expect(throws: RedisError.self) { try HMACMessageAuthenticator(keys: []) }
        #expect(throws: RedisError.self) { try HMACMessageAuthenticator(keys: [Array("short".utf8)]) }
        let key = Array("0123456789abcdef".utf8)
        #expect(throws: RedisError.self) { try HMACMessageAuthenticator(keys: [key, key, key]) }
    }

    @Test func aSignedMessageDecodesOnlyWithAnAcceptedKey() throws {
        let signer = try HMACMessageAuthenticator(keys: [Array("0123456789abcdef".utf8)])
        let message = BackplaneMessage(
            epoch: "e1", sequence: 7, kind: .remove, key: "k", version: CacheVersion(milliseconds: 5, counter: 1, node: "n"),
            writeID: 99, instance: 3
        )
        let bytes = message.encoded(authenticator: signer)
        let decoded = try BackplaneMessage.decode(bytes, authenticator: signer)
        #expect(decoded.isAuthenticated && decoded.writeID == 99 && decoded.instance == 3 && decoded.sequence == 7)
        #expect(throws: CacheError.self) { try BackplaneMessage.decode(message.encoded(), authenticator: signer) }
        var tampered = bytes
        tampered[tampered.count - 40] ^= 1
        #expect(throws: CacheError.self) { try BackplaneMessage.decode(tampered, authenticator: signer) }
    }
}
